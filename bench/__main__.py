"""``python -m bench`` (or ``make bench``): every benchmark beside its baseline, one table.

Each benchmark module in ``bench/`` that exposes ``table_rows(full)`` (see
:mod:`bench.table`) is run in a subprocess of its own, so a module that crashes, hangs or
leaves state behind (an app, a server, a patched module) cannot spoil the others; its
failure becomes an "error" line of the table, never a crash of the run.  Modules without
``table_rows`` yet are listed as "not yet in the table".

    python -m bench                      # small sizes, a few minutes in all
    python -m bench --full               # the sizes of issue 14
    python -m bench --only xapi,search   # some modules only
    python -m bench --output /tmp/b.md   # somewhere else than docs/benchmarks.md

The table (path, figure, baseline, ratio, target, met?) goes to ``docs/benchmarks.md`` with
the machine, the load average before and after, and the command that made it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
# Files of bench/ that are helpers, not benchmarks: shared code, the bare baselines the
# benchmarks start themselves, and the profilers (run by hand, see each docs page).
NOT_BENCHMARKS = {
    "__init__",
    "__main__",
    "common",
    "table",
    "lti_bare_tool",
    "catalog_bare",
    "xapi_bare",
    "mirror_bare_server",
    "presign_bare",
    "lti_profile",
    "xapi_profile",
    "sharing_profile",
    "search_profile",
    "portraits_profile",
    "xapi_box",
    "media_steps",
}
# Where each module's profiles are written up: a target not met points there.
PROFILES = {
    "catalog": "docs/catalog.md",
    "cluster": "docs/operations.md",
    "curriculum": "docs/curriculum.md",
    "lti": "docs/lti.md",
    "media": "docs/media.md",
    "portraits": "docs/portraits.md",
    "search": "docs/search.md",
    "sharing": "docs/sharing.md",
    "xapi": "docs/xapi.md",
}
DEFAULT_OUTPUT = PROJECT_ROOT / "docs" / "benchmarks.md"
# Per module: the small runs take tens of seconds each; a full run may seed 1M rows.
SMALL_TIMEOUT_S = 900
FULL_TIMEOUT_S = 4 * 3600


def benchmark_modules() -> list[str]:
    return sorted(
        path.stem
        for path in BENCH_DIR.glob("*.py")
        if path.stem not in NOT_BENCHMARKS and not path.stem.startswith("_")
    )


# --- one module, in its own process ---------------------------------------------------


def run_one(module: str, full: bool, output: Path) -> int:
    """Child side: import ``bench.<module>``, call ``table_rows(full)``, write JSON."""
    import importlib

    sys.path.insert(0, str(PROJECT_ROOT))
    result: dict = {"module": module}
    try:
        mod = importlib.import_module(f"bench.{module}")
        table_rows = getattr(mod, "table_rows", None)
        if table_rows is None:
            result["status"] = "missing"
        else:
            rows = table_rows(full)
            result["status"] = "ok"
            result["rows"] = [dataclasses.asdict(row) for row in rows]
    except BaseException as exc:  # noqa: BLE001 - any failure is a line of the table
        result["status"] = "error"
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()[-4000:]
    output.write_text(json.dumps(result, ensure_ascii=False, default=str))
    return 0


def run_module(module: str, full: bool, timeout: float) -> dict:
    """Parent side: run one module in a subprocess; always returns a result dict."""
    with tempfile.TemporaryDirectory(prefix="shuyuan-bench-") as folder:
        out = Path(folder) / "rows.json"
        log = Path(folder) / "log.txt"
        command = [sys.executable, "-m", "bench", "--_one", module, "--_out", str(out)]
        if full:
            command.append("--full")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")]),
        }
        started = time.monotonic()
        with log.open("wb") as handle:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # The whole group: a module's gunicorn or moto server goes with it.
                os.killpg(process.pid, 9)
                process.wait()
                code = None
        seconds = time.monotonic() - started
        tail = log.read_text(errors="replace")[-3000:]
        if code is None:
            return {
                "module": module,
                "status": "error",
                "seconds": seconds,
                "error": f"timed out after {timeout:.0f} s",
                "log": tail,
            }
        if not out.exists():
            return {
                "module": module,
                "status": "error",
                "seconds": seconds,
                "error": f"exited with status {code} before writing its rows",
                "log": tail,
            }
        result = json.loads(out.read_text())
        result["seconds"] = seconds
        result["log"] = tail
        return result


# --- the table --------------------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(
    results: list[dict],
    *,
    command: str,
    machine: str,
    load_before: str,
    load_after: str,
    started: datetime,
    seconds: float,
    full: bool,
) -> str:
    size = "full sizes (issue 14)" if full else "small sizes"
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m bench` (`make bench`); do not edit by hand. Every figure is",
        "measured beside its bare baseline **in the same run**, so the ratio is what to read on",
        "a shared, noisy machine.",
        "",
        f"- command: `{command}` ({size})",
        f"- run: {started:%Y-%m-%d %H:%M} UTC, {seconds / 60:.1f} min",
        f"- machine: {machine}",
        f"- load average (1 / 5 / 15 min): before {load_before}; after {load_after}",
        "",
        "| path | size | figure | baseline | ratio | target | met? |",
        "|---|---|---|---|---|---|---|",
    ]
    notes, errors, missing = [], [], []
    for result in results:
        module = result["module"]
        if result["status"] == "missing":
            missing.append(module)
            continue
        if result["status"] == "error":
            lines.append(f"| {module}: **error** | | | | | | no |")
            errors.append(result)
            continue
        for row in result.get("rows", []):
            ratio = (row["figure"] / row["baseline"]) if row.get("baseline") else None
            baseline = (
                f"{_number(row['baseline'])} {row['unit']} ({_cell(row['baseline_label'])})"
                if row.get("baseline") is not None
                else "—"
            )
            lines.append(
                "| "
                + " | ".join(
                    [
                        _cell(row["path"]),
                        _cell(row.get("size", "")),
                        f"{_number(row['figure'])} {row['unit']}",
                        baseline,
                        f"{ratio:.2f}×" if ratio is not None else "—",
                        _cell(row["target"]),
                        "yes" if row["met"] else "**no**",
                    ]
                )
                + " |"
            )
            note = row.get("note") or ""
            if not row["met"] and module in PROFILES:
                note = "; ".join(filter(None, [note, f"profile and reasons: {PROFILES[module]}"]))
            if note:
                notes.append(f"- {_cell(row['path'])}: {note}")
    if notes:
        lines += ["", "## Notes (where the time goes when a target is not met)", "", *notes]
    if errors:
        lines += ["", "## Errors", ""]
        for result in errors:
            lines.append(f"- `{result['module']}`: {_cell(result.get('error', ''))}")
            log = (result.get("traceback") or result.get("log") or "").strip()
            if log:
                lines += ["", "  ```", *("  " + line for line in log.splitlines()[-15:]), "  ```"]
    if missing:
        lines += [
            "",
            "## Not yet in the table",
            "",
            "These modules have no `table_rows(full)` yet; run them on their own "
            "(`.venv/bin/python bench/<module>.py --help`):",
            "",
            *(f"- `bench/{module}.py`" for module in missing),
        ]
    timing = ", ".join(f"{r['module']} {r.get('seconds', 0):.0f} s" for r in results)
    lines += ["", f"Time per module: {timing}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--full", action="store_true", help="the sizes of issue 14")
    parser.add_argument("--only", help="comma-separated modules, e.g. xapi,search")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--timeout", type=float, help="seconds per module")
    parser.add_argument("--_one", help=argparse.SUPPRESS)
    parser.add_argument("--_out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._one:
        return run_one(args._one, args.full, args._out)

    from bench.common import load_average, machine_description

    available = benchmark_modules()
    modules = available
    if args.only:
        modules = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(modules) - set(available))
        if unknown:
            parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(available)}")
    timeout = args.timeout or (FULL_TIMEOUT_S if args.full else SMALL_TIMEOUT_S)
    command = (
        "python -m bench"
        + (" --full" if args.full else "")
        + (f" --only {args.only}" if args.only else "")
    )
    started = datetime.now(UTC)
    load_before = load_average()
    clock = time.monotonic()
    results = []
    for module in modules:
        print(f"== {module} ...", flush=True)
        result = run_module(module, args.full, timeout)
        status = {"ok": f"{len(result.get('rows', []))} row(s)", "missing": "not yet in the table"}
        print(
            f"   {status.get(result['status'], 'error: ' + result.get('error', ''))}"
            f" ({result.get('seconds', 0):.0f} s)",
            flush=True,
        )
        results.append(result)
    text = render(
        results,
        command=command,
        machine=machine_description(),
        load_before=load_before,
        load_after=load_average(),
        started=started,
        seconds=time.monotonic() - clock,
        full=args.full,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT_ROOT))
    raise SystemExit(main())
