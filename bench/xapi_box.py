"""Whole-box profile of single-statement POSTs (issue 14): where the CPU of the machine goes
while bench/xapi.py's single-POST phase runs, for Shuyuan and for the bare baseline.

On one PostgreSQL database (``--database``, created afresh and dropped at the end), with
gunicorn -w 2 on fixed ports (``--port``, ``--port + 1`` for the bare route), for each
server in turn:

1. **CPU** (``/proc/<pid>/stat`` ticks before and after a ``--seconds`` run of 8 clients):
   the gunicorn workers, the PostgreSQL backends of the database (``pg_stat_activity``),
   the load client, and the whole machine (``/proc/stat``, so the share other processes
   took is visible); printed as CPU ms per POST.
2. **SQL per POST** (``--statements-log``): ``ALTER DATABASE … SET log_statement = 'all'``,
   a fresh server, ``--logged`` POSTs one after the other, and the lines of PostgreSQL's
   log (``pg_current_logfile()``) for this database counted by kind (BEGIN, SAVEPOINT,
   SELECT, COPY, INSERT, COMMIT, …).  Each is one round trip.
3. **py-spy** (``--py-spy PATH``): ``py-spy record`` on both workers during a second load
   run; prints the frames with the largest share of the samples (inclusive), and writes the
   collapsed stacks to ``--flame-dir``.

The client is bench/xapi.py's (Python ``requests``, 8 threads) or ``--client wrk`` (wrk
with a Lua script that sends bench/xapi.py's statements, each with a fresh id), the same
for both servers.

    PYTHONPATH=$PWD:$PWD/plugins .venv/bin/python bench/xapi_box.py --statements-log \\
        --py-spy /path/to/py-spy --client python
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    DEFAULT_PG_ADMIN_URL,
    Gunicorn,
    _children,
    _process_cpu_seconds,
    percentiles,
)
from bench.xapi import (  # noqa: E402
    BareServer,
    lrs_app,
    lrs_headers,
    make_statement,
    post_load,
    wrk_post_load,
)


class SlowStart(Gunicorn):
    """Gunicorn given 3 minutes to boot (a loaded machine)."""

    def __enter__(self):
        return self.start(timeout=180)


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle (user, nice, system, irq, softirq, steal)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def backend_pids(admin_url: str, database: str) -> list[int]:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return [pid for (pid,) in rows]


def worker_pids(master: int) -> list[int]:
    return _children(master)


class Box:
    """CPU seconds per group of processes between :meth:`start` and :meth:`stop`."""

    def __init__(self, master: int, admin_url: str, database: str, client_pid: int | None):
        self.master, self.admin_url, self.database = master, admin_url, database
        self.client_pid = client_pid

    def groups(self) -> dict[str, list[int]]:
        groups = {
            "gunicorn workers": worker_pids(self.master),
            "gunicorn master": [self.master],
            "PostgreSQL backends": backend_pids(self.admin_url, self.database),
        }
        if self.client_pid:
            groups["load client"] = [self.client_pid]
        return groups

    def sample(self) -> dict[str, dict[int, float]]:
        return {
            name: {pid: _process_cpu_seconds(pid) for pid in pids}
            for name, pids in self.groups().items()
        }

    def start(self):
        self.before = self.sample()
        self.machine_before = machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        after = self.sample()
        seconds = {
            name: sum(cpu - self.before.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items())
            for name, pids in after.items()
        }
        seconds["whole machine"] = machine_busy_seconds() - self.machine_before
        return seconds


def load(args, url: str, headers: dict, box: Box) -> dict:
    """One load run of ``args.seconds`` with the CPU meter around it."""
    if args.client == "wrk":

        def on_start(pid):
            box.client_pid = pid
            box.start()

        result = wrk_post_load(url, headers, args.clients, args.seconds, 1, 1, on_start)
        cpu = box.stop()
        cpu["load client"] = result.client_cpu  # wrk has exited: its rusage
        p50, p95 = result.p50, result.p95
    else:
        box.client_pid = os.getpid()
        box.start()
        result = post_load(url, headers, args.clients, args.seconds, 1, seed=1)
        cpu = box.stop()
        p = percentiles(result.latencies)
        p50, p95 = p["p50"], p["p95"]
    return {
        "ok": result.requests,
        "errors": sum(result.errors.values()),
        "elapsed": result.elapsed,
        "p50": p50,
        "p95": p95,
        "cpu": cpu,
    }


def report(label: str, figures: dict) -> None:
    ok = max(figures["ok"], 1)
    print(
        f"{label}: {figures['ok'] / figures['elapsed']:,.0f} POSTs/s, p50 {figures['p50']:.1f} ms, "
        f"p95 {figures['p95']:.1f} ms, errors {figures['errors']}"
    )
    for name, seconds in figures["cpu"].items():
        print(f"    {name:22s} {seconds:7.2f} CPU s  {seconds * 1000 / ok:6.2f} ms per POST")
    ours = sum(v for k, v in figures["cpu"].items() if k != "whole machine")
    other = figures["cpu"]["whole machine"] - ours
    print(f"    {'everything else':22s} {other:7.2f} CPU s  (other processes on the machine)")


def count_statements(
    admin_url: str, database: str, start_server, url: str, headers: dict, posts: int
) -> collections.Counter:
    import psycopg
    import requests

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{database}\" SET log_statement = 'all'")
        logfile = conn.execute("SELECT pg_current_logfile()").fetchone()[0]
        directory = conn.execute("SHOW data_directory").fetchone()[0]
        version = conn.execute("SHOW server_version_num").fetchone()[0][:2]
    if logfile is None:  # no logging collector: Debian's pg_ctlcluster sends stderr here
        logfile = f"/var/log/postgresql/postgresql-{version}-main.log"
    path = Path(logfile if logfile.startswith("/") else os.path.join(directory, logfile))
    rng = random.Random(5)
    counts: collections.Counter = collections.Counter()
    try:
        with start_server() as server, requests.Session() as session:
            for _ in range(5):
                session.post(
                    server.base_url + url, data=json.dumps(make_statement(rng)), headers=headers
                )
            time.sleep(0.5)
            offset = path.stat().st_size
            for _ in range(posts):
                response = session.post(
                    server.base_url + url, data=json.dumps(make_statement(rng)), headers=headers
                )
                assert response.status_code == 200, response.text
            time.sleep(1.0)
            with path.open("rb") as log:
                log.seek(offset)
                text = log.read().decode("utf-8", "replace")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{database}" RESET log_statement')
    pattern = re.compile(r"@" + re.escape(database) + r" LOG:  (?:statement|execute [^:]*): (\w+)")
    for match in pattern.finditer(text):
        counts[match.group(1).upper()] += 1
    return counts


def py_spy(path: str, pids: list[int], seconds: float, out_dir: Path, label: str, gil: bool):
    processes = []
    for pid in pids:
        out = out_dir / f"{label}-{pid}{'-gil' if gil else ''}.txt"
        command = [path, "record", "--pid", str(pid), "--duration", f"{seconds:.0f}"]
        command += ["--rate", "200", "--format", "raw", "--output", str(out), "--nonblocking"]
        command += ["--gil"] if gil else []
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append((out, spy))
    time.sleep(1.0)  # py-spy attaching
    return processes


def summarise_stacks(files: list[Path], top: int) -> None:
    inclusive: collections.Counter = collections.Counter()
    total = waiting = 0
    for file in files:
        if not file.exists():
            continue
        for line in file.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            count = int(count)
            total += count
            if "Connection.wait (psycopg" in stack:
                waiting += count
            frames = set()
            for frame in stack.split(";"):
                name = re.sub(r":\d+\)", ")", frame)  # one entry per function, not per line
                frames.add(name)
            for name in frames:
                inclusive[name] += count
    if not total:
        print("    (no samples)")
        return
    print(f"    {100 * waiting / total:5.1f} %  waiting for PostgreSQL (psycopg Connection.wait)")
    for name, count in inclusive.most_common(top):
        print(f"    {100 * count / total:5.1f} %  {name[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="shuyuan_bench_xapi_box")
    parser.add_argument("--port", type=int, default=9810)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--client", choices=("python", "wrk"), default="python")
    parser.add_argument("--statements-log", action="store_true")
    parser.add_argument("--logged", type=int, default=50, help="POSTs counted in the log")
    parser.add_argument("--py-spy", help="path of py-spy: also sample both workers")
    parser.add_argument(
        "--gil",
        action="store_true",
        help="py-spy samples only while the worker holds the GIL (running "
        "Python, not waiting for PostgreSQL or the socket)",
    )
    parser.add_argument("--flame-dir", default=tempfile.gettempdir())
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--only", choices=("shuyuan", "bare"))
    args = parser.parse_args()

    import psycopg
    from sqlalchemy.engine import make_url

    admin_sa = os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL)
    admin_url = make_url(admin_sa).set(drivername="postgresql").render_as_string(False)
    database_url = make_url(admin_sa).set(database=args.database).render_as_string(False)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')
    print(f"load average at start: {os.getloadavg()}")
    try:
        _app, key, secret, district_id = lrs_app(database_url)
        headers = lrs_headers(key, secret)

        def shuyuan():
            server = SlowStart(database_url, workers=2)
            server.port, server.base_url = args.port, f"http://127.0.0.1:{args.port}"
            return server

        def bare():
            server = BareServer(database_url, district_id, 2)
            server.port = args.port + 1
            server.base_url = f"http://127.0.0.1:{server.port}"
            return server

        targets = [
            ("Shuyuan", shuyuan, "/xapi/statements", headers),
            ("bare", bare, "/statements", {"Content-Type": "application/json"}),
        ]
        for label, make, path, target_headers in targets:
            if args.only and args.only != label.lower():
                continue
            if args.statements_log:
                counts = count_statements(
                    admin_url, args.database, make, path, target_headers, args.logged
                )
                per = {k: v / args.logged for k, v in counts.most_common()}
                print(
                    f"{label}: SQL statements (round trips) per POST, {args.logged} POSTs: "
                    f"{sum(per.values()):.2f} = "
                    + ", ".join(f"{k} {v:.2f}" for k, v in per.items())
                )
            with make() as server:
                import requests

                for _ in range(40):  # warm both workers and their connections
                    requests.post(
                        server.base_url + path,
                        headers=target_headers,
                        data=json.dumps(make_statement(random.Random(9))),
                        timeout=30,
                    )
                master = server.process.pid
                box = Box(master, admin_url, args.database, None)
                report(
                    f"{label} ({args.client} client)",
                    load(args, server.base_url + path, target_headers, box),
                )
                if args.py_spy:
                    out_dir = Path(args.flame_dir)
                    out_dir.mkdir(parents=True, exist_ok=True)
                    spies = py_spy(
                        args.py_spy, worker_pids(master), args.seconds, out_dir, label, args.gil
                    )
                    box2 = Box(master, admin_url, args.database, None)
                    figures = load(args, server.base_url + path, target_headers, box2)
                    for _out, process in spies:
                        process.wait(timeout=60)
                    print(
                        f"{label} under py-spy: {figures['ok'] / figures['elapsed']:,.0f} POSTs/s;"
                        " frames by share of the workers' samples (inclusive):"
                    )
                    summarise_stacks([out for out, _ in spies], args.top)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
