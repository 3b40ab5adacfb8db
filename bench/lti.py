"""LTI launch benchmark: full OIDC login + launch round trips.

Shuyuan (gunicorn, 2 workers, PostgreSQL) and, in the same run, a minimal tool made of
bare pylti1p3 calls (``bench/lti_bare_tool.py``, gunicorn, 2 workers), each driven by
N concurrent "browsers".  One round trip = GET /lti/login (302 to the platform) → the
platform signs the id_token (in this process, like the LMS would) → POST /lti/launch.
Shuyuan's launch also validates state/nonce in the shared store, consumes the nonce,
provisions the user, maps the context, records the grade link, logs her in and sends the
learning event; the bare tool only validates.

    .venv/bin/python bench/lti.py --browsers 16 --launches 2000

Prints launches/s and p50/p95 per tool and the cost ratio (Shuyuan / bare, by mean
latency at the same concurrency).  Target (issue 14): at most 1.5x.  Shuyuan runs without
Redis, so the jobs a launch queues (its xAPI statement, a roster sync) run on the worker
threads inside the same gunicorn workers: their CPU is in the figure.
``table_rows(full)`` returns the result as a ``bench.table.Row`` for ``python -m bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Gunicorn, free_port, machine_description, percentiles, throwaway_postgres  # noqa: E402
from tests.lti.platform import Platform  # noqa: E402

USERS = 400  # distinct students (returning users after the first pass, as in a school)


def prepare_shuyuan(database_url: str, platform: Platform, instance: str) -> str:
    """Tables, a school, the registration and one published resource; returns its id."""
    os.environ["SHUYUAN_PLUGINS"] = ""
    from app import create_app
    from app.accounts import services as accounts
    from app.accounts.models import Role
    from app.catalog import services as catalog
    from app.catalog.models import Resource
    from app.common.events import commit
    from app.extensions import db
    from app.lti.services import keys as lti_keys
    from app.lti.services import registrations as lti

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "INSTANCE_PATH": instance,
            "SECRET_KEY": "bench",
            "JOBS_EAGER": True,
            "PLUGINS": [],
        }
    )
    with app.app_context():
        db.create_all()
        region = accounts.ensure_region("bench", "测试市")
        district = accounts.ensure_district(region, "bench-d", "测试区")
        school = accounts.ensure_school(district, "bench-s", "测试中学")
        teacher = accounts.create_user(
            "teacher@bench.test", "Teacher", "password123", school=school
        )
        accounts.assign_role(teacher, Role.TEACHER, school=school)
        resource = catalog.create_content(
            teacher, Resource, {"title": "分数练习", "kind": "exercise", "visibility": "region"}
        )
        catalog.submit_content(teacher, Resource, resource.content_id)
        lti.add_platform(None, platform.registration("bench-s"), system=True)
        lti_keys.jwks()  # the first tool key
        commit()
        content_id = resource.content_id
        db.session.remove()
        db.engine.dispose()
    return content_id


def round_trip(
    session: requests.Session, base: str, platform: Platform, sub: str, custom: dict
) -> int:
    hint = platform.prepare(sub=sub, custom=custom, context_id="bench-course")
    params = platform.login_params(hint)
    login = session.get(base + "/lti/login", params=params, allow_redirects=False, timeout=30)
    if login.status_code != 302:
        return login.status_code
    query = parse_qs(urlparse(login.headers["Location"]).query)
    prepared = platform.prepared.pop(hint)
    claims = platform.claims_for(prepared, query["nonce"][0])
    token = platform.sign(claims)
    launch = session.post(
        query["redirect_uri"][0],
        data={"id_token": token, "state": query["state"][0]},
        allow_redirects=False,
        timeout=30,
    )
    return launch.status_code


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone or unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn's master and workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in task.read_text().split())
            except (OSError, ValueError):
                continue
    return found


def server_cpu(pid: int, database_url: str | None = None):
    """A function returning the CPU seconds used so far by the server: its processes
    and, with ``database_url``, the PostgreSQL backends serving that database (same
    host).  The steadier figure on a shared machine: what one launch costs the server,
    whatever the wait for a core."""

    def backends() -> list[int]:
        if database_url is None:
            return []
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        url = make_url(database_url)
        engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                return list(
                    conn.execute(
                        text(
                            "SELECT pid FROM pg_stat_activity WHERE datname = :name "
                            "AND pid <> pg_backend_pid()"
                        ),
                        {"name": url.database},
                    ).scalars()
                )
        finally:
            engine.dispose()

    def total() -> float:
        return sum(_process_cpu(p) for p in _process_tree(pid) + backends())

    return total


def run(
    base: str,
    platform: Platform,
    browsers: int,
    launches: int,
    custom: dict,
    ok: set[int],
    cpu=None,
) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(launches))
    # Warm up both workers (imports, first JWKS fetch, first key).
    with requests.Session() as warm:
        for i in range(8):
            round_trip(warm, base, platform, f"warm-{i}", custom)

    def browser():
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            with requests.Session() as session:  # a fresh browser per launch: no cookies carried
                began = time.perf_counter()
                try:
                    status = round_trip(session, base, platform, f"stu-{n % USERS}", custom)
                except requests.RequestException as exc:
                    status = str(exc)
                took = (time.perf_counter() - began) * 1000
            with lock:
                if status in ok:
                    latencies.append(took)
                else:
                    errors.append(str(status))

    threads = [threading.Thread(target=browser) for _ in range(browsers)]
    cpu_before = cpu() if cpu else 0.0
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    cpu_ms = (cpu() - cpu_before) * 1000 / launches if cpu else float("nan")
    p = percentiles(latencies)
    return {
        "ok": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "elapsed": elapsed,
        "per_s": len(latencies) / elapsed,
        "p50": p["p50"],
        "p95": p["p95"],
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
        "cpu_ms": cpu_ms,
    }


SMALL = {"browsers": 8, "launches": 150}
FULL = {"browsers": 16, "launches": 2000}
TARGET_RATIO = 1.5


def shared_state_env(redis_url: str) -> dict:
    """Shuyuan's shared state on Redis, as a deployment with several hosts runs it: login
    states and nonces (``SHUYUAN_LTI_REDIS_URL``), the cache (registrations' framing
    origins, token lookups) and the rate limiter.  Jobs stay on the in-process queue, so
    the xAPI statement's store is still inside the measured gunicorn workers' CPU."""
    return {
        "SHUYUAN_LTI_REDIS_URL": redis_url,
        "SHUYUAN_CACHE_REDIS_URL": redis_url,
        "SHUYUAN_RATELIMIT_STORAGE_URI": redis_url,
    }


def redis_reachable(redis_url: str) -> bool:
    try:
        from redis import Redis

        return bool(Redis.from_url(redis_url, socket_connect_timeout=1).ping())
    except Exception:
        return False


def measure(browsers: int, launches: int, workers: int = 2, redis_url: str | None = None) -> dict:
    """Shuyuan (and, with ``redis_url``, Shuyuan again with its shared state on Redis),
    then the bare pylti1p3 tool, in the same run; returns the results."""
    import os as _os

    print(machine_description())
    print("load average at start: " + " ".join(f"{v:.2f}" for v in _os.getloadavg()))
    args = argparse.Namespace(browsers=browsers, launches=launches, workers=workers)
    platform = Platform(client_id="bench-client", deployment_id="bench-dep").start()
    results = {}
    try:
        with throwaway_postgres() as database_url, tempfile.TemporaryDirectory() as instance:
            content_id = prepare_shuyuan(database_url, platform, instance)
            custom = {"resource": content_id}
            with Gunicorn(database_url, workers=workers, instance_path=instance) as server:
                cpu = server_cpu(server.process.pid, database_url)
                results["shuyuan"] = run(
                    server.base_url, platform, browsers, launches, custom, {302}, cpu
                )
            if redis_url:
                with Gunicorn(
                    database_url,
                    workers=workers,
                    instance_path=instance,
                    extra_env=shared_state_env(redis_url),
                ) as server:
                    cpu = server_cpu(server.process.pid, database_url)
                    results["shuyuan_redis"] = run(
                        server.base_url, platform, browsers, launches, custom, {302}, cpu
                    )
        results["bare"] = run_bare(platform, args, {200})
    finally:
        platform.stop()
    print("load average at end: " + " ".join(f"{v:.2f}" for v in _os.getloadavg()))
    labels = (
        ("shuyuan", "Shuyuan /lti (PostgreSQL)"),
        ("shuyuan_redis", "Shuyuan /lti (PostgreSQL, shared state on Redis)"),
        ("bare", "bare pylti1p3 tool"),
    )
    for name, label in labels:
        if name not in results:
            continue
        r = results[name]
        print(
            f"{label}: {r['ok']} launches ok, {r['errors']} errors in {r['elapsed']:.1f} s -> "
            f"{r['per_s']:.1f} launches/s; round trip ms p50 {r['p50']:.1f} p95 {r['p95']:.1f} "
            f"mean {r['mean']:.1f}; server CPU {r['cpu_ms']:.1f} ms per launch"
            + (f"; errors e.g. {r['error_samples']}" if r["errors"] else "")
        )
    ratio = results["shuyuan"]["mean"] / results["bare"]["mean"]
    print(
        f"cost ratio Shuyuan/bare (mean round trip at {browsers} browsers): {ratio:.2f}x "
        f"(throughput ratio {results['bare']['per_s'] / results['shuyuan']['per_s']:.2f}x; "
        f"server CPU ratio {results['shuyuan']['cpu_ms'] / results['bare']['cpu_ms']:.2f}x); "
        f"target <= {TARGET_RATIO}x"
    )
    return results


def table_rows(full: bool) -> list:
    """One row for ``python -m bench`` (bench/table.py): the mean login + launch round trip
    of Shuyuan beside the bare pylti1p3 tool's, same run, same concurrency."""
    from bench.table import Row

    sizes = FULL if full else SMALL
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
    results = measure(**sizes, redis_url=redis_url if redis_reachable(redis_url) else None)
    ours, bare = results["shuyuan"], results["bare"]
    rows = [
        Row(
            f"LTI login + launch round trip, mean ({sizes['browsers']} browsers, 2 gunicorn "
            "workers, PostgreSQL)",
            ours["mean"],
            "ms",
            bare["mean"],
            "bare pylti1p3 tool (bench/lti_bare_tool.py), 2 gunicorn workers",
            f"<= {TARGET_RATIO}x baseline",
            ours["mean"] <= TARGET_RATIO * bare["mean"] and not ours["errors"],
            f"{sizes['launches']} launches, {USERS} students",
        )
    ]
    redis = results.get("shuyuan_redis")
    if redis:
        rows.append(
            Row(
                "LTI login + launch round trip, mean, shared state on Redis (states, nonces, "
                "cache, rate limits; jobs in-process)",
                redis["mean"],
                "ms",
                bare["mean"],
                "bare pylti1p3 tool (bench/lti_bare_tool.py), 2 gunicorn workers",
                f"<= {TARGET_RATIO}x baseline",
                redis["mean"] <= TARGET_RATIO * bare["mean"] and not redis["errors"],
                f"{sizes['launches']} launches, {USERS} students",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browsers", type=int, default=FULL["browsers"])
    parser.add_argument("--launches", type=int, default=FULL["launches"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--redis", help="also run Shuyuan with its shared state on this Redis (a URL)"
    )
    args = parser.parse_args()
    measure(args.browsers, args.launches, args.workers, args.redis)


def write_bare_config(platform: Platform, folder: str) -> Path:
    """The bare pylti1p3 tool's registration (bench/lti_bare_tool.py reads it from
    ``BARE_LTI_CONFIG``): the same platform as Shuyuan's, a fresh tool key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    config = Path(folder) / "bare.json"
    config.write_text(
        json.dumps(
            {
                "issuer": platform.issuer,
                "client_id": platform.client_id,
                "deployment_id": platform.deployment_id,
                "auth_login_url": platform.auth_url,
                "auth_token_url": platform.token_url,
                "key_set": {"keys": [platform.jwk]},
                "tool_private_key": pem,
            }
        )
    )
    return config


def run_bare(platform: Platform, args, ok: set[int]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        config = write_bare_config(platform, folder)
        port = free_port()
        env = {**os.environ, "BARE_LTI_CONFIG": str(config), "BARE_SECRET_KEY": uuid.uuid4().hex}
        import subprocess

        gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
        if not gunicorn.exists():  # another virtualenv: the one running this script
            gunicorn = Path(sys.executable).parent / "gunicorn"
        process = subprocess.Popen(
            [
                str(gunicorn),
                "-w",
                str(args.workers),
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "bench.lti_bare_tool:app",
            ],
            cwd=ROOT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(150):
                try:
                    if requests.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    time.sleep(0.2)
            return run(
                base, platform, args.browsers, args.launches, {}, ok, server_cpu(process.pid)
            )
        finally:
            process.terminate()
            process.wait(timeout=20)


if __name__ == "__main__":
    main()
