"""Profile LTI login + launch in-process (pyinstrument), on a throwaway PostgreSQL database.

The simulated LMS of the tests (``tests/lti/platform.py``) signs the id_tokens; Shuyuan is
called through the Flask test client (no HTTP server), a fresh client ("browser") per
launch, returning students after the first pass, as in ``bench/lti.py``::

    .venv/bin/python bench/lti_profile.py --launches 200
    .venv/bin/python bench/lti_profile.py --html /tmp/lti.html

Prints the SQL statements of one returning student's launch (the count
tests/lti/test_queries.py asserts), the CPU a round trip costs without the profiler —
split into the requests (main thread, with the test client), the jobs the launch queued
(the in-process queue's threads: the xAPI statement's store) and the PostgreSQL backend —
beside the bare pylti1p3 tool's (bench/lti_bare_tool.py, same test client, same
platform), then the call tree of the launches (pyinstrument).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import throwaway_postgres  # noqa: E402
from bench.lti import prepare_shuyuan, write_bare_config  # noqa: E402
from tests.lti.platform import Platform  # noqa: E402


@contextlib.contextmanager
def redis_round_trips():
    """The Redis commands this thread sends (a pipeline's commands are one round trip)."""
    from redis.connection import AbstractConnection

    sent: list[str] = []
    original = AbstractConnection.send_packed_command

    def send(self, command, check_health=True):
        if threading.current_thread() is threading.main_thread():
            parts = command if isinstance(command, list) else [command]
            text = b"".join(bytes(p) for p in parts)
            words = [w for w in text.split(b"\r\n") if w and w[:1] not in (b"*", b"$")]
            sent.append(" ".join(w.decode(errors="replace")[:40] for w in words[:4]))
        return original(self, command, check_health)

    AbstractConnection.send_packed_command = send
    try:
        yield sent
    finally:
        AbstractConnection.send_packed_command = original


# Where a round trip's wall time goes, by component: each sample is counted for the
# innermost frame of its stack that one of these (file fragment, function) names.
COMPONENTS = [
    ("lti/tool.py", "validate_state", "launch: login state (Redis GET)"),
    ("lti/tool.py", "validate_registration", "launch: platform, deployment, origins (cache)"),
    ("lti/tool.py", "validate_jwt_signature", "launch: id_token signature (RS256)"),
    ("lti/tool.py", "validate_deployment", "launch: deployment (cache)"),
    ("lti/tool.py", "validate_nonce", "launch: nonce spent (Redis GETDEL or DELETE)"),
    ("lti/tool.py", "validate", "launch: other checks (envelope, claims, message)"),
    ("lti/views.py", "_message_launch", "launch: other checks (envelope, claims, message)"),
    ("lti/services/provisioning.py", "provision_launch", "launch: returning user (SQL)"),
    ("lti/services/provisioning.py", "provision_user", "launch: returning user (SQL)"),
    ("lti/services/provisioning.py", "map_context", "launch: context + membership (SQL)"),
    ("lti/services/launch.py", "_target_of", "launch: resource + visibility (SQL)"),
    ("lti/services/ags.py", "record_grade_link", "launch: grade link (SQL)"),
    ("lti/services/launch.py", "complete_launch", "launch: other (signal, roster check)"),
    ("common/transaction.py", "savepoint", "launch: SAVEPOINT / RELEASE"),
    ("lti/views.py", "_finish", "launch: session, login_user, redirect"),
    ("sharing/receivers.py", "on_learning_event", "commit: sharing usage check (SQL)"),
    ("xapi/emit.py", "on_learning_event", "commit: xAPI statement built"),
    ("common/transaction.py", "_commit_unit_of_work", "commit: COMMIT (+ BEGIN's round trip)"),
    ("core/headers.py", "_security_headers", "both: security headers (CSP origins)"),
    ("lti/tool.py", "registered_platform", "both: platform (+ deployment, origins) cache MGET"),
    ("lti/store.py", "put_many", "login: state + nonce stored"),
    ("lti/store.py", "relax_durability", "login: state + nonce stored"),
    ("lti/views.py", "login", "login: other (parameters, cookie, redirect)"),
    ("flask/app.py", "wsgi_app", "Flask/Werkzeug request handling, session, Flask-Login"),
    ("flask/testing.py", "open", "test client (bench side)"),
    ("tests/lti/platform.py", "", "simulated LMS signs the id_token (bench side)"),
]


def components(session, launches: int) -> list[tuple[str, float]]:
    """Wall time per round trip (ms) by component of :data:`COMPONENTS`."""
    totals: dict[str, float] = {}

    def walk(frame, label: str) -> None:
        for fragment, function, name in COMPONENTS:
            if fragment in (frame.file_path or "") and function in ("", frame.function):
                label = name
                break
        own = frame.time - sum(child.time for child in frame.children)
        totals[label] = totals.get(label, 0.0) + own
        for child in frame.children:
            walk(child, label)

    walk(session.root_frame(), "bench loop")
    return sorted(
        ((name, seconds * 1000 / launches) for name, seconds in totals.items()),
        key=lambda item: -item[1],
    )


def launch_once(app, platform: Platform, sub: str, custom: dict) -> int:
    http = app.test_client()
    hint = platform.prepare(sub=sub, custom=custom, context_id="bench-course")
    login = http.get("/lti/login", query_string=platform.login_params(hint))
    assert login.status_code == 302, login.text
    query = parse_qs(urlparse(login.headers["Location"]).query)
    claims = platform.claims_for(platform.prepared.pop(hint), query["nonce"][0])
    launch = http.post(
        "/lti/launch", data={"id_token": platform.sign(claims), "state": query["state"][0]}
    )
    return launch.status_code


def bare_cpu_ms(platform: Platform, launches: int) -> float:
    """CPU (this thread) of one login + launch of the bare pylti1p3 tool, in-process."""
    import os

    with tempfile.TemporaryDirectory() as folder:
        config = write_bare_config(platform, folder)
        os.environ["BARE_LTI_CONFIG"] = str(config)
        from bench.lti_bare_tool import app as bare

        for i in range(10):
            assert launch_once(bare, platform, f"warm-{i}", {}) == 200
        began = time.thread_time()
        for n in range(launches):
            assert launch_once(bare, platform, f"stu-{n % 50}", {}) == 200
        return (time.thread_time() - began) * 1000 / launches


def cpu_split(app, platform: Platform, custom: dict, launches: int, users: int) -> dict:
    """CPU per returning login + launch: requests (this thread), queued jobs (the other
    threads of this process) and the PostgreSQL backend (read from /proc)."""
    from sqlalchemy import text

    from app import jobs
    from app.extensions import db
    from bench.lti import _process_cpu

    with app.app_context():
        backend = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
        db.session.rollback()
    pg, process, thread = _process_cpu(backend), time.process_time(), time.thread_time()
    for n in range(launches):
        assert launch_once(app, platform, f"stu-{n % users}", custom) == 302
    thread = time.thread_time() - thread
    jobs.drain(app)
    process = time.process_time() - process
    pg = _process_cpu(backend) - pg
    return {
        "requests": thread * 1000 / launches,
        "jobs": (process - thread) * 1000 / launches,
        "postgresql": pg * 1000 / launches,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=200)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--html")
    parser.add_argument("--repeat", type=int, default=1, help="CPU split: least of N runs")
    parser.add_argument(
        "--no-profile", action="store_true", help="counts and CPU split only, no pyinstrument"
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="sample this thread's CPU time, not wall time (waits on PostgreSQL and Redis "
        "then count for nothing; their servers' CPU is not in the tree)",
    )
    parser.add_argument(
        "--redis", help="shared state on this Redis (states, nonces, cache, rate limits)"
    )
    args = parser.parse_args()
    from pyinstrument import Profiler
    from sqlalchemy import event

    from app import create_app, jobs
    from app.extensions import db

    platform = Platform(client_id="bench-client", deployment_id="bench-dep").start()
    try:
        with throwaway_postgres() as url, tempfile.TemporaryDirectory() as instance:
            content_id = prepare_shuyuan(url, platform, instance)
            custom = {"resource": content_id}
            app = create_app(
                {
                    "SQLALCHEMY_DATABASE_URI": url,
                    "INSTANCE_PATH": instance,
                    "SECRET_KEY": "bench",
                    "PLUGINS": [],
                    # One connection: the PostgreSQL backend whose CPU is read is the
                    # one every request and job uses.
                    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0},
                    **(
                        {
                            "LTI_REDIS_URL": args.redis,
                            "CACHE_REDIS_URL": args.redis,
                            "CACHE_TYPE": "RedisCache",
                            "RATELIMIT_STORAGE_URI": args.redis,
                        }
                        if args.redis
                        else {}
                    ),
                }
            )
            print(f"cache: {app.config['CACHE_TYPE']}; LTI store on Redis: {bool(args.redis)}")
            for i in range(args.users):  # first launches: every student provisioned
                assert launch_once(app, platform, f"stu-{i}", custom) == 302
            jobs.drain(app)
            with app.app_context():
                engine = db.engine
            statements: list[str] = []

            def record(conn, cursor, statement, parameters, context, executemany):
                # The requests' statements only, not those of the jobs the launch queued
                # (the xAPI statement's store runs on the queue's threads meanwhile).
                if threading.current_thread() is threading.main_thread():
                    statements.append(statement.split("\n")[0][:110])

            event.listen(engine, "before_cursor_execute", record)
            with redis_round_trips() as trips:
                launch_once(app, platform, "stu-0", custom)
            event.remove(engine, "before_cursor_execute", record)
            print(f"SQL statements of one returning student's login + launch: {len(statements)}")
            for s in statements:
                print("   ", s)
            if args.redis:
                print(f"Redis round trips of the same login + launch: {len(trips)}")
                for each in trips:
                    print("   ", each)
            jobs.drain(app)
            # The least of --repeat runs of each: what other work on the machine adds
            # only ever raises a figure.
            splits = [
                cpu_split(app, platform, custom, args.launches, args.users)
                for _ in range(args.repeat)
            ]
            split = min(splits, key=lambda each: sum(each.values()))
            bare = min(bare_cpu_ms(platform, args.launches) for _ in range(args.repeat))
            ours = sum(split.values())
            print(
                f"\nCPU per returning login + launch, {args.launches} round trips "
                f"(least of {args.repeat}), no profiler: "
                f"{ours:.1f} ms = requests {split['requests']:.1f} ms (test client included) + "
                f"queued jobs {split['jobs']:.1f} ms + PostgreSQL backend "
                f"{split['postgresql']:.1f} ms; bare pylti1p3 tool {bare:.1f} ms "
                f"(ratio {ours / bare:.1f}x)"
            )
            if args.no_profile:
                jobs.drain(app)
                with app.app_context():
                    db.session.remove()
                    db.engine.dispose()
                return
            profiler = Profiler(interval=0.0005)
            if args.cpu:
                from pyinstrument.stack_sampler import get_stack_sampler

                get_stack_sampler().timer_func = time.thread_time
            profiler.start()
            for n in range(args.launches):
                assert launch_once(app, platform, f"stu-{n % args.users}", custom) == 302
            session = profiler.stop()
            print(
                f"\n=== {args.launches} login + launch round trips, "
                f"{session.duration / args.launches * 1000:.2f} ms wall, "
                f"{session.cpu_time / args.launches * 1000:.2f} ms CPU each ==="
            )
            parts = components(session, args.launches)
            whole = sum(ms for _, ms in parts)
            clock = "CPU (this thread)" if args.cpu else "Wall"
            print(f"{clock} time per round trip by component (profiled):")
            for name, ms in parts:
                print(f"    {ms:6.2f} ms {100 * ms / whole:5.1f} %  {name}")
            print(profiler.output_text(unicode=False, color=False, show_all=False))
            if args.html:
                Path(args.html).write_text(profiler.output_html())
            jobs.drain(app)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    finally:
        platform.stop()


if __name__ == "__main__":
    main()
