"""CPU per presigned-URL request in-process, without a client: the WSGI app is called
directly (no test client, no HTTP, no gunicorn), so the figure is what the app itself
costs a worker, and it survives a loaded machine far better than req/s.

    PYTHONPATH=$PWD:$PWD/plugins .venv/bin/python -m bench.presign_cpu \
        [--before DIR] [--redis-url redis://127.0.0.1:6379/N] [--requests 3000] [--rounds 4]

One throwaway PostgreSQL database is seeded once; each measure runs in a fresh child
process importing the app from this checkout or from ``--before DIR`` (e.g. a worktree at
main), alternating after/before ``--rounds`` times, and prints process CPU ms per request
(min and median of the rounds) and statements per request.  ``--py-spy PATH`` instead
records one child under py-spy (``--gil``, raw folded stacks) for profiling.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def child(args) -> None:
    """Run in the child: build the app, warm up, then time ``--requests`` direct WSGI calls."""
    import io

    from sqlalchemy import event
    from werkzeug.test import EnvironBuilder

    from bench.media import _presign_app

    workdir, app = _presign_app(args.database_url, args.storage_url, args.redis_url or None)
    path = f"/api/v1/media/{args.attachment}{args.suffix}"
    base = EnvironBuilder(
        path=path,
        headers={"Authorization": f"Bearer {args.token}"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    ).get_environ()
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def call():
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(b"")
        body = app(environ, start_response)
        try:
            b"".join(body)  # read the whole response, as a server would
        finally:
            if hasattr(body, "close"):
                body.close()

    for _ in range(300):
        call()
    assert all(s.startswith("200") for s in statuses), set(statuses)
    from app.extensions import db

    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def record(conn, cursor, statement, *rest):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    call()
    event.remove(engine, "before_cursor_execute", record)
    statuses.clear()
    cpu0 = time.process_time()
    for _ in range(args.requests):
        call()
    cpu = (time.process_time() - cpu0) / args.requests * 1000
    assert all(s.startswith("200") for s in statuses), set(statuses)
    print(json.dumps({"cpu_ms": cpu, "statements": len(seen)}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", metavar="DIR")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--py-spy", metavar="PATH", help="record one child with py-spy")
    parser.add_argument("--suffix", default="/url", help="path after the attachment id")
    # child mode
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--storage-url", help=argparse.SUPPRESS)
    parser.add_argument("--attachment", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from bench.common import throwaway_postgres
    from bench.media import _seed_presign

    storage_url = "s3://bench:benchsecret@127.0.0.1:9/bench-presign?secure=false"
    with throwaway_postgres() as database_url:
        attachment, token = _seed_presign(database_url, storage_url)
        roots = {"after": str(HERE)}
        if args.before:
            roots["before"] = str(Path(args.before).resolve())
        results: dict[str, list] = {name: [] for name in roots}

        def run(root: str, prefix: list[str]) -> dict:
            command = prefix + [
                sys.executable,
                "-m",
                "bench.presign_cpu",
                "--child",
                "--database-url",
                database_url,
                "--storage-url",
                storage_url,
                "--attachment",
                attachment,
                "--token",
                token,
                "--redis-url",
                args.redis_url,
                "--requests",
                str(args.requests),
                "--suffix",
                args.suffix,
            ]
            env = {**os.environ, "PYTHONPATH": f"{root}:{root}/plugins", "SHUYUAN_PLUGINS": ""}
            out = subprocess.run(
                command, cwd=root, env=env, capture_output=True, text=True, check=True
            ).stdout
            return json.loads(out.strip().splitlines()[-1])

        if args.py_spy:
            spy = os.environ.get("PY_SPY", "py-spy")
            prefix = [spy, "record", "--gil", "-r", "500", "-f", "raw", "-o", args.py_spy, "--"]
            print(run(str(HERE), prefix))
            return
        for round_ in range(args.rounds):
            for name, root in roots.items():
                got = run(root, [])
                results[name].append(got["cpu_ms"])
                print(
                    f"round {round_ + 1} {name:<6} {got['cpu_ms']:.3f} ms CPU/request  "
                    f"{got['statements']} statements  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        for name, values in results.items():
            print(
                f"{name:<6} min {min(values):.3f}  median {statistics.median(values):.3f} "
                f"ms CPU/request ({len(values)} rounds)"
            )


if __name__ == "__main__":
    main()
