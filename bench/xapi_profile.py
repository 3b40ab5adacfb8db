"""Profile the LRS's POST path in-process (pyinstrument), on a throwaway PostgreSQL database.

Sends ``--requests`` single-statement POSTs and ``--batches`` batches of 100 through the
Flask test client (no HTTP server, no other clients), and prints pyinstrument's call tree
of each phase, so the figures in docs/xapi.md can be traced to the frames that cost them::

    .venv/bin/python bench/xapi_profile.py --requests 300 --batches 20
    .venv/bin/python bench/xapi_profile.py --html /tmp/xapi.html   # browsable profile
    .venv/bin/python bench/xapi_profile.py --cpu    # CPU ms per request + cProfile by CPU

Also prints the SQL statements one POST runs (the same count tests/xapi/test_queries.py
asserts).

``--gets N`` profiles the GET path instead: ``--statements`` (default 20,000, the small
size of bench/xapi.py) are bulk-loaded with COPY, then N GETs of each kind of bench/xapi.py
(agent, verb+since, activity; limit 25) go through the test client, and, for comparison,
through the bare baseline's route (bench/xapi_bare.py) in the same process.  Printed per
kind: CPU ms per GET (``time.process_time``, so the figure holds on a loaded machine) for
both, the SQL Shuyuan runs for one GET, ``EXPLAIN ANALYZE`` of each of those statements
with its real parameters, and pyinstrument's call tree::

    .venv/bin/python bench/xapi_profile.py --gets 200
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import kept_postgres, throwaway_postgres  # noqa: E402
from bench.xapi import make_statement  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--html", help="also write the batch profile as HTML here")
    parser.add_argument("--gets", type=int, default=0, help="profile N GETs of each kind instead")
    parser.add_argument("--statements", type=int, default=20_000, help="bulk-loaded for --gets")
    parser.add_argument(
        "--database",
        help="POSTs: profile against this local PostgreSQL database, created if missing and "
        "kept (e.g. one bulk-loaded at 1M statements by an earlier run: "
        "`bench/xapi.py --database NAME`), instead of a throwaway empty one",
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="POSTs: CPU ms per request (time.process_time) and cProfile's top frames by "
        "CPU time instead of pyinstrument's wall-clock tree (holds on a loaded machine)",
    )
    args = parser.parse_args()
    if args.gets:
        profile_gets(args)
        return
    from pyinstrument import Profiler
    from sqlalchemy import event

    from app.extensions import db
    from bench.xapi import lrs_app, lrs_headers

    database = kept_postgres(args.database) if args.database else throwaway_postgres()
    with database as url:
        app, key, secret, _district_id = lrs_app(url)
        headers = lrs_headers(key, secret)
        rng = random.Random(1)
        http = app.test_client()
        for _ in range(20):  # warm up (imports, first connections)
            http.post("/xapi/statements", data=json.dumps(make_statement(rng)), headers=headers)
        with app.app_context():
            engine = db.engine
        statements: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement.split("\n")[0][:110])

        event.listen(engine, "before_cursor_execute", record)
        http.post("/xapi/statements", data=json.dumps(make_statement(rng)), headers=headers)
        event.remove(engine, "before_cursor_execute", record)
        print(f"SQL statements of one single POST: {len(statements)}")
        for s in statements:
            print("   ", s)

        singles = [json.dumps(make_statement(rng)) for _ in range(args.requests)]
        batches = [
            json.dumps([make_statement(rng) for _ in range(100)]) for _ in range(args.batches)
        ]
        for label, bodies in (("single POSTs", singles), ("batches of 100", batches)):
            if args.cpu:
                _cpu_profile(label, bodies, http, headers)
                continue
            profiler = Profiler(interval=0.0005)
            profiler.start()
            for body in bodies:
                response = http.post("/xapi/statements", data=body, headers=headers)
                assert response.status_code == 200, response.text
            session = profiler.stop()
            per = session.duration / len(bodies) * 1000
            print(f"\n=== {label}: {len(bodies)} requests, {per:.2f} ms wall per request ===")
            print(profiler.output_text(unicode=False, color=False, show_all=False, timeline=False))
            if args.html and label.startswith("batches"):
                Path(args.html).write_text(profiler.output_html())
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _cpu_profile(label: str, bodies: list[str], http, headers: dict) -> None:
    """CPU per request without a profiler, then the same bodies again under
    ``cProfile.Profile(time.process_time)`` (its overhead inflates the second run)."""
    import cProfile
    import pstats
    import time

    half = len(bodies) // 2
    cpu = time.process_time()
    for body in bodies[:half]:
        assert http.post("/xapi/statements", data=body, headers=headers).status_code == 200
    per = (time.process_time() - cpu) * 1000 / max(half, 1)
    print(f"\n=== {label}: {per:.2f} ms CPU per request ({half} requests) ===")
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for body in bodies[half:]:
        http.post("/xapi/statements", data=body, headers=headers)
    profile.disable()
    pstats.Stats(profile).sort_stats("cumulative").print_stats(r"app/|flask_limiter|flask/app", 40)


def _explain(url: str, sql: str, parameters) -> list[str]:
    """EXPLAIN ANALYZE of one statement as SQLAlchemy sent it (psycopg placeholders)."""
    import psycopg

    url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, parameters)
        return [line for (line,) in cur.fetchall()]


def profile_gets(args) -> None:
    import os
    import time

    from pyinstrument import Profiler
    from sqlalchemy import event

    from app.extensions import db
    from bench.xapi import bulk_load, lrs_app, lrs_headers, query_paths

    with throwaway_postgres() as url:
        app, key, secret, district_id = lrs_app(url)
        print(f"bulk-loading {args.statements:,} statements ...", flush=True)
        bulk_load(url, district_id, args.statements)
        os.environ["DATABASE_URL"] = url
        os.environ["BARE_DISTRICT_ID"] = str(district_id)
        from bench import xapi_bare

        headers = lrs_headers(key, secret)
        http = app.test_client()
        bare = xapi_bare.app.test_client()
        with app.app_context():
            engine = db.engine
        for kind, paths in query_paths(args.gets, 25).items():
            for path in paths[:10]:  # warm up (imports, connections, compiled cache)
                assert http.get("/xapi/statements" + path, headers=headers).status_code == 200
                assert bare.get("/statements" + path).status_code == 200
            sent: list = []

            def record(conn, cursor, statement, parameters, context, executemany, sent=sent):
                sent.append((statement, parameters))

            event.listen(engine, "before_cursor_execute", record)
            http.get("/xapi/statements" + paths[0], headers=headers)
            event.remove(engine, "before_cursor_execute", record)
            figures = {}
            for label, client_, prefix, extra in (
                ("bare", bare, "/statements", {}),
                ("shuyuan", http, "/xapi/statements", headers),
            ):
                cpu, wall = time.process_time(), time.perf_counter()
                for path in paths:
                    client_.get(prefix + path, headers=extra)
                figures[label] = (
                    (time.process_time() - cpu) * 1000 / len(paths),
                    (time.perf_counter() - wall) * 1000 / len(paths),
                )
            print(
                f"\n=== GET {kind}: Shuyuan {figures['shuyuan'][0]:.2f} ms CPU "
                f"({figures['shuyuan'][1]:.2f} ms wall), bare {figures['bare'][0]:.2f} ms CPU "
                f"({figures['bare'][1]:.2f} ms wall) per GET; {len(sent)} SQL statements ==="
            )
            for statement, parameters in sent:
                print("  SQL:", " ".join(statement.split())[:400])
                if statement.lstrip().upper().startswith("SELECT"):
                    for line in _explain(url, statement, parameters):
                        print("     ", line)
            profiler = Profiler(interval=0.0005)
            profiler.start()
            for path in paths:
                http.get("/xapi/statements" + path, headers=headers)
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False, timeline=False))
        if xapi_bare._connection is not None:
            xapi_bare._connection.close()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


if __name__ == "__main__":
    main()
