"""Profile search queries in-process, on an index kept between runs.

Uses (and keeps) database ``--pg-database`` of the local server (PostgreSQL backend),
or folder ``--whoosh-dir`` (Whoosh backend: the index and a SQLite database); builds the
``--docs`` synthetic documents of bench/search.py there the first time (the same
documents and queries, same seeds), then runs the queries through
``app.search.services.search`` (anonymous reader, top 10, highlights, no facet counts,
each in its own transaction) and prints, per phase, wall and CPU milliseconds per query
(mean and p95): the whole search, the backend's statement(s), the highlighting of the
page (``_hit``), and the rest; the statements per search; the slowest queries; and
pyinstrument's call tree of the whole pass::

    .venv/bin/python bench/search_profile.py --docs 100000 --pg-database shuyuan_bench_me
    .venv/bin/python bench/search_profile.py --docs 100000 --pg-database shuyuan_bench_me \\
        --facets --html /tmp/search.html
    .venv/bin/python bench/search_profile.py --docs 100000 --whoosh-dir /tmp/whoosh-100k

``bench/search.py --skip-whoosh --pg-database NAME`` reuses the same index.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import kept_postgres, percentile  # noqa: E402


class Clock:
    """Wall and CPU time spent inside wrapped functions, per query."""

    def __init__(self):
        self.current: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        self.per_query: list[dict[str, list[float]]] = []

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                slot = self.current[label]
                slot[0] += (time.perf_counter() - wall) * 1000
                slot[1] += (time.process_time() - cpu) * 1000

        setattr(owner, name, timed)

    def next_query(self) -> None:
        self.per_query.append(self.current)
        self.current = defaultdict(lambda: [0.0, 0.0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--pg-database", help="PostgreSQL backend: this kept database")
    parser.add_argument(
        "--whoosh-dir",
        help="Whoosh backend instead: a kept folder (index + SQLite database), built the"
        " first time and reused after",
    )
    parser.add_argument("--facets", action="store_true", help="with the 8 facet counts")
    parser.add_argument("--html", help="also write pyinstrument's profile as HTML here")
    args = parser.parse_args()
    if bool(args.pg_database) == bool(args.whoosh_dir):
        parser.error("give one of --pg-database and --whoosh-dir")

    from contextlib import nullcontext

    from pyinstrument import Profiler
    from sqlalchemy import event

    from app import create_app
    from app.extensions import db
    from app.search import services
    from app.search.analysis import warm_up
    from app.search.services import searching
    from bench.search import make_documents, make_queries

    warm_up()
    docs, chinese, english = make_documents(args.docs)
    queries = make_queries(docs, chinese, english, args.queries)
    if args.whoosh_dir:
        Path(args.whoosh_dir).mkdir(parents=True, exist_ok=True)
        kept = nullcontext(f"sqlite:///{Path(args.whoosh_dir).resolve()}/bench.db")
    else:
        kept = kept_postgres(args.pg_database)
    with kept as url:
        config = {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "SEARCH_BACKEND": "whoosh" if args.whoosh_dir else "postgresql",
            "PLUGINS": [],
            "JOBS_EAGER": True,
            "REDIS_URL": None,
        }
        if args.whoosh_dir:
            config["SEARCH_INDEX_DIR"] = f"{Path(args.whoosh_dir).resolve()}/index"
            config["INSTANCE_PATH"] = str(Path(args.whoosh_dir).resolve())
        app = create_app(config)
        with app.app_context():
            db.create_all()
            backend = services.get_backend()
            if backend.fingerprints() != {d["id"]: d["fingerprint"] for d in docs}:
                print(f"building the index of {len(docs):,} documents …", flush=True)
                backend.rebuild(iter(docs), procs=args.procs, limitmb=256)
                db.session.commit()
                if not args.whoosh_dir:
                    db.session.execute(db.text("ANALYZE search_documents"))
                    db.session.execute(db.text("ANALYZE search_terms"))
                    db.session.commit()
            db.session.rollback()
            facets = searching.SHOWN_FACETS if args.facets else ()

            def search(q):
                try:
                    return services.search(None, q, per_page=10, facets=facets)
                finally:
                    db.session.rollback()

            for q in queries:  # warm: caches, hint bits, the did-you-mean vocabulary
                search(q)
            clock = Clock()
            clock.wrap(type(backend), "search", "backend.search (SQL)")
            clock.wrap(searching, "_hit", "highlights (_hit)")
            clock.wrap(searching, "match_terms", "match_terms")
            clock.wrap(searching, "suggest", "did-you-mean")
            statements = []

            @event.listens_for(db.engine, "before_cursor_execute")
            def count(conn, cursor, statement, parameters, context, executemany):
                statements.append(statement)

            totals = []
            profiler = Profiler(interval=0.0005)
            profiler.start()
            for q in queries:
                wall, cpu = time.perf_counter(), time.process_time()
                result = search(q)
                slot = clock.current["whole search"]
                slot[0] += (time.perf_counter() - wall) * 1000
                slot[1] += (time.process_time() - cpu) * 1000
                clock.current["statements"] = [len(statements), 0]
                clock.current["hits"] = [result.total, 0]
                statements.clear()
                totals.append(q)
                clock.next_query()
            profiler.stop()

    labels = [
        "whole search",
        "backend.search (SQL)",
        "highlights (_hit)",
        "match_terms",
        "did-you-mean",
    ]
    print(
        f"{len(queries)} queries over {args.docs:,} documents,"
        f" {'8 facet counts' if args.facets else 'no facet counts'}; ms per query"
    )
    print(f"{'phase':28} {'wall mean':>9} {'wall p95':>9} {'cpu mean':>9} {'cpu p95':>9}")
    for label in labels:
        walls = sorted(p.get(label, [0, 0])[0] for p in clock.per_query)
        cpus = sorted(p.get(label, [0, 0])[1] for p in clock.per_query)
        print(
            f"{label:28} {statistics.mean(walls):9.2f} {percentile(walls, 0.95):9.2f}"
            f" {statistics.mean(cpus):9.2f} {percentile(cpus, 0.95):9.2f}"
        )
    counts = [p["statements"][0] for p in clock.per_query]
    print(f"statements per search: mean {statistics.mean(counts):.2f}, max {max(counts)}")
    slowest = sorted(
        zip(queries, clock.per_query, strict=True), key=lambda qp: -qp[1]["whole search"][0]
    )[:12]
    print("slowest queries (wall ms: whole / SQL / highlights; hits; statements):")
    for q, p in slowest:
        print(
            f"  {p['whole search'][0]:7.1f} {p['backend.search (SQL)'][0]:7.1f}"
            f" {p.get('highlights (_hit)', [0, 0])[0]:7.1f}  {int(p['hits'][0]):6d}"
            f"  {int(p['statements'][0])}  {q}"
        )
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        Path(args.html).write_text(profiler.output_html())


if __name__ == "__main__":
    main()
