"""Benchmark of the xAPI LRS (issue 6).

On a throwaway PostgreSQL database: bulk-loads ``--statements`` statements (default
1,000,000) with COPY (not through HTTP), starts ``gunicorn -w 2 wsgi:app``, creates an LRS
client, then with ``--clients`` concurrent clients (default 8):

0. GET queries: agent, verb+since, activity (``--queries`` each, each kind warmed up
   first) -> p50/p95 ms; before the POSTs, so that no GET waits for POSTs still queued;
1. single-statement POSTs for ``--seconds`` seconds -> statements/s;
2. POSTs of batches of 100 for ``--seconds`` seconds -> statements/s;
   (both sent by wrk with a Lua script when wrk is installed, else by Python threads;
   ``--client`` chooses; the same client for Shuyuan and the bare baseline)

then the same phases against the bare baseline (``bench/xapi_bare.py``: the same rows and
page queries in plain SQL, no validation) on the same database, and prints both, with the
EXPLAIN ANALYZE of the three page queries.  ``table_rows(full)`` returns the figures as
``bench.table.Row`` objects for ``python -m bench``.

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
            # Write the load's dirty pages out now: otherwise the checkpoint after a 1M
            # load runs during the first server's measurement (Shuyuan's) and not the
            # bare route's, minutes later (docs/xapi.md, writes at 1M).
            cur.execute("CHECKPOINT")
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
                    response = session.post(base, data=body, headers=headers, timeout=60)
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

    return _run_clients(counter, [lambda n=n: worker(n) for n in range(clients)])


WRK_SCRIPT = """
local bodies = %s
local headers = %s
local n = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  -- each wrk thread its own sequence of ids (the same seed would send the same ids)
  math.randomseed(%d * 1000 + tid + os.time() * 7919)
end
local function hex16()
  return string.format("%%04x", math.random(0, 0xffff))
end
local function uuid()
  return hex16() .. hex16() .. "-" .. hex16() .. "-4" .. string.sub(hex16(), 2) .. "-" ..
    string.format("%%04x", 0x8000 + math.random(0, 0x3fff)) .. "-" .. hex16() .. hex16() ..
    hex16()
end
request = function()
  n = n + 1
  local body = bodies[(n %% #bodies) + 1]:gsub("@@ID@@", uuid)
  return wrk.format("POST", nil, headers, body)
end
done = function(summary, latency, requests)
  io.write(string.format("WRK {\\"requests\\": %%d, \\"non2xx\\": %%d, \\"seconds\\": %%f, " ..
    "\\"p50\\": %%f, \\"p95\\": %%f, \\"errors\\": %%d}\\n",
    summary.requests, summary.errors.status, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def wrk_script(headers: dict, batch: int, seed: int) -> str:
    """A wrk Lua script that POSTs the statements of :func:`make_statement` (``batch`` per
    request, one object when 1), each with a fresh id."""
    rng = random.Random(seed)
    bodies = []
    for _ in range(40 if batch > 1 else 400):
        data = [make_statement(rng) for _ in range(batch)] if batch > 1 else make_statement(rng)
        for statement in data if isinstance(data, list) else [data]:
            statement["id"] = "@@ID@@"
        bodies.append(json.dumps(data))

    def lua(text: str) -> str:
        return "[==[" + text + "]==]"

    lua_bodies = "{" + ",\n".join(lua(b) for b in bodies) + "}"
    lua_headers = "{" + ", ".join(f"[ {lua(k)} ] = {lua(v)}" for k, v in headers.items()) + "}"
    return WRK_SCRIPT % (lua_bodies, lua_headers, seed)


def wrk_post_load(
    base: str, headers: dict, clients: int, seconds: float, batch: int, seed: int, on_start=None
) -> Counter:
    """:func:`post_load` with wrk (a C client, 2 threads, ``clients`` connections): the
    load client's CPU per request is a small fraction of the Python client's, which shares
    the 2 cores with the servers (issue 14).  ``on_start(pid)`` is called once wrk runs."""
    headers = {"Content-Type": "application/json", **headers}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(headers, batch, seed))
    import resource

    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        process = subprocess.Popen(
            ["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds:.0f}s", "--timeout", "60s"]
            + ["-s", script.name, base],
            stdout=subprocess.PIPE,
            text=True,
        )
        if on_start:
            on_start(process.pid)
        out, _ = process.communicate()
    finally:
        Path(script.name).unlink()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    figures = json.loads(line[4:])
    counter = Counter()
    counter.client_cpu = (children.ru_utime - children_before.ru_utime) + (
        children.ru_stime - children_before.ru_stime
    )
    counter.requests = figures["requests"] - figures["non2xx"]
    counter.statements = counter.requests * batch
    counter.elapsed = figures["seconds"]
    if figures["non2xx"]:
        counter.errors["non-2xx"] = figures["non2xx"]
    if figures["errors"]:
        counter.errors["connection"] = figures["errors"]
    counter.p50, counter.p95 = figures["p50"], figures["p95"]
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

    return _run_clients(counter, [worker] * clients)


def _run_clients(counter: Counter, workers: list) -> Counter:
    """Run each function in a thread of its own; ``counter.elapsed`` is the wall time."""
    threads = [threading.Thread(target=work) for work in workers]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counter.elapsed = time.perf_counter() - began
    return counter


SMALL = {"statements": 20_000, "seconds": 8.0, "queries": 100}
FULL = {"statements": 1_000_000, "seconds": 30.0, "queries": 400}
TARGETS = {"single": 400.0, "batch": 3000.0, "get_p95": 40.0}


class BareServer:
    """``gunicorn -w N bench.xapi_bare:app`` on the same database (the baseline)."""

    def __init__(self, database_url: str, district_id: int, workers: int):
        import os

        from bench.common import free_port

        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BARE_DISTRICT_ID": str(district_id),
        }
        self.workers = workers

    def __enter__(self):
        root = Path(__file__).resolve().parent.parent
        gunicorn = root / ".venv" / "bin" / "gunicorn"
        if not gunicorn.exists():
            gunicorn = Path(sys.executable).parent / "gunicorn"
        self.process = subprocess.Popen(
            [str(gunicorn), "-w", str(self.workers), "-b", f"127.0.0.1:{self.port}"]
            + ["--log-level", "warning", "bench.xapi_bare:app"],
            cwd=root,
            env=self.env,
        )
        for _ in range(300):
            try:
                if requests.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("the bare xAPI server did not start")

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)


def query_paths(queries: int, limit: int) -> dict[str, list[str]]:
    rng = random.Random(7)
    now = datetime.utcnow()
    kinds = {
        "agent": lambda: "agent=" + requests.utils.quote(json.dumps(actor(rng.randrange(ACTORS)))),
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
    return {
        label: [f"?limit={limit}&{make()}" for _ in range(queries)] for label, make in kinds.items()
    }


def measure(base: str, prefix: str, headers: dict, args, label: str) -> dict:
    """The POST phases and the GET queries against one server; returns the figures."""
    for _ in range(20):  # warm both workers
        requests.get(base + prefix + "?limit=1&verb=" + VERBS[0], headers=headers, timeout=30)
    print(
        f"{label}: gunicorn -w {args.workers}, {args.clients} clients, {args.seconds:.0f} s/phase"
        f", POSTs sent by the {getattr(args, 'client', 'python')} client"
    )
    figures: dict = {}
    # The GETs go first: right after a POST phase the server is still working off the
    # requests wrk left in its queue when it stopped (the first GET after the batches
    # waited 200 ms on the bare route, load 14), and the first kind measured paid for it
    # (agent p95 146 ms on the bare route in `make bench`, against 26 ms for the next
    # kind).  Each kind is warmed up first (its page query compiled and prepared in both
    # workers), as the POSTs are by the requests above.
    for kind, paths in query_paths(args.queries, args.limit).items():
        for path in paths[: 4 * args.workers]:
            requests.get(base + prefix + path, headers=headers, timeout=30)
        result = query_load(base, headers, args.clients, [prefix + path for path in paths])
        p = percentiles(result.latencies)
        figures[kind] = p["p95"]
        print(
            f"  GET {kind}: p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms, p99 {p['p99']:.1f} ms "
            f"({result.requests} queries, {result.statements / max(result.requests, 1):.1f} "
            f"statements each; errors: {result.errors or 'none'})"
        )
    load = wrk_post_load if getattr(args, "client", "python") == "wrk" else post_load
    for key, batch in (("single", 1), ("batch", 100)):
        result = load(base + prefix, headers, args.clients, args.seconds, batch, seed=batch)
        p = (
            {"p50": result.p50, "p95": result.p95}
            if hasattr(result, "p95")
            else percentiles(result.latencies)
        )
        figures[key] = result.statements / result.elapsed
        figures[key + "_errors"] = sum(result.errors.values())
        print(
            f"  POST {'single statements' if batch == 1 else 'batches of 100'}: "
            f"{figures[key]:,.0f} statements/s ({result.requests / result.elapsed:,.1f} req/s; "
            f"p50 {p['p50']:.1f} ms p95 {p['p95']:.1f} ms); errors: {result.errors or 'none'}"
        )
        for sample in result.samples:
            print("   ", sample)
    return figures


def explain(database_url: str, district_id: int, limit: int) -> None:
    """EXPLAIN ANALYZE of the three page queries (the SQL Shuyuan runs, as in xapi_bare)."""
    import psycopg

    from bench.xapi_bare import PAGE, WHERE, agent_key

    rng = random.Random(11)
    agent = sha1(agent_key(actor(rng.randrange(ACTORS))))
    since = datetime.utcnow() - timedelta(days=30)
    cases = {
        "agent": (WHERE["agent"], [agent, agent]),
        "verb+since": (WHERE["verb"], [sha1(VERBS[0]), since]),
        "activity": (WHERE["activity"], [sha1(activity_id(rng.randrange(ACTIVITIES)))]),
    }
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for label, (where, params) in cases.items():
            cur.execute(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + PAGE.format(where=where),
                [district_id, *params, limit + 1],
            )
            print(f"EXPLAIN ANALYZE {label}:")
            for (line,) in cur.fetchall():
                print("   ", line)


def lrs_app(database_url: str):
    """Shuyuan on ``database_url`` with its schema, a bench district and an LRS client
    allowed everything: ``(app, key, secret, district_id)``."""
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
        db.session.remove()
        db.engine.dispose()
    return app, key, secret, district_id


def lrs_headers(key: str, secret: str) -> dict:
    """The headers of an xAPI 2.0 client with Basic credentials."""
    return {
        "Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode(),
        "X-Experience-API-Version": "2.0.0",
        "Content-Type": "application/json",
    }


def run(args) -> dict:
    """Load, then measure Shuyuan and the bare baseline on the same database."""
    print(f"machine: {machine_description()}")
    print(f"load average at start: {load_average()}")
    results: dict = {}
    with throwaway_postgres() as database_url:
        _app, key, secret, district_id = lrs_app(database_url)
        print(f"bulk-loading {args.statements:,} statements with COPY ...", flush=True)
        took = bulk_load(database_url, district_id, args.statements)
        print(f"bulk load: {took:.0f} s ({args.statements / took:,.0f} statements/s)")
        explain(database_url, district_id, args.limit)
        headers = lrs_headers(key, secret)
        with Gunicorn(database_url, workers=args.workers) as server:
            results["shuyuan"] = measure(
                server.base_url, "/xapi/statements", headers, args, "Shuyuan"
            )
        if not args.no_bare:
            with BareServer(database_url, district_id, args.workers) as bare:
                results["bare"] = measure(bare.base_url, "/statements", {}, args, "bare baseline")
        print(f"load average at end: {load_average()}")
    return results


def default_client() -> str:
    """wrk when it is on PATH (``apt-get install wrk``), else the Python client."""
    import shutil

    return "wrk" if shutil.which("wrk") else "python"


def load_average() -> str:
    import os

    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def table_rows(full: bool) -> list:
    """Rows for ``python -m bench`` (bench/table.py): Shuyuan beside the bare baseline
    (bench/xapi_bare.py: the same inserts and page queries in plain SQL) of the same run."""
    from bench.table import Row

    sizes = FULL if full else SMALL
    args = argparse.Namespace(
        clients=8, limit=25, workers=2, no_bare=False, client=default_client(), **sizes
    )
    results = run(args)
    ours, bare = results["shuyuan"], results["bare"]
    size = f"{args.statements:,} statements stored, POSTs sent by {args.client}"
    rows = [
        Row(
            "xAPI single POST (2 gunicorn workers, PostgreSQL, 8 clients)",
            ours["single"],
            "st/s",
            bare["single"],
            "bare Flask route, same rows in plain SQL",
            f">= {TARGETS['single']:.0f} st/s",
            ours["single"] >= TARGETS["single"],
            size,
        ),
        Row(
            "xAPI batches of 100 (2 gunicorn workers, PostgreSQL, 8 clients)",
            ours["batch"],
            "st/s",
            bare["batch"],
            "bare Flask route, same rows in plain SQL",
            f">= {TARGETS['batch']:.0f} st/s",
            ours["batch"] >= TARGETS["batch"],
            size,
        ),
    ]
    for kind in ("agent", "verb+since", "activity"):
        rows.append(
            Row(
                f"xAPI GET by {kind}, limit 25 (8 clients)",
                ours[kind],
                "ms p95",
                bare[kind],
                "bare Flask route, same page query",
                f"< {TARGETS['get_p95']:.0f} ms p95",
                ours[kind] < TARGETS["get_p95"],
                size,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--statements", type=int, default=FULL["statements"], help="bulk-loaded before measuring"
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--seconds", type=float, default=FULL["seconds"], help="duration of each POST phase"
    )
    parser.add_argument("--queries", type=int, default=FULL["queries"], help="GETs per kind")
    parser.add_argument("--limit", type=int, default=25, help="limit= of the GET queries")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare baseline")
    parser.add_argument(
        "--client",
        choices=("wrk", "python"),
        default=default_client(),
        help="what sends the POSTs (default: wrk when it is installed)",
    )
    args = parser.parse_args()
    results = run(args)
    if "bare" in results:
        ours, bare = results["shuyuan"], results["bare"]
        print("summary (Shuyuan / bare baseline, same run):")
        for key, unit in (("single", "st/s"), ("batch", "st/s")):
            print(
                f"  {key}: {ours[key]:,.0f} / {bare[key]:,.0f} {unit} = {ours[key] / bare[key]:.2f}"
            )
        for key in ("agent", "verb+since", "activity"):
            print(f"  GET {key} p95: {ours[key]:.1f} / {bare[key]:.1f} ms")


if __name__ == "__main__":
    main()
