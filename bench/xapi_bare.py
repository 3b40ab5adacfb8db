"""The bare baseline of bench/xapi.py: a Flask app that does the LRS's database work with
plain SQL and nothing else.

``POST /statements`` reads the JSON body, computes the same query columns (SHA-1 of the
actor, verb and object; registration; stored), inserts the statements with one multi-row
``INSERT … RETURNING`` and their relation rows with a second one, and commits: the same
rows Shuyuan writes, without validation, authentication, idempotence checks, activity
definitions or savepoints.  ``GET /statements`` runs the same page query Shuyuan runs for
``agent``, ``verb`` + ``since`` and ``activity`` (same WHERE, ORDER BY and LIMIT) and
returns the stored JSON.  One psycopg connection per worker process.

Run: ``DATABASE_URL=… BARE_DISTRICT_ID=1 gunicorn -w 2 bench.xapi_bare:app``.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import UTC, datetime

import psycopg
from flask import Flask, Response, request

app = Flask(__name__)
DISTRICT = int(os.environ.get("BARE_DISTRICT_ID", "1"))
_connection: psycopg.Connection | None = None

COLUMNS = (
    "statement_id, district_id, actor_hash, verb_hash, object_type, object_hash, "
    "registration, stored, timestamp, voided, is_voiding, version, has_attachments, data"
)
PAGE = (
    "SELECT data FROM xapi_statements WHERE district_id = %s AND voided = false AND {where} "
    "ORDER BY stored DESC, id DESC LIMIT %s"
)
WHERE = {
    "agent": "(actor_hash = %s OR (object_hash = %s AND object_type IN ('Agent', 'Group')))",
    "verb": "verb_hash = %s AND stored > %s",
    "activity": "object_hash = %s AND object_type = 'Activity'",
}


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def agent_key(agent: dict) -> str:
    account = agent.get("account")
    if account:
        return "account:" + account["homePage"] + "|" + account["name"]
    return "mbox:" + str(agent.get("mbox"))


def connection() -> psycopg.Connection:
    global _connection
    if _connection is None or _connection.closed:
        url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        _connection = psycopg.connect(url)
    return _connection


@app.route("/healthz")
def healthz():
    return "ok"


@app.route("/statements", methods=["POST"])
def post_statements():
    body = json.loads(request.get_data())
    statements = body if isinstance(body, list) else [body]
    now = datetime.now(UTC).replace(tzinfo=None)
    rows, relations = [], []
    for statement in statements:
        sid = statement.get("id") or str(uuid.uuid4())
        actor = sha1(agent_key(statement["actor"]))
        obj = sha1(statement["object"]["id"])
        parents = (statement.get("context") or {}).get("contextActivities", {}).get("parent", [])
        rows.append(
            (sid, DISTRICT, actor, sha1(statement["verb"]["id"]), "Activity", obj)
            + ((statement.get("context") or {}).get("registration"), now, now)
            + (False, False, "2.0.0", False, json.dumps(statement))
        )
        relations.append((sid, [actor], [obj] + [sha1(p["id"]) for p in parents]))
    conn = connection()
    with conn.cursor() as cur:
        values = ", ".join(["(" + ", ".join(["%s"] * 14) + ")"] * len(rows))
        cur.execute(
            f"INSERT INTO xapi_statements ({COLUMNS}) VALUES {values} RETURNING id, statement_id",
            [v for row in rows for v in row],
        )
        pks = dict((sid, pk) for pk, sid in cur.fetchall())
        relation_rows = [
            (pks[sid], DISTRICT, kind, key)
            for sid, agents, activities in relations
            for kind, keys in (("agent", agents), ("activity", activities))
            for key in keys
        ]
        values = ", ".join(["(%s, %s, %s, %s)"] * len(relation_rows))
        cur.execute(
            "INSERT INTO xapi_statement_relations (statement_pk, district_id, kind, key_hash) "
            f"VALUES {values}",
            [v for row in relation_rows for v in row],
        )
    conn.commit()
    return Response(json.dumps([r[0] for r in rows]), mimetype="application/json")


@app.route("/statements", methods=["GET"])
def get_statements():
    limit = int(request.args.get("limit", 25))
    if "agent" in request.args:
        key = sha1(agent_key(json.loads(request.args["agent"])))
        where, params = WHERE["agent"], [key, key]
    elif "verb" in request.args:
        since = datetime.fromisoformat(request.args["since"].replace("Z", "+00:00"))
        where, params = WHERE["verb"], [sha1(request.args["verb"]), since.replace(tzinfo=None)]
    else:
        where, params = WHERE["activity"], [sha1(request.args["activity"])]
    conn = connection()
    with conn.cursor() as cur:
        cur.execute(PAGE.format(where=where), [DISTRICT, *params, limit + 1])
        data = [row[0] for row in cur.fetchall()]
    conn.rollback()
    return Response(
        json.dumps({"statements": data[:limit], "more": ""}), mimetype="application/json"
    )
