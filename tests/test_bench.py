"""``python -m bench`` (bench/__main__.py): every module's rows in one table; a module
that fails or has no ``table_rows`` yet is a line of the table, never a crash."""

from __future__ import annotations

import json
import sys
import types

import pytest

from bench import __main__ as collector
from bench.table import Row


def _module(name: str, **attrs) -> str:
    module = types.ModuleType(f"bench.{name}")
    module.__dict__.update(attrs)
    sys.modules[f"bench.{name}"] = module
    return name


@pytest.fixture
def fake_modules():
    names = [
        _module(
            "fake_ok",
            table_rows=lambda full: [
                Row("fast path", 420.0, "req/s", 300.0, "bare route", ">= 400 req/s", True, "1k"),
                Row("slow path", 10.0, "ms p95", None, "", "< 5 ms p95", False, note="waits"),
            ],
        ),
        _module("fake_missing"),
        _module("fake_broken", table_rows=lambda full: 1 / 0),
    ]
    yield names
    for name in names:
        sys.modules.pop(f"bench.{name}", None)


def test_each_module_gives_rows_missing_or_an_error(fake_modules, tmp_path):
    results = []
    for name in fake_modules:
        out = tmp_path / f"{name}.json"
        assert collector.run_one(name, False, out) == 0
        results.append(json.loads(out.read_text()))
    assert [r["status"] for r in results] == ["ok", "missing", "error"]
    assert "ZeroDivisionError" in results[2]["error"]

    text = collector.render(
        results,
        command="python -m bench",
        machine="2 cores",
        load_before="1.00 / 1.00 / 1.00",
        load_after="2.00 / 2.00 / 2.00",
        started=__import__("datetime").datetime(2026, 11, 30, 10, 0),
        seconds=60,
        full=False,
    )
    assert (
        "| fast path | 1k | 420 req/s | 300 req/s (bare route) | 1.40× | >= 400 req/s | yes |"
        in text
    )
    assert "| slow path |  | 10.0 ms p95 | — | — | < 5 ms p95 | **no** |" in text
    assert "fake_broken: **error**" in text and "ZeroDivisionError" in text
    assert "## Not yet in the table" in text and "`bench/fake_missing.py`" in text
    assert "before 1.00 / 1.00 / 1.00; after 2.00 / 2.00 / 2.00" in text
    assert "- slow path: waits" in text


def test_an_unknown_module_is_refused(capsys):
    with pytest.raises(SystemExit):
        collector.main(["--only", "no_such_benchmark"])
    assert "unknown module" in capsys.readouterr().err


def test_every_benchmark_file_is_collected():
    modules = collector.benchmark_modules()
    assert {"catalog", "media"} <= set(modules)
    assert not {"common", "table", "__main__", "lti_bare_tool", "catalog_bare"} & set(modules)
