"""Benchmark of the xAPI LRS (issue 6).

On a throwaway PostgreSQL database: bulk-loads ``--statements`` statements (default
1,000,000) with COPY (not through HTTP), starts ``gunicorn -w 2 wsgi:app``, creates an LRS
client, then with ``--clients`` concurrent clients (default 8):

1. single-statement POSTs for ``--seconds`` seconds -> statements/s;
2. POSTs of batches of 100 for ``--seconds`` seconds -> statements/s;
3. GET queries: agent, verb+since, activity (``--queries`` each) -> p50/p95 ms.

Any 5xx, deadlock or connection error is counted and printed.

    .venv/bin/python bench/xapi.py                          # full size (1M stored)
    .venv/bin/python bench/xapi.py --statements 100000 --seconds 10   # quick
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Gunicorn, machine_description, percentiles, throwaway_postgres  # noqa: E402

VERBS = [
    f"http://adlnet.gov/expapi/verbs/{v}"
    for v in (
        "experienced",
        "completed",
        "progressed",
        "launched",
        "answered",
        "passed",
        "failed",
        "attempted",
        "initialized",
        "terminated",
    )
] + [f"https://w3id.org/xapi/video/verbs/{v}" for v in ("played", "paused", "seeked")]
ACTORS = 20_000
ACTIVITIES = 10_000
COURSES = 200
HOME = "http://localhost:5000/d/bench"


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def actor(n: int) -> dict:
    return {"objectType": "Agent", "account": {"homePage": HOME, "name": f"student-{n:06d}"}}


def activity_id(n: int) -> str:
    return f"http://localhost:5000/resources/{n:08d}"


def make_statement(rng: random.Random, with_id: bool = True) -> dict:
    a = rng.randrange(ACTORS)
    statement = {
        "actor": actor(a),
        "verb": {"id": rng.choice(VERBS), "display": {"en-US": "did"}},
        "object": {
            "objectType": "Activity",
            "id": activity_id(rng.randrange(ACTIVITIES)),
            "definition": {"type": "http://adlnet.gov/expapi/activities/media"},
        },
        "context": {
            "platform": "Shuyuan",
            "contextActivities": {
                "parent": [{"id": f"http://localhost:5000/courses/{rng.randrange(COURSES):05d}"}]
            },
        },
        "result": {"completion": True, "score": {"scaled": round(rng.random(), 2)}},
    }
    if rng.random() < 0.3:
        statement["context"]["registration"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if with_id:
        statement["id"] = str(uuid.uuid4())
    return statement


def bulk_load(database_url: str, district_id: int, count: int, seed: int = 42) -> float:
    """COPY ``count`` statements (and their relation rows) straight into the tables."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    rng = random.Random(seed)
    now = datetime.utcnow().replace(microsecond=0)
    authority = json.dumps(
        {
            "objectType": "Agent",
            "name": "bulk",
            "account": {"homePage": "http://localhost:5000/xapi/clients", "name": "bulk"},
        }
    )
    began = time.perf_counter()
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT coalesce(max(id), 0) FROM xapi_statements")
            next_pk = cur.fetchone()[0] + 1
            # Load without the secondary indexes, then build them once (much faster).
            cur.execute(
                "SELECT indexdef, indexname FROM pg_indexes WHERE tablename IN "
                "('xapi_statements', 'xapi_statement_relations') AND indexname NOT LIKE 'pk_%' "
                "AND indexname NOT LIKE 'uq_%'"
            )
            index_definitions = cur.fetchall()
            for _definition, name in index_definitions:
                cur.execute(f'DROP INDEX "{name}"')
        conn.commit()
        chunk = 50_000
        for start in range(0, count, chunk):
            rows, relations = [], []
            for i in range(start, min(start + chunk, count)):
                statement = make_statement(rng)
                # Spread over the past year, oldest first (stored order = insertion order).
                stored = now - timedelta(seconds=(count - i) * 31_536_000 // count)
                stamp = stored.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                statement.update(stored=stamp, timestamp=stamp, version="2.0.0")
                full = json.dumps(statement)[:-1] + ', "authority": ' + authority + "}"
                registration = statement["context"].get("registration")
                actor_key = "account:" + HOME + "|" + statement["actor"]["account"]["name"]
                pk = next_pk + i
                rows.append(
                    (
                        pk,
                        statement["id"],
                        district_id,
                        sha1(actor_key),
                        sha1(statement["verb"]["id"]),
                        "Activity",
                        sha1(statement["object"]["id"]),
                        registration,
                        stored,
                        stored,
                        full,
                    )
                )
                relations.append((pk, district_id, "agent", sha1(actor_key)))
                relations.append((pk, district_id, "activity", sha1(statement["object"]["id"])))
                relations.append(
                    (
                        pk,
                        district_id,
                        "activity",
                        sha1(statement["context"]["contextActivities"]["parent"][0]["id"]),
                    )
                )
            with conn.cursor() as cur:
                with cur.copy(
                    "COPY xapi_statements (id, statement_id, district_id, actor_hash, verb_hash, "
                    "object_type, object_hash, registration, stored, timestamp, data, voided, "
                    "is_voiding, version, has_attachments) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row(row + (False, False, "2.0.0", False))
                with cur.copy(
                    "COPY xapi_statement_relations (statement_pk, district_id, kind, key_hash) "
                    "FROM STDIN"
                ) as copy:
                    for row in relations:
                        copy.write_row(row)
            conn.commit()
            print(
                f"  loaded {min(start + chunk, count):,} statements "
                f"({time.perf_counter() - began:.0f} s)",
                flush=True,
            )
        print(f"  rebuilding {len(index_definitions)} indexes ...", flush=True)
        with conn.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '512MB'")
            for definition, _name in index_definitions:
                cur.execute(definition)
        conn.commit()
        with conn.cursor() as cur:
            cur.execute(
                "SELECT setval(pg_get_serial_sequence('xapi_statements', 'id'), "
                "(SELECT max(id) FROM xapi_statements))"
            )
            cur.execute(
                "SELECT setval(pg_get_serial_sequence('xapi_statement_relations', 'id'), "
                "(SELECT max(id) FROM xapi_statement_relations))"
            )
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE xapi_statements")
            cur.execute("VACUUM ANALYZE xapi_statement_relations")
    return time.perf_counter() - began


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.statements = 0
        self.requests = 0
        self.errors: dict[str, int] = {}
        self.samples: list[str] = []
        self.latencies: list[float] = []

    def fail(self, key: str, sample: str):
        with self.lock:
            self.errors[key] = self.errors.get(key, 0) + 1
            if len(self.samples) < 5:
                self.samples.append(sample[:300])


def post_load(
    base: str, headers: dict, clients: int, seconds: float, batch: int, seed: int
) -> Counter:
    counter = Counter()
    deadline = time.perf_counter() + seconds

    def worker(n: int):
        rng = random.Random(seed * 100 + n)
        # Bodies prepared ahead so the client's own CPU use stays small.
        bodies = []
        for _ in range(40 if batch > 1 else 400):
            data = [make_statement(rng) for _ in range(batch)] if batch > 1 else make_statement(rng)
            bodies.append(json.dumps(data))
        with requests.Session() as session:
            i = 0
            while time.perf_counter() < deadline:
                body = bodies[i % len(bodies)]
                if i >= len(bodies):  # fresh ids, so repeats are new statements, not duplicates
                    data = json.loads(body)
                    for statement in data if isinstance(data, list) else [data]:
                        statement["id"] = str(uuid.uuid4())
                    body = json.dumps(data)
                i += 1
                began = time.perf_counter()
                try:
                    response = session.post(
                        base + "/xapi/statements", data=body, headers=headers, timeout=60
                    )
                except requests.RequestException as exc:
                    counter.fail("connection", repr(exc))
                    continue
                took = (time.perf_counter() - began) * 1000
                if response.status_code == 200:
                    with counter.lock:
                        counter.statements += batch
                        counter.requests += 1
                        counter.latencies.append(took)
                else:
                    key = f"{response.status_code}"
                    if "deadlock" in response.text.lower():
                        key += " deadlock"
                    counter.fail(key, response.text)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counter.elapsed = time.perf_counter() - began
    return counter


def query_load(base: str, headers: dict, clients: int, paths: list[str]) -> Counter:
    counter = Counter()
    cursor = iter(paths)
    lock = threading.Lock()

    def worker():
        with requests.Session() as session:
            while True:
                with lock:
                    path = next(cursor, None)
                if path is None:
                    return
                began = time.perf_counter()
                try:
                    response = session.get(base + path, headers=headers, timeout=60)
                except requests.RequestException as exc:
                    counter.fail("connection", repr(exc))
                    continue
                took = (time.perf_counter() - began) * 1000
                if response.status_code == 200:
                    with counter.lock:
                        counter.latencies.append(took)
                        counter.statements += len(response.json()["statements"])
                        counter.requests += 1
                else:
                    counter.fail(str(response.status_code), response.text)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counter.elapsed = time.perf_counter() - began
    return counter


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--statements", type=int, default=1_000_000, help="bulk-loaded before measuring"
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each POST phase")
    parser.add_argument("--queries", type=int, default=400, help="GETs per query kind")
    parser.add_argument("--limit", type=int, default=25, help="limit= of the GET queries")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    args = parser.parse_args()

    print(f"machine: {machine_description()}")
    with throwaway_postgres() as database_url:
        from app import create_app
        from app.accounts import services as accounts
        from app.common.events import commit
        from app.extensions import db
        from app.xapi import services

        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": database_url,
                "PLUGINS": [],
                "INSTANCE_PATH": tempfile.mkdtemp(prefix="shuyuan-bench-xapi-"),
                "SECRET_KEY": "bench",
            }
        )
        with app.app_context():
            db.create_all()
            region = accounts.ensure_region("bench", "基准市", "Bench City")
            district = accounts.ensure_district(region, "bench", "基准区", "Bench")
            client, secret = services.create_client("bench", district, ["all"])
            key, district_id = client.key, district.id
            commit()
            db.engine.dispose()
        print(f"bulk-loading {args.statements:,} statements with COPY ...", flush=True)
        took = bulk_load(database_url, district_id, args.statements)
        print(f"bulk load: {took:.0f} s ({args.statements / took:,.0f} statements/s)")
        headers = {
            "Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode(),
            "X-Experience-API-Version": "2.0.0",
            "Content-Type": "application/json",
        }
        with Gunicorn(database_url, workers=args.workers) as server:
            base = server.base_url
            # Warm both workers.
            for _ in range(20):
                requests.get(base + "/xapi/statements?limit=1", headers=headers, timeout=30)
            print(
                f"gunicorn -w {args.workers}, {args.clients} concurrent clients, "
                f"{args.seconds:.0f} s per phase"
            )
            for label, batch in (("single POSTs", 1), ("batches of 100", 100)):
                result = post_load(base, headers, args.clients, args.seconds, batch, seed=batch)
                p = percentiles(result.latencies)
                print(
                    f"{label}: {result.statements / result.elapsed:,.0f} statements/s "
                    f"({result.requests / result.elapsed:,.1f} requests/s; "
                    f"request p50 {p['p50']:.1f} ms "
                    f"p95 {p['p95']:.1f} ms); errors: {result.errors or 'none'}"
                )
                for sample in result.samples:
                    print("   ", sample)
            rng = random.Random(7)
            now = datetime.utcnow()
            kinds = {
                "agent": lambda: (
                    "agent=" + requests.utils.quote(json.dumps(actor(rng.randrange(ACTORS))))
                ),
                "verb+since": lambda: (
                    "verb="
                    + requests.utils.quote(rng.choice(VERBS))
                    + "&since="
                    + (now - timedelta(days=rng.randrange(1, 60))).strftime("%Y-%m-%dT%H:%M:%SZ")
                ),
                "activity": lambda: (
                    "activity=" + requests.utils.quote(activity_id(rng.randrange(ACTIVITIES)))
                ),
            }
            for label, make in kinds.items():
                paths = [
                    f"/xapi/statements?limit={args.limit}&{make()}" for _ in range(args.queries)
                ]
                result = query_load(base, headers, args.clients, paths)
                p = percentiles(result.latencies)
                print(
                    f"GET {label}: p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms, "
                    f"p99 {p['p99']:.1f} ms ({result.requests} queries, "
                    f"{result.statements / max(result.requests, 1):.1f} "
                    f"statements each; errors: {result.errors or 'none'})"
                )
        with app.app_context():
            from sqlalchemy import text

            count = db.session.execute(text("SELECT count(*) FROM xapi_statements")).scalar_one()
            size = db.session.execute(
                text("SELECT pg_size_pretty(pg_total_relation_size('xapi_statements'))")
            ).scalar_one()
            print(f"stored at the end: {count:,} statements, table + indexes {size}")
            db.session.remove()
            db.engine.dispose()
    subprocess.run(["true"], check=False)


if __name__ == "__main__":
    main()
