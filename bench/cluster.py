"""Throughput of a Shuyuan cluster behind nginx, with one and with two web hosts.

    .venv/bin/python bench/cluster.py [--resources 300] [--seconds 20] [--concurrency 16]
                                     [--search-docs 100000]

For each run the same machine serves: nginx (deploy/nginx/shuyuan.conf) in front of 1 or 2
gunicorn hosts (deploy/gunicorn.conf.py, 2 workers each), a worker, the scheduler,
PostgreSQL, Redis and moto S3 (tests/cluster/harness.py).  Measured paths:

- catalog list: ``GET /api/v1/resources?page=N`` as a student;
- xAPI ingest: ``POST /xapi/statements`` with batches of 100 statements (issue 14's size).

The bare baseline is the same request sent straight to one gunicorn host, in the same run,
so ``1 host via nginx ÷ direct`` is the balancer's own overhead and ``2 hosts ÷ 1 host`` the
scaling.  Direct and via nginx take turns in short windows (direct, nginx, nginx, direct, twice
by default), and in every window via nginx the CPU time of the nginx workers and of the
gunicorn workers is read from ``/proc``: the balancer's CPU per request beside gunicorn's is
the overhead that does not depend on how the machine's load falls into the windows.
Before the first window each cluster is warmed (2 s of each path's requests) and its
database analyzed (``ANALYZE``), so that no window meets a planner without statistics.
With ``--search-docs N`` the same run then measures search p95 at N documents on the
PostgreSQL backend beside Whoosh (bench/search.py's measurement, each beside its bare
baseline).  ``table_rows(full)`` returns everything as ``bench.table.Row`` objects.
On a 2-core machine two hosts cannot be faster than one (both share the cores); the
figure says what the balancer costs, not what a second machine would add.
Benchmarks print figures; they never assert on them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine_description, run_threads, throwaway_postgres  # noqa: E402
from tests.cluster.harness import children, running_cluster  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of ``pids`` so far (a process gone counts 0): nanoseconds on a CPU of each
    of their threads from ``/proc/<pid>/task/<tid>/schedstat`` (nginx spends a few 10 ms
    clock ticks per window, too coarse for ``/proc/<pid>/stat``), else user + system ticks."""
    total = 0.0
    for pid in pids:
        try:
            ran = 0
            for task in os.scandir(f"/proc/{pid}/task"):
                with open(f"{task.path}/schedstat") as stat:
                    ran += int(stat.read().split()[0])
            total += ran / 1e9
            continue
        except (FileNotFoundError, IndexError, ValueError):
            pass  # a thread ended while being read, or no schedstat: the coarser ticks
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def redis_db() -> int:
    """The Redis database of ``BENCH_REDIS_URL`` (each engineer's own), else 9."""
    url = os.environ.get("BENCH_REDIS_URL", "")
    tail = url.rsplit("/", 1)[-1] if url.count("/") >= 3 else ""
    return int(tail) if tail.isdigit() else 9


def seed_resources(cluster, count: int) -> None:
    from app.accounts.models import User
    from app.catalog.models import Resource
    from app.extensions import db
    from tests.catalog.helpers import make_content
    from tests.conftest import make_app

    app = make_app(cluster.env["DATABASE_URL"], str(cluster.root / "bench-seed"))
    with app.app_context():
        teacher = db.session.query(User).filter_by(email="teacher@example.test").one()
        for n in range(count):
            make_content(
                teacher,
                Resource,
                title=f"天文资源 {n}",
                kind="link",
                url=f"https://example.org/{n}",
                visibility="region",
            )


def load(seconds: float, concurrency: int, send) -> tuple[float, int, list[float]]:
    """Run ``send(session) -> bool`` from ``concurrency`` threads for ``seconds``."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker():
        with requests.Session() as session:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                try:
                    ok = send(session)
                except requests.RequestException:
                    ok = False
                took = (time.perf_counter() - began) * 1000
                with lock:
                    if ok:
                        latencies.append(took)
                    else:
                        errors[0] += 1

    seconds = run_threads([worker] * concurrency)
    return len(latencies) / seconds, errors[0], latencies


def analyze(database_url: str) -> None:
    """``ANALYZE`` the whole (throwaway) database: planner statistics, as autovacuum keeps
    them on a server that has run for more than a minute."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def p95(values: list[float]) -> float:
    values = sorted(values)
    return values[int(0.95 * (len(values) - 1))] if values else float("nan")


def measure(
    cluster, base: str, seconds: float, concurrency: int, batch: int, warm: bool = True
) -> dict:
    student = cluster.tokens["student"]
    page = [0]

    def catalog(session):
        page[0] = page[0] % 10 + 1
        answer = session.get(
            f"{base}/api/v1/resources", params={"page": page[0]}, headers=student, timeout=30
        )
        return answer.status_code == 200

    def ingest(session):
        statements = [
            {
                "id": str(uuid.uuid4()),
                "actor": {"mbox": f"mailto:l{n % 50}@example.test"},
                "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
                "object": {"id": f"https://example.test/a/{n % 20}"},
            }
            for n in range(batch)
        ]
        answer = session.post(
            f"{base}/xapi/statements",
            json=statements,
            auth=cluster.xapi_auth,
            headers={"X-Experience-API-Version": "1.0.3"},
            timeout=60,
        )
        return answer.status_code == 200

    if warm:
        load(2, concurrency, catalog)  # warm every worker (dictionaries, pools)
        load(2, concurrency, ingest)
        # The database was created a minute ago: before autovacuum's first ANALYZE the
        # planner takes xapi_statements for a few pages and looks up a batch's ids by
        # scanning all of the district's statements instead of the unique index (O(rows)
        # per batch: 20 ms at 12,000 stored, 67 ms at 28,000), so every window would be
        # slower than the one before it, whichever path it measured.  A deployed server's
        # tables have statistics; both paths are measured on that steady state.
        analyze(cluster.env["DATABASE_URL"])
    balancer = children(cluster.procs["nginx"].pid)
    web = [pid for _, proc in cluster.web.values() for pid in children(proc.pid)]
    cpu = [cpu_seconds(balancer), cpu_seconds(web)]
    rate, errors, latencies = load(seconds, concurrency, catalog)
    cpu_catalog = [cpu_seconds(balancer) - cpu[0], cpu_seconds(web) - cpu[1]]
    cpu = [cpu_seconds(balancer), cpu_seconds(web)]
    xrate, xerrors, _ = load(seconds, concurrency, ingest)
    cpu_xapi = [cpu_seconds(balancer) - cpu[0], cpu_seconds(web) - cpu[1]]
    return {
        "catalog_rps": rate,
        "catalog_p95": p95(latencies),
        "catalog_latencies": latencies,
        "catalog_errors": errors,
        "xapi_sps": xrate * batch,
        "xapi_errors": xerrors,
        # CPU seconds per request (per batch for xAPI) of nginx's workers and of the
        # gunicorn workers; nginx's is 0 when the requests went straight to gunicorn.
        "catalog_cpu": [value / max(rate * seconds, 1) for value in cpu_catalog],
        "xapi_cpu": [value / max(xrate * seconds, 1) for value in cpu_xapi],
    }


def merged(runs: list[dict]) -> dict:
    """Equal-length runs of one set-up as one figure: mean rates, summed errors."""
    latencies = [value for run in runs for value in run["catalog_latencies"]]
    return {
        "catalog_rps": sum(run["catalog_rps"] for run in runs) / len(runs),
        "catalog_p95": p95(latencies),
        "catalog_errors": sum(run["catalog_errors"] for run in runs),
        "xapi_sps": sum(run["xapi_sps"] for run in runs) / len(runs),
        "xapi_errors": sum(run["xapi_errors"] for run in runs),
        "catalog_cpu": [sum(run["catalog_cpu"][i] for run in runs) / len(runs) for i in (0, 1)],
        "xapi_cpu": [sum(run["xapi_cpu"][i] for run in runs) / len(runs) for i in (0, 1)],
    }


def run(resources: int, seconds: float, concurrency: int, batch: int, rounds: int = 2) -> list:
    rows = []
    for hosts in (1, 2):
        with (
            throwaway_postgres() as database_url,
            tempfile.TemporaryDirectory(prefix="shuyuan-bench-cluster-") as root,
            running_cluster(
                Path(root), database_url, redis_db=redis_db(), web_hosts=hosts, web_workers=2
            ) as cluster,
        ):
            seed_resources(cluster, resources)
            if hosts == 1:
                # Direct and via nginx take turns (direct, nginx, nginx, direct, `rounds`
                # times), each for an equal share of the time: measured one after the other,
                # the second path always met a statements table the first had filled and
                # whatever work the first left behind (autovacuum, the RQ worker), and on
                # this shared machine one window that other jobs' load (or gunicorn handing
                # most connections to one worker) happened to hit decided the ratio.
                runs = {"direct": [], "nginx": []}
                order = ("direct", "nginx", "nginx", "direct") * rounds
                for n, path in enumerate(order):
                    base = cluster.url("a") if path == "direct" else cluster.lb
                    window = seconds / (2 * rounds)
                    runs[path].append(
                        measure(cluster, base, window, concurrency, batch, warm=n == 0)
                    )
                direct, behind = merged(runs["direct"]), merged(runs["nginx"])
                direct["load"] = behind["load"] = os.getloadavg()[0]
                rows.append(("1 host, direct (baseline)", direct))
            else:
                behind = measure(cluster, cluster.lb, seconds, concurrency, batch)
                behind["load"] = os.getloadavg()[0]
            rows.append((f"{hosts} host{'s' if hosts > 1 else ''} via nginx", behind))
    return rows


def cluster_rows(rows: list, resources: int) -> list:
    """bench.table.Row objects: each set-up beside the one it is compared with."""
    from bench.table import Row

    direct, one, two = rows[0][1], rows[1][1], rows[2][1]
    size = f"{resources} resources, 2 gunicorn workers per host"
    out = []
    # Each set-up beside the one before it: behind nginx vs direct, two hosts vs one.
    comparisons = (
        (
            "1 host behind nginx",
            one,
            direct,
            "same host, direct (no balancer)",
            "balancer overhead <= 10 % (ratio >= 0.9)",
        ),
        (
            "2 hosts behind nginx (same 2 cores)",
            two,
            one,
            "1 host behind nginx",
            "no loss from the second host (ratio >= 0.9)",
        ),
    )
    for key, unit, name, cpu in (
        ("catalog_rps", "req/s", "catalog list API", "catalog_cpu"),
        ("xapi_sps", "st/s", "xAPI ingest (batches)", "xapi_cpu"),
    ):
        for where, measured, against, against_label, target in comparisons:
            note = f"load average {measured['load']:.1f}"
            if measured is one:
                # What nginx itself costs, independent of how the load fell into windows.
                balancer, web = (1000 * value for value in one[cpu])
                note += (
                    f"; CPU per request via nginx: nginx {balancer:.2f} ms, gunicorn "
                    f"{web:.2f} ms ({100 * balancer / web if web else 0:.1f} %)"
                )
            out.append(
                Row(
                    path=f"{name}, {where}",
                    figure=round(measured[key]),
                    unit=unit,
                    baseline=round(against[key]),
                    baseline_label=against_label,
                    target=target,
                    met=measured[key] >= 0.9 * against[key],
                    size=size + (", batches of 100" if key == "xapi_sps" else ""),
                    note=note,
                )
            )
    return out


def table_rows(full: bool) -> list:
    """Cluster throughput (1 and 2 hosts behind nginx, beside direct); ``full``: 20 s per
    path, else 8 s (four windows of 2 s each way).  Search p95 on both backends comes from
    bench/search.py in the same ``python -m bench`` run (``--search-docs`` adds it to a
    standalone cluster run)."""
    seconds = 20 if full else 8
    return cluster_rows(run(300, seconds, 16, 100), 300)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--rounds", type=int, default=2, help="turns of (direct, nginx, nginx, direct)"
    )
    parser.add_argument(
        "--search-docs", type=int, default=0, help="then search p95 at N docs on both backends"
    )
    parser.add_argument("--search-queries", type=int, default=500)
    args = parser.parse_args(argv)
    rows = run(args.resources, args.seconds, args.concurrency, args.batch, args.rounds)
    load_avg = os.getloadavg()
    print(f"machine: {machine_description()}; load average {load_avg[0]:.1f}")
    print(
        f"{args.concurrency} clients, {args.seconds:.0f} s per path, xAPI batches of {args.batch}"
    )
    print("| set-up | catalog list req/s | p95 ms | xAPI statements/s | errors | load avg |")
    print("|---|---|---|---|---|---|")
    base = rows[0][1]
    for label, row in rows:
        catalog_ratio = row["catalog_rps"] / base["catalog_rps"]
        xapi_ratio = row["xapi_sps"] / base["xapi_sps"]
        print(
            f"| {label} | {row['catalog_rps']:.0f} ({catalog_ratio:.2f}×)"
            f" | {row['catalog_p95']:.0f} | {row['xapi_sps']:.0f} ({xapi_ratio:.2f}×) | "
            f"{row['catalog_errors'] + row['xapi_errors']} | {row['load']:.1f} |",
            flush=True,
        )
    one = rows[1][1]
    for name, key in (("catalog list", "catalog_cpu"), ("xAPI batch", "xapi_cpu")):
        print(
            f"CPU per {name} via nginx (1 host): nginx {1000 * one[key][0]:.2f} ms, "
            f"gunicorn workers {1000 * one[key][1]:.2f} ms"
        )
    if args.search_docs:
        from bench import search

        result = search.measure(args.search_docs, args.search_queries, os.cpu_count() or 1)
        print("| path | size | figure | baseline | ratio | target | met | note |")
        print("|---|---|---|---|---|---|---|---|")
        for row in search.rows_from(result):
            ratio = f"{row.ratio:.2f}x" if row.ratio else "–"
            print(
                f"| {row.path} | {row.size} | {row.figure} {row.unit} | {row.baseline}"
                f" ({row.baseline_label}) | {ratio} | {row.target} |"
                f" {'yes' if row.met else 'no'} | {row.note} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
