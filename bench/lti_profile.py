"""Profile LTI login + launch in-process (pyinstrument), on a throwaway PostgreSQL database.

The simulated LMS of the tests (``tests/lti/platform.py``) signs the id_tokens; Shuyuan is
called through the Flask test client (no HTTP server), a fresh client ("browser") per
launch, returning students after the first pass, as in ``bench/lti.py``::

    .venv/bin/python bench/lti_profile.py --launches 200
    .venv/bin/python bench/lti_profile.py --html /tmp/lti.html

Prints the SQL statements of one returning student's launch (the count
tests/lti/test_queries.py asserts) and the call tree of the launches.  Jobs run in the
in-process queue (no ``REDIS_URL``), drained after the profile, so what the launch hands
to the queue is not in the launch's figure but is printed below it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import throwaway_postgres  # noqa: E402
from bench.lti import prepare_shuyuan  # noqa: E402
from tests.lti.platform import Platform  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=200)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--html")
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
                }
            )
            for i in range(args.users):  # first launches: every student provisioned
                assert launch_once(app, platform, f"stu-{i}", custom) == 302
            jobs.drain(app)
            with app.app_context():
                engine = db.engine
            statements: list[str] = []

            def record(conn, cursor, statement, parameters, context, executemany):
                statements.append(statement.split("\n")[0][:110])

            event.listen(engine, "before_cursor_execute", record)
            launch_once(app, platform, "stu-0", custom)
            event.remove(engine, "before_cursor_execute", record)
            print(f"SQL statements of one returning student's login + launch: {len(statements)}")
            for s in statements:
                print("   ", s)
            jobs.drain(app)
            profiler = Profiler(interval=0.0005)
            profiler.start()
            for n in range(args.launches):
                assert launch_once(app, platform, f"stu-{n % args.users}", custom) == 302
            session = profiler.stop()
            print(
                f"\n=== {args.launches} login + launch round trips, "
                f"{session.duration / args.launches * 1000:.2f} ms wall, "
                f"{session.cpu_time / args.launches * 1000:.2f} ms CPU each ==="
            )
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
