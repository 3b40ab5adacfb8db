"""Curriculum benchmark.

1. Import a generated CASE 1.0 package (default 20,000 items, 40,000 associations):
   seconds for validation + write + commit, and the process's peak memory.
2. "This week" for a student (class → calendar → week's lessons → knowledge points →
   exactMatchOf equivalents → aligned published resources she may see) with 100,000
   aligned resources: p50/p95 over repeated calls.

Runs on a throwaway PostgreSQL database by default (created and dropped on the server
of TEST_DATABASE_URL, like the tests), or on SQLite with ``--sqlite``:

    .venv/bin/python bench/curriculum.py
    .venv/bin/python bench/curriculum.py --sqlite --items 20000 --resources 100000
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from bench.common import (  # noqa: E402
    load_average,
    percentile,
    seed_aligned_resources,
    seed_school_people,
    seed_term_calendar,
)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate_package(items_wanted: int, associations_wanted: int, seed: int = 7) -> dict:
    """Subject → grades → editions → volumes → units → lessons (+ knowledge points),
    isChildOf for every item, precedes between lessons, exactMatchOf across editions
    and isRelatedTo filling up to ``associations_wanted``."""
    rng = random.Random(seed)
    doc_id = str(uuid.uuid4())
    doc_ref = {"title": "bench", "identifier": doc_id, "uri": f"urn:uuid:{doc_id}"}
    items, associations = [], []

    def new_entry(**fields) -> dict:
        """An item or association of the document, with a fresh identifier and uri."""
        identifier = str(uuid.uuid4())
        return {
            "identifier": identifier,
            "uri": f"urn:uuid:{identifier}",
            "CFDocumentURI": doc_ref,
            **fields,
        }

    def item(statement, item_type, code=None):
        entry = new_entry(
            fullStatement=statement,
            CFItemType=item_type,
            lastChangeDateTime="2026-08-01T00:00:00Z",
        )
        if code:
            entry["humanCodingScheme"] = code
        items.append(entry)
        return entry

    def node_uri(title, node):
        return {"title": title, "identifier": node["identifier"], "uri": node["uri"]}

    def link(kind, origin, destination, number=None):
        entry = new_entry(
            associationType=kind,
            originNodeURI=node_uri("o", origin),
            destinationNodeURI=node_uri("d", destination),
        )
        if number is not None:
            entry["sequenceNumber"] = number
        associations.append(entry)

    subject = item("数学", "Subject", "math")
    link("isChildOf", subject, doc_ref, 1)
    editions = ["pep", "bnu", "jiangsu", "hebei", "qingdao", "shanghai", "tongbian"]
    lessons_by_slot: dict[tuple, list[dict]] = {}
    # ~half the items are lessons, ~half knowledge points.
    grades = [f"g{n}" for n in range(1, 10)]
    per_volume_units, per_unit_lessons = 8, 6
    structure = len(editions) * len(grades) * 2 * (1 + per_volume_units * (1 + per_unit_lessons))
    kp_per_lesson = max(0, (items_wanted - structure) // (len(editions) * len(grades) * 2 * 8 * 6))
    for g_index, grade_code in enumerate(grades, start=1):
        grade = item(f"{g_index}年级", "Grade", grade_code)
        link("isChildOf", grade, subject, g_index)
        for e_index, edition_code in enumerate(editions, start=1):
            edition = item(edition_code, "Edition", edition_code)
            link("isChildOf", edition, grade, e_index)
            for v in (1, 2):
                volume = item(f"第{v}册", "Volume", f"{grade_code}-{v}")
                link("isChildOf", volume, edition, v)
                previous = None
                for u in range(1, per_volume_units + 1):
                    unit = item(f"第{u}章", "Unit", str(u))
                    link("isChildOf", unit, volume, u)
                    for n in range(1, per_unit_lessons + 1):
                        lesson = item(f"{u}.{n} 课时", "Lesson", f"{u}.{n}")
                        link("isChildOf", lesson, unit, n)
                        lessons_by_slot.setdefault((grade_code, v, u, n), []).append(lesson)
                        if previous is not None:
                            link("precedes", previous, lesson)
                        previous = lesson
                        for k in range(1, kp_per_lesson + 1):
                            kp = item(f"知识点 {u}.{n}.{k}", "Knowledge Point")
                            link("isChildOf", kp, lesson, k)
                        if len(items) >= items_wanted:
                            break
                    if len(items) >= items_wanted:
                        break
    while len(items) < items_wanted:
        kp = item("补充知识点", "Knowledge Point")
        link("isChildOf", kp, subject)
    for slot_lessons in lessons_by_slot.values():
        for other in slot_lessons[1:]:
            if len(associations) < associations_wanted:
                link("exactMatchOf", other, slot_lessons[0])
    all_lessons = [lesson for group in lessons_by_slot.values() for lesson in group]
    while len(associations) < associations_wanted:
        a, b = rng.sample(all_lessons, 2)
        link("isRelatedTo", a, b)
    doc = {
        "identifier": doc_id,
        "uri": doc_ref["uri"],
        "title": "bench",
        "creator": "bench",
        "lastChangeDateTime": "2026-08-01T00:00:00Z",
        "subject": ["math"],
    }
    return {"CFDocument": doc, "CFItems": items, "CFAssociations": associations}


def setup_database(args) -> tuple[str, callable]:
    if args.sqlite:
        folder = tempfile.mkdtemp()
        return f"sqlite:///{folder}/bench.db", lambda: None
    admin_url = args.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"shuyuan_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return url, drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--associations", type=int, default=40_000)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--profile", metavar="FILE", help="write a pyinstrument profile of the timed calls"
    )
    parser.add_argument(
        "--cprofile",
        metavar="FILE",
        help="write a cProfile of the timed calls in process (CPU) time, by own time",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the shared cache (week structures); 'none' measures without it",
    )
    args = parser.parse_args()

    measure(args)


def _cache_config(redis_url: str | None) -> tuple[dict, callable]:
    """The shared cache on Redis under a key prefix of this run (deleted afterwards), as
    a deployment with ``REDIS_URL`` has it; without a Redis that answers, the app's
    default (no week structures are cached then)."""
    if not redis_url or redis_url == "none":
        return {}, lambda: None
    from redis import Redis

    connection = Redis.from_url(redis_url, socket_connect_timeout=1)
    try:
        connection.ping()
    except Exception as exc:  # noqa: BLE001
        print(f"Redis not reachable at {redis_url} ({exc}): measuring without the cache")
        return {}, lambda: None
    prefix = f"bench-curriculum-{uuid.uuid4().hex[:8]}:"

    def clean():
        for name in connection.scan_iter(f"{prefix}*"):
            connection.delete(name)
        connection.close()

    config = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": redis_url, "CACHE_KEY_PREFIX": prefix}
    return config, clean


def measure(args) -> dict:
    url, drop = setup_database(args)
    instance = tempfile.mkdtemp()
    cache_config, clean_cache = _cache_config(getattr(args, "redis_url", None))
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "INSTANCE_PATH": instance,
            "SECRET_KEY": "bench",
            "REDIS_URL": None,
            "PLUGINS": [],
            "JOBS_EAGER": True,
            "SEARCH_INDEX_DIR": f"{instance}/search",
            **cache_config,
        }
    )
    try:
        with app.app_context():
            db.create_all()
            return run(args, url)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()
        clean_cache()


def run(args, url: str) -> dict:
    from app.accounts.models import User
    from app.curriculum import case, services
    from app.curriculum.models import Level, Node

    backend = "sqlite" if url.startswith("sqlite") else "postgresql"
    package = generate_package(args.items, args.associations)
    print(f"backend: {backend}")
    print(
        f"package: {len(package['CFItems'])} items, {len(package['CFAssociations'])} associations"
    )
    before = peak_mb()
    started = time.perf_counter()
    report = case.import_package(package)
    db.session.commit()
    elapsed = time.perf_counter() - started
    print(
        f"CASE import: {elapsed:.2f} s (items created {report.items['created']}, "
        f"associations created {report.associations['created']}); "
        f"peak RSS {peak_mb():.0f} MB (before import {before:.0f} MB)"
    )
    started = time.perf_counter()
    again = case.import_package(package)
    db.session.commit()
    print(
        f"CASE re-import (unchanged, update in place): {time.perf_counter() - started:.2f} s "
        f"({again.framework})"
    )
    started = time.perf_counter()
    exported = case.export_package(services.get_framework(report.framework_id))
    print(
        f"CASE export: {time.perf_counter() - started:.2f} s; "
        f"round trip equal: {exported == package}"
    )

    # --- this week at N aligned resources --------------------------------------------
    district, school, teacher, student, admin = seed_school_people()
    lesson_ids = list(
        db.session.execute(select(Node.id).where(Node.level == Level.LESSON)).scalars()
    )
    started = time.perf_counter()
    seed_aligned_resources(
        db.session,
        args.resources,
        lesson_ids,
        teacher,
        school,
        district,
        kinds=["video", "document", "exercise", "interactive", "audio"],
    )
    print(
        f"seeded {args.resources} published resources with one alignment each "
        f"over {len(lesson_ids)} lessons "
        f"in {time.perf_counter() - started:.1f} s"
    )
    if backend == "postgresql":
        # VACUUM ANALYZE, as autovacuum does after a bulk insert on a default server (the
        # test server here runs with autovacuum off): it sets the visibility map, so the
        # alignments are read by an index-only scan as in production (docs/curriculum.md).
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))

    volume = (
        db.session.execute(
            select(Node).where(
                Node.level == Level.VOLUME, Node.edition == "pep", Node.grade == "g7"
            )
        )
        .scalars()
        .first()
    )
    seed_term_calendar(
        school,
        student,
        admin,
        district,
        volume,
        holidays=[{"name": "国庆", "start": "2026-10-01", "end": "2026-10-07"}],
    )
    db.session.commit()
    day = date(2026, 11, 23)
    views = services.this_week(student, on=day)
    shown = sum(len(lesson["resources"]) for v in views for lesson in v.lessons)
    # Steady state: the five weeks' structures cached once (when Redis is there), as
    # the class's first reader of the day leaves them; misses are timed apart below.
    for offset in range(-2, 3):
        services.this_week(student, on=day, offset=offset)
    db.session.rollback()
    timings, cpu = [], []  # wall and this process's CPU per call, ms
    student_id = student.id
    profiler = None
    if getattr(args, "profile", None):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    cpu_profiler = None
    if getattr(args, "cprofile", None):
        import cProfile

        # Process time, not wall time: on a loaded machine the wall clock mostly
        # measures waiting for a core.
        cpu_profiler = cProfile.Profile(time.process_time)
        cpu_profiler.enable()
    for i in range(args.repeat):
        # A fresh identity map per call, like a request; the logged-in user is loaded
        # beforehand (the request's login does that, not "this week").
        db.session.expunge_all()
        student = db.session.get(User, student_id)
        student.roles  # noqa: B018
        started, cpu_started = time.perf_counter(), time.process_time()
        services.this_week(student, on=day, offset=(i % 5) - 2)
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        db.session.rollback()
    if profiler is not None:
        profiler.stop()
        Path(args.profile).write_text(profiler.output_text(show_all=False))
    if cpu_profiler is not None:
        import io
        import pstats

        cpu_profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(cpu_profiler, stream=out)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)
        Path(args.cprofile).write_text(out.getvalue())
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    # Context for the figure: queries per call and the bare round trip of this database.
    from sqlalchemy import event

    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    from app.common import cache

    try:
        from app.curriculum.services import week_cache
    except ImportError:  # code from before the cache (a before/after comparison)
        week_cache = None
    cached = week_cache is not None and week_cache.enabled()

    def one_call(record: bool, miss: bool) -> tuple[float, float]:
        """One call (after a bump of the week structures when ``miss``): wall and CPU ms."""
        db.session.expunge_all()
        student = db.session.get(User, student_id)
        student.roles  # noqa: B018  (loaded by the request's login, as in the timed calls)
        if miss and cached:
            cache.bump(week_cache.SCOPE)
            # The week's resource rows too (cached since the fifth pass): a miss then
            # sends every statement of an uncached call, the baseline's 7.
            if getattr(week_cache, "ROWS_SCOPE", None):
                cache.bump(week_cache.ROWS_SCOPE)
        if record:
            event.listen(db.engine, "before_cursor_execute", capture)
        started, cpu_started = time.perf_counter(), time.process_time()
        services.this_week(student, on=day)
        spent = (time.perf_counter() - started) * 1000, (time.process_time() - cpu_started) * 1000
        if record:
            event.remove(db.engine, "before_cursor_execute", capture)
        db.session.rollback()
        return spent

    # The bare baseline replays what an *uncached* call sends (the whole work of the
    # week, done by the database alone); a hit sends only one of those statements.
    one_call(True, miss=True)
    statements_of_miss = list(statements)
    statements.clear()
    one_call(True, miss=False)
    hit_statements, statements[:] = list(statements), statements_of_miss
    misses = [one_call(False, miss=True) for _ in range(max(10, args.repeat // 5))]
    miss_wall = sorted(m[0] for m in misses)
    # The bare baseline: the very statements one call sent, replayed on a raw DBAPI
    # cursor (no ORM, no service code): what the database and the driver alone cost.
    connection = db.engine.raw_connection()
    cursor = connection.cursor()
    bare = []
    bare_cpu = []
    for _ in range(args.repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            cursor.fetchall()
        bare.append((time.perf_counter() - started) * 1000)
        bare_cpu.append((time.process_time() - cpu_started) * 1000)
        connection.rollback()
    bare_hit = []  # the statements of a cached call, raw: what is left of the database work
    for _ in range(args.repeat):
        started = time.perf_counter()
        for statement, parameters in hit_statements:
            cursor.execute(statement, parameters)
            cursor.fetchall()
        bare_hit.append((time.perf_counter() - started) * 1000)
        connection.rollback()
    connection.close()
    bare.sort()
    bare_hit.sort()
    trips = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        db.session.execute(text("SELECT 1"))
        trips.append((time.perf_counter() - started) * 1000)
    trips.sort()
    print(
        f"week structures cached on Redis: {cached}; a hit sends {len(hit_statements)} "
        f"statements, a miss {len(statements)}; after a bump (miss): p50 "
        f"{statistics.median(miss_wall):.1f} ms, p95 {percentile(miss_wall, 0.95):.1f} ms, "
        f"CPU {statistics.median(m[1] for m in misses):.1f} ms p50 over {len(misses)} calls"
    )
    print(
        f"bare: the {len(hit_statements)} statements of a cached call on a raw cursor: p50 "
        f"{statistics.median(bare_hit):.1f} ms, p95 {percentile(bare_hit, 0.95):.1f} ms"
    )
    print(
        f"context: {len(statements)} queries per uncached call; bare SELECT 1 round trip "
        f"p50 {statistics.median(trips):.2f} ms, p95 {percentile(trips, 0.95):.2f} ms; "
        f"load average {load_average()}"
    )
    print(
        f"this week (student, {args.resources} aligned resources; {shown} shown this week): "
        f"p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms over {args.repeat} calls"
    )
    bare_p95 = bare[int(len(bare) * 0.95) - 1]
    print(
        f"bare: the {len(statements)} statements of an uncached call on a raw cursor: "
        f"p50 {statistics.median(bare):.1f} ms, p95 {bare_p95:.1f} ms"
    )
    # CPU of this process (the ORM and service code; the server's work is not in it):
    # steadier than wall time on a loaded machine.
    print(
        f"CPU of this process per call: this week {statistics.median(cpu):.1f} ms p50, "
        f"bare replay {statistics.median(bare_cpu):.1f} ms p50"
    )
    return {
        "p50": statistics.median(timings),
        "p95": p95,
        "bare_p95": bare_p95,
        "cpu_p50": statistics.median(cpu),
        "bare_cpu_p50": statistics.median(bare_cpu),
        "queries": len(statements),
        "hit_queries": len(hit_statements),
        "cached": cached,
        "miss_p95": percentile(miss_wall, 0.95),
        "shown": shown,
        "load": os.getloadavg()[0],
    }


def table_rows(full: bool) -> list:
    """ "This week" p95 beside the same statements on a raw cursor, for ``python -m
    bench``: 100,000 aligned resources and 300 calls with ``full``, else 10,000 and 100
    (the CASE package is always the 20,000-item one: smaller ones leave the week empty)."""
    from bench.table import Row

    args = argparse.Namespace(
        items=20_000,
        associations=40_000,
        resources=100_000 if full else 10_000,
        repeat=300 if full else 100,
        sqlite=False,
        database_url="postgresql://postgres@127.0.0.1:5432/test",
        redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    result = measure(args)
    return [
        Row(
            path='"this week" for a class (student, PostgreSQL, services.this_week)',
            figure=round(result["p95"], 1),
            unit="ms p95",
            baseline=round(result["bare_p95"], 1),
            baseline_label=(
                f"the {result['queries']} statements of an uncached call on a raw DBAPI cursor"
            ),
            target="< 15 ms p95",
            met=result["p95"] < 15,
            size=f"{args.resources:,} aligned resources, {result['shown']} shown",
            note=(
                f"load average {result['load']:.1f}; week structures cached on Redis: "
                f"{result['cached']} ({result['hit_queries']} statements per call, "
                f"{result['miss_p95']:.1f} ms p95 after a bump); CPU of the benchmark "
                f"process per call {result['cpu_p50']:.1f} ms p50 (bare replay "
                f"{result['bare_cpu_p50']:.1f} ms)"
            ),
        )
    ]


if __name__ == "__main__":
    main()
