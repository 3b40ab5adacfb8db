# Shuyuan — the commands a newcomer needs.  `make run` and `make test` do everything
# else (virtualenv, dependencies, translations, system packages for browser tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
export FLASK_APP := wsgi.py

.PHONY: install translations system-deps db demo run test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Compiled catalogues are build output (not committed): one per feature folder.
translations: install
	@for dir in app/translations app/*/translations plugins/shuyuan_plugins/*/translations; do \
	  [ -d $$dir ] && $(BIN)/pybabel -q compile -f -d $$dir || true; \
	done

# Browser tests drive Debian's Chromium; a CJK font keeps Chinese pages legible in screenshots.
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v ffmpeg >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei ffmpeg poppler-utils >/dev/null) \
	      || echo "warning: could not install chromium/ffmpeg; browser tests will be skipped"; \
	  else echo "note: run as root or install chromium, ffmpeg, poppler-utils for browser and media tests"; fi; \
	fi

db: translations
	$(BIN)/flask db upgrade

demo: db
	$(BIN)/flask content load --if-empty

run: demo
	$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

test: translations system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench: install
	@echo "see bench/README.md"

clean:
	rm -rf $(VENV) instance .pytest_cache
