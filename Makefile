# Shuyuan — the commands a newcomer needs.  `make run` and `make test` do everything
# else (virtualenv, dependencies, translations, system packages for browser tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
export FLASK_APP := wsgi.py
# Python must cache the bytecode it compiles (see install): with PYTHONDONTWRITEBYTECODE
# set, as on this project's machines, every process — each gunicorn worker, CLI command
# and test worker — compiled every module it imported again: 3.9 s of CPU to import the
# app instead of 1.7 s, and the test suite starts dozens of such processes.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install lock translations system-deps db demo run test lint bench bench-pybkt clean

install: $(VENV)/.installed

# Every package comes from requirements.lock, pinned with hashes (pip refuses anything
# else); the project itself is then installed editable without touching dependencies,
# built with the locked setuptools.  --no-compile: pip would byte-compile all ~10,000
# modules of site-packages (about 20 s of a core here); Python compiles, and caches, the
# ones a command actually imports when it first imports them instead (hence the
# unexport above).
$(VENV)/.installed: pyproject.toml requirements.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --no-compile --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

# Regenerate requirements.lock after changing the dependencies in pyproject.toml.
lock: install
	$(BIN)/pip install -q pip-tools==7.6.2
	$(BIN)/pip-compile -q --generate-hashes --extra test --all-build-deps --strip-extras \
	  --allow-unsafe --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
	  -o requirements.lock pyproject.toml

# Compiled catalogues are build output (not committed): one per feature folder.
translations: install
	@for dir in app/translations app/*/translations plugins/shuyuan_plugins/*/translations; do \
	  [ -d $$dir ] && $(BIN)/pybabel -q compile -f -d $$dir || true; \
	done

# What the tests drive besides Python: Debian's Chromium (browser tests), ffmpeg and
# poppler (media derivatives), nginx (the cluster test), a CJK font (legible Chinese
# screenshots), wrk (the HTTP load client of bench/: a C client leaves the 2 cores to the
# servers it measures).  Installed when
# a command is missing; in CI a missing one is an error, never a silent skip.
SYSTEM_COMMANDS := chromium:chromium ffmpeg:ffmpeg ffprobe:ffmpeg pdftoppm:poppler-utils nginx:nginx \
  fc-list:fonts-wqy-microhei wrk:wrk
system-deps:
	@missing=""; \
	for pair in $(SYSTEM_COMMANDS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	fc-list 2>/dev/null | grep -qi "wqy" || missing="$$missing fonts-wqy-microhei"; \
	missing=$$(echo $$missing | tr ' ' '\n' | sort -u | tr '\n' ' '); \
	if [ -n "$${missing// /}" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	      || { echo "error: could not install:$$missing" >&2; [ -z "$$CI" ] || exit 1; }; \
	  else \
	    echo "note: install:$$missing (as root) for the browser and media tests" >&2; \
	    [ -z "$$CI" ] || exit 1; \
	  fi; \
	fi

db: translations
	$(BIN)/flask db upgrade

demo: db
	$(BIN)/flask content load --if-empty

run: demo
	$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

# Both cores: each test file runs whole on one worker (module fixtures such as the cluster
# and the fuzz server stay in one process).  PYTEST_ARGS= runs serially.
PYTEST_ARGS ?= -n 2 --dist loadfile
test: translations system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

# Every benchmark of bench/ at its small size beside its bare baseline (a few minutes), one
# table in docs/benchmarks.md.  BENCH_ARGS="--full" runs issue 14's sizes,
# BENCH_ARGS="--only catalog,media" some modules.
BENCH_ARGS ?=
bench: translations system-deps bench-pybkt
	PYTHONPATH=$$PWD:$$PWD/plugins $(BIN)/python -m bench $(BENCH_ARGS)

# pyBKT in its own virtualenv (bench/requirements-pybkt.txt, pinned with hashes; never a
# dependency of the project), so the model-quality row compares with pyBKT in every run.
PYBKT_VENV ?= bench/.venv-pybkt
bench-pybkt: $(PYBKT_VENV)/.installed
$(PYBKT_VENV)/.installed: bench/requirements-pybkt.txt
	test -d $(PYBKT_VENV) || $(PYTHON) -m venv $(PYBKT_VENV)
	$(PYBKT_VENV)/bin/pip install -q --require-hashes -r bench/requirements-pybkt.txt
	touch $@

clean:
	rm -rf $(VENV) instance .pytest_cache
