"""Profile one student's recommendations in-process, on data kept between runs.

Uses (and keeps) database ``--pg-database`` of the local server; seeds there the data of
``bench/portraits.py``'s recommendation part the first time (``--resources`` aligned
resources, same seeds; ``--reseed`` to rebuild it), plus a few feedback rows and learnt
gains so every branch of the ranking runs.  Then prints the statements one
``recommend.recommend`` call sends (count and text), wall/CPU ms per call over
``--repeat`` calls, and pyinstrument's call tree; ``--dump FILE`` writes the
recommendations as JSON (to compare two versions of the code)::

    PYTHONPATH=$PWD:$PWD/plugins .venv/bin/python bench/portraits_profile.py \\
        --pg-database shuyuan_bench_me --resources 10000 --dump /tmp/recs.json

``--online N`` profiles the online update instead (SQLite, in a temporary folder): the
rebuild part of ``bench/portraits.py`` at ``--students`` × 50 answers, then N updates of
one answer each; prints the statements of one update, the bench's figures and
pyinstrument's tree of the updates::

    PYTHONPATH=$PWD:$PWD/plugins .venv/bin/python bench/portraits_profile.py --online 300

With ``--callgrind``, instruction counts of the updates alone (see ``online``)::

    PYTHONPATH=$PWD:$PWD/plugins valgrind --tool=callgrind --instr-atstart=no \\
        --collect-atstart=no --callgrind-out-file=/tmp/online.cg \\
        .venv/bin/python bench/portraits_profile.py --online 101 --callgrind
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import kept_postgres  # noqa: E402


def _seed_extras(student_id: int) -> None:
    """Feedback (clicked, not useful, already known) and learnt gains on some of the
    resources aligned to the knowledge points of the seeded term."""
    import random

    from sqlalchemy import insert, select

    from app.catalog.models import Resource
    from app.curriculum.models import Alignment, Node
    from app.extensions import db
    from app.portraits.models import Feedback, ResourceGain, SkillParams
    from app.portraits.services import model

    rng = random.Random(7)
    generation = model.active_generation()
    rows = db.session.execute(
        select(Resource.content_id, Node.identifier)
        .join(Alignment, Alignment.target_key == Resource.content_id)
        .join(Node, Node.id == Alignment.node_id)
        .where(Node.level == "knowledge_point")
        .order_by(Resource.content_id)
    ).all()
    picked = rng.sample(rows, min(len(rows), 600))
    feedback = []
    for i, (content_id, skill) in enumerate(picked[:90]):
        action = ("clicked", "not_useful", "known")[i % 3]
        feedback.append(
            {
                "user_id": student_id,
                "resource_content_id": content_id,
                "skill": skill if action == "known" else None,
                "action": action,
            }
        )
    db.session.execute(insert(Feedback), feedback)
    gains = {}
    for content_id, skill in picked[90:]:
        users = rng.randint(0, 12)
        gains[(content_id, skill)] = {
            "generation_id": generation.id,
            "resource_content_id": content_id,
            "skill": skill,
            "users": users,
            "helped": rng.randint(0, users),
        }
    db.session.execute(insert(ResourceGain), list(gains.values()))
    skills = sorted({skill for _c, skill in rows})
    db.session.execute(
        insert(SkillParams),
        [
            {
                "generation_id": generation.id,
                "skill": skill,
                "prior": rng.uniform(0.1, 0.5),
                "learn": rng.uniform(0.05, 0.3),
                "guess": 0.2,
                "slip": 0.1,
                "method": "bkt",
                "answers": 100,
                "students": 10,
            }
            for skill in skills[::2]
        ],
    )
    db.session.commit()


def as_data(recs) -> dict:
    def item(r):
        return {
            "content_id": r.resource.content_id,
            "title": r.resource.title,
            "kind": r.resource.kind,
            "skill": r.skill,
            "knowledge_point": r.knowledge_point,
            "knowledge_point_title": r.knowledge_point_title,
            "mastery": r.mastery,
            "week": r.week,
            "gain": round(r.gain, 12),
            "helped": r.helped,
            "users": r.users,
            "explanation": r.explanation,
            "offset": r.offset,
        }

    return {
        "this_week": [item(r) for r in recs.this_week],
        "last_week": [item(r) for r in recs.last_week],
        "next_week": [
            {**p, "resources": [r.content_id for r in p["resources"]]} for p in recs.next_week
        ],
        "extended": [c.content_id for c in recs.extended],
        "assigned": [a["resource"].content_id for a in recs.assigned],
    }


def _callgrind_requests():
    """(start instrumentation, toggle collection): valgrind's client requests, which are
    C macros, through a two-function library built with gcc against callgrind.h."""
    import ctypes
    import subprocess

    build = Path(tempfile.mkdtemp())
    (build / "cg.c").write_text(
        "#include <valgrind/callgrind.h>\n"
        "void start(void) { CALLGRIND_START_INSTRUMENTATION; }\n"
        "void toggle(void) { CALLGRIND_TOGGLE_COLLECT; }\n"
    )
    subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-o", build / "cg.so", build / "cg.c"], check=True
    )
    library = ctypes.CDLL(str(build / "cg.so"))
    return library.start, library.toggle


def online(updates: int, students: int, callgrind: bool = False) -> None:
    """The online update's statements, figures and profile (see the module's doc).

    ``callgrind``: no profiler; run under ``valgrind --tool=callgrind --instr-atstart=no
    --collect-atstart=no``: instrumentation starts at the first update (which also
    compiles the statements, so it is not collected) and collection is on only inside
    the other updates — the total Ir divided by ``updates - 1`` is the instructions of
    one update (the machine's load does not change it)."""
    import gc

    from pyinstrument import Profiler
    from sqlalchemy import event

    from app.extensions import db
    from app.portraits.services import online as online_update
    from bench import portraits

    profiler = Profiler(interval=0.0002)
    original = online_update.apply_observations
    sent: list[str] = []
    start, toggle = _callgrind_requests() if callgrind else (None, None)
    calls = {"n": 0}

    def keep(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    def profiled(observations, generation=None):
        if len(observations) != 1:  # the seeding's rebuild
            return original(observations, generation)
        calls["n"] += 1
        if callgrind:
            if calls["n"] == 1:
                # The seeded objects stay: without freezing them a full collection
                # (~100 ms here) lands in some update at random.
                gc.collect()
                gc.freeze()
                start()
                return original(observations, generation)
            toggle()
            try:
                return original(observations, generation)
            finally:
                toggle()
        sent.clear()
        event.listen(db.engine, "before_cursor_execute", keep)
        profiler.start()
        try:
            return original(observations, generation)
        finally:
            profiler.stop()
            event.remove(db.engine, "before_cursor_execute", keep)

    online_update.apply_observations = profiled
    args = argparse.Namespace(students=students, answers=50, skills=10, online=updates)
    with tempfile.TemporaryDirectory() as instance:
        result = portraits.rebuild_and_online(args, f"sqlite:///{instance}/bench.db", instance)
    if callgrind:
        print(f"callgrind collected {calls['n'] - 1} updates: Ir / {calls['n'] - 1} per update")
        print(result["lines"][-1])
        return
    print(f"statements of the last update: {len(sent)}")
    for statement in sent:
        print(f"  {' '.join(statement.split())[:160]}")
    print(result["lines"][-1])
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def explain_statements(student_id: int) -> None:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of each statement one ``recommend`` call sends,
    captured with its parameters and replayed on the same connection's driver cursor."""
    from sqlalchemy import event

    from app.accounts.models import User
    from app.extensions import db
    from app.portraits.services import recommend

    student = db.session.get(User, student_id)
    student.roles  # noqa: B018
    recommend.recommend(student, None, "zh_CN")  # warm: caches, plans, buffers
    db.session.rollback()
    sent = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    student = db.session.get(User, student_id)
    student.roles  # noqa: B018
    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        recommend.recommend(student, None, "zh_CN")
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    cursor = db.session.connection().connection.driver_connection.cursor()
    totals = [0.0, 0.0, 0]
    slowest = None
    for number, (statement, parameters) in enumerate(sent, 1):
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", parameters)
        [plan] = cursor.fetchone()[0]
        top = plan["Plan"]
        buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
        totals[0] += plan["Planning Time"]
        totals[1] += plan["Execution Time"]
        totals[2] += buffers
        print(
            f"{number:2} planning {plan['Planning Time']:7.2f} ms  execution "
            f"{plan['Execution Time']:7.2f} ms  buffers {buffers:6}  rows {top['Actual Rows']:5}"
            f"  {' '.join(statement.split())[:70]}"
        )
        slowest = max(slowest or (0, None, None), (plan["Execution Time"], statement, parameters))
    print(
        f"total: planning {totals[0]:.2f} ms, execution {totals[1]:.2f} ms, "
        f"shared buffers {totals[2]}, {len(sent)} statements"
    )
    _ms, statement, parameters = slowest
    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)
    print("plan of the slowest statement:")
    print("\n".join(line for (line,) in cursor.fetchall()))
    db.session.rollback()


def generic_plan_check(student_id: int) -> None:
    """The walk (the statement with ``LATERAL``) as a server-side prepared statement:
    ``EXPLAIN (ANALYZE, BUFFERS) EXECUTE`` under ``plan_cache_mode`` custom and generic
    (planning, execution, buffers, rows: does the generic plan still walk the index?),
    then 8 executions under ``auto`` (which plan PostgreSQL picks).  Prepared by hand
    with SQL ``PREPARE``: psycopg prepares a query after 5 executions on a connection
    but forgets its prepared statements at each ``rollback()``, which this tool makes
    between calls unless ``--commit`` (the app's successful requests commit)."""
    import re

    import psycopg
    from sqlalchemy import event

    from app.accounts.models import User
    from app.extensions import db
    from app.portraits.services import recommend

    student = db.session.get(User, student_id)
    student.roles  # noqa: B018
    sent = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        recommend.recommend(student, None, "zh_CN")
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    db.session.rollback()
    statement, parameters = next((s, p) for s, p in sent if "LATERAL" in s)
    names: list[str] = []

    def numbered(match):
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    # The placeholders numbered as psycopg numbers them; the types left to the server
    # (the arrays carry casts).
    prepared = re.sub(r"%\((\w+)\)s", numbered, statement)
    print(
        f"walk: {len(statement.encode())} bytes, {len(parameters)} parameters (psycopg caches "
        "its parsing of a query up to 4,096 bytes and 50 parameters)"
    )
    connection = db.session.connection().connection.driver_connection
    connection.execute(f"PREPARE reco_walk AS {prepared}")
    cursor = psycopg.ClientCursor(connection)
    arguments = ", ".join(["%s"] * len(names))
    values = [parameters[name] for name in names]
    try:
        for mode in ("force_custom_plan", "force_generic_plan") * 2:
            connection.execute(f"SET plan_cache_mode = {mode}")
            cursor.execute(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE reco_walk({arguments})", values
            )
            [plan] = cursor.fetchone()[0]
            top = plan["Plan"]
            buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
            print(
                f"{mode:18} planning {plan.get('Planning Time', 0):6.2f} ms  execution "
                f"{plan['Execution Time']:6.2f} ms  buffers {buffers}  rows {top['Actual Rows']}"
            )
        cursor.execute(f"EXPLAIN EXECUTE reco_walk({arguments})", values)
        print("generic plan:")
        print("\n".join(line for (line,) in cursor.fetchall()))
        connection.execute("SET plan_cache_mode = auto")
        for number in range(1, 9):
            began = time.perf_counter()
            cursor.execute(f"EXECUTE reco_walk({arguments})", values)
            cursor.fetchall()
            generic, custom = connection.execute(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE name = 'reco_walk'"
            ).fetchone()
            print(
                f"auto, execution {number}: {(time.perf_counter() - began) * 1000:5.1f} ms wall; "
                f"so far {custom} custom plans, {generic} generic"
            )
    finally:
        connection.execute("DEALLOCATE reco_walk")
        db.session.rollback()


# (module, function) whose thread CPU --phases reports; those a tree lacks (or a call
# does not use) are left out.  The old tree's steps too, to compare (copy this file there).
PHASES = (
    ("app.portraits.services.model", "active_generation"),
    ("app.portraits.services.queries", "mastery_of"),
    ("app.portraits.syllabus", "classes_of"),
    ("app.curriculum.services", "effective_calendar"),
    ("app.portraits.services.recommend", "_generation_and_masteries"),
    ("app.portraits.services.recommend", "_feedback"),
    ("app.portraits.syllabus", "syllabus_weeks"),
    ("app.portraits.syllabus", "followed_calendars"),
    ("app.portraits.syllabus", "_knowledge_points_of"),
    ("app.portraits.sources", "equivalent_identifiers"),
    ("app.portraits.services.recommend", "_model_data"),
    ("app.portraits.services.recommend", "_aligned"),
    ("app.portraits.syllabus", "walked_rows"),
    ("app.portraits.walk", "_ranked_in_python"),
    ("app.portraits.services.recommend", "explain"),
    ("app.portraits.services.recommend", "_extended"),
    ("app.portraits.services.recommend", "_assigned"),
)


def phases(student_id: int, repeat: int) -> None:
    """Thread CPU (``time.thread_time``) of each function of :data:`PHASES` (nested
    ones inside their callers' figures) and of the whole call, p50 over ``repeat`` warm
    calls, each ending with COMMIT after 11 warm-up calls: no profiler, so no
    profiler's overhead (cProfile multiplies a call's CPU by ~5, mostly in the many
    small functions)."""
    import functools
    import importlib
    from collections import defaultdict

    from app.accounts.models import User
    from app.extensions import db
    from app.portraits.services import recommend

    spent: dict[str, float] = {}

    def timed(function, label):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            began = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.thread_time() - began

        return wrapper

    for module_name, name in PHASES:
        module = importlib.import_module(module_name)
        if hasattr(module, name):
            setattr(module, name, timed(getattr(module, name), name))
    per_phase, totals = defaultdict(list), []
    for number in range(11 + repeat):
        db.session.expunge_all()
        student = db.session.get(User, student_id)
        student.roles  # noqa: B018
        spent.clear()
        began = time.thread_time()
        recommend.recommend(student, None, "zh_CN")
        total = time.thread_time() - began
        db.session.commit()
        if number >= 11:
            totals.append(total * 1000)
            for label, seconds in spent.items():
                per_phase[label].append(seconds * 1000)
    print(f"whole call: CPU p50 {statistics.median(totals):.2f} ms (min {min(totals):.2f})")
    for label, values in sorted(per_phase.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {label:28} p50 {statistics.median(values):6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-database")
    parser.add_argument("--online", type=int, help="profile N online updates instead")
    parser.add_argument("--students", type=int, default=200, help="with --online")
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="with --online, under valgrind: collect instructions only inside the updates",
    )
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--dump", help="write the recommendations (zh_CN and en) as JSON here")
    parser.add_argument("--statements", action="store_true", help="print each statement")
    parser.add_argument(
        "--bare",
        action="store_true",
        help="time --repeat calls without the profiler (wall p50/p95, CPU p50) and replay "
        "their statements on a raw cursor as bench/portraits.py does (its baseline), "
        "alternating, on the kept database (no seeding between the two)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="EXPLAIN (ANALYZE, BUFFERS) every statement of one call (after a warm-up "
        "call): planning, execution and shared buffers per statement and in total",
    )
    parser.add_argument(
        "--commit",
        action="store_true",
        help="with --bare: end each call (and replay) with COMMIT, as the framework ends a "
        "successful request, not ROLLBACK (which makes psycopg forget its prepared "
        "statements); 10 warm-up calls first",
    )
    parser.add_argument(
        "--phases",
        action="store_true",
        help="thread CPU p50 of each step of a warm committed call (no profiler)",
    )
    parser.add_argument(
        "--plans",
        action="store_true",
        help="the walk prepared by hand: custom against generic plan (EXPLAIN ANALYZE, "
        "buffers), then which plan PostgreSQL picks under plan_cache_mode auto",
    )
    args = parser.parse_args()
    if args.online:
        online(args.online, args.students, args.callgrind)
        return
    if not args.pg_database:
        parser.error("--pg-database is required (or --online)")

    from pyinstrument import Profiler
    from sqlalchemy import event, func, select

    from app.accounts.models import User
    from app.catalog.models import Resource
    from app.extensions import db
    from app.portraits.services import recommend
    from bench.portraits import make_app, seed_recommendations

    with tempfile.TemporaryDirectory() as instance, kept_postgres(args.pg_database) as url:
        app = make_app(url, instance)
        with app.app_context():
            db.create_all()
            count = db.session.execute(select(func.count()).select_from(Resource)).scalar()
            student = db.session.execute(
                select(User).where(User.email == "s@bench.test").order_by(User.id)
            ).scalar()
            db.session.rollback()  # drop_all below waits for no open transaction
            if args.reseed or count != args.resources or student is None:
                started = time.perf_counter()
                student_id = seed_recommendations(args.resources)
                _seed_extras(student_id)
                print(f"seeded {args.resources} resources in {time.perf_counter() - started:.0f} s")
            else:
                student_id = student.id

            def call(locale="zh_CN"):
                db.session.expunge_all()
                student = db.session.get(User, student_id)
                student.roles  # noqa: B018  (loaded beforehand, as by the request's login)
                sent = []

                def keep(conn, cursor, statement, parameters, context, executemany):
                    sent.append(statement)

                event.listen(db.engine, "before_cursor_execute", keep)
                try:
                    wall, cpu = time.perf_counter(), time.thread_time()
                    recs = recommend.recommend(student, None, locale)
                    wall = (time.perf_counter() - wall) * 1000
                    cpu = (time.thread_time() - cpu) * 1000
                finally:
                    event.remove(db.engine, "before_cursor_execute", keep)
                data = as_data(recs)
                # --commit: as the framework ends a successful request (a rollback makes
                # psycopg forget its prepared statements).
                db.session.commit() if args.commit else db.session.rollback()
                return data, sent, wall, cpu

            data, sent, _w, _c = call()
            print(
                f"statements per call: {len(sent)}; shown this week {len(data['this_week'])}, "
                f"last week {len(data['last_week'])}"
            )
            if args.statements:
                for i, statement in enumerate(sent, 1):
                    print(f"--- {i}\n{' '.join(statement.split())[:400]}")
            if args.dump:
                english, _s, _w, _c = call("en")
                Path(args.dump).write_text(
                    json.dumps({"zh_CN": data, "en": english}, ensure_ascii=False, indent=1)
                )
                print(f"wrote {args.dump}")
            if args.explain:
                explain_statements(student_id)
                return
            if args.plans:
                generic_plan_check(student_id)
                return
            if args.phases:
                phases(student_id, args.repeat)
                return
            if args.bare:
                from bench.common import bare_statement_times, load_average

                walls, cpus, bare = [], [], []
                # With --commit, the walk is prepared by psycopg at a connection's 6th
                # execution and planned generically by PostgreSQL from its 11th, as on a
                # worker's connection after its first requests: warm up past that.
                for _ in range(10 if args.commit else 0):
                    call()
                for _ in range(args.repeat):
                    _d, _s, wall, cpu = call()
                    walls.append(wall)
                    cpus.append(cpu)
                    db.session.expunge_all()
                    student = db.session.get(User, student_id)
                    student.roles  # noqa: B018
                    _n, replay = bare_statement_times(
                        db.engine,
                        lambda s=student: recommend.recommend(s, None, "zh_CN"),
                        1,
                        commit=args.commit,
                    )
                    db.session.commit() if args.commit else db.session.rollback()
                    bare += replay
                walls.sort()
                bare.sort()
                p95 = max(0, int(len(walls) * 0.95) - 1)
                print(
                    f"recommend over {args.repeat} calls: wall p50 "
                    f"{statistics.median(walls):.1f} ms, p95 {walls[p95]:.1f} ms, CPU p50 "
                    f"{statistics.median(cpus):.1f} ms; raw cursor replay of its {len(sent)} "
                    f"statements p50 {statistics.median(bare):.1f} ms, p95 {bare[p95]:.1f} ms; "
                    f"load average {load_average()}"
                )
                return
            walls, cpus = [], []
            profiler = Profiler(interval=0.0005)
            profiler.start()
            for _ in range(args.repeat):
                _d, _s, wall, cpu = call()
                walls.append(wall)
                cpus.append(cpu)
            profiler.stop()
            print(
                f"recommend over {args.repeat} calls: wall p50 {statistics.median(walls):.1f} ms, "
                f"CPU p50 {statistics.median(cpus):.1f} ms (min {min(cpus):.1f} ms)"
            )
            print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
