"""Writing statement rows on PostgreSQL, on the driver's cursor (issue 14: each round trip
to the database is a context switch on a loaded 2-core machine, and SQLAlchemy's
per-statement work was a large part of a single POST's CPU).

- :func:`savepoint_and_look` opens the savepoint of the insert and looks for existing
  ids in one round trip (simple query protocol, two statements).
- :func:`insert_one` stores one statement, its relation rows and its activity
  definitions in one statement (data-modifying CTEs): the single POST.
- :func:`copy_statements` and :func:`copy_relations` store a batch with ``COPY``.
"""

from __future__ import annotations

import json
import re

from app.common import statistics
from app.xapi.services.activities import upsert_parameters, upsert_sql

SAVEPOINT = "xapi_store"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

STATEMENT_COLUMNS = (
    "statement_id",
    "district_id",
    "school_id",
    "client_id",
    "actor_hash",
    "verb_hash",
    "object_type",
    "object_hash",
    "object_ref",
    "registration",
    "stored",
    "timestamp",
    "voided",
    "is_voiding",
    "version",
    "has_attachments",
)


def savepoint_and_look(cursor, district_id: int, ids: list[str]) -> list[tuple]:
    """``SAVEPOINT`` and the stored statements with one of ``ids`` or voiding one of them,
    ``(statement_id, data, is_voiding, object_ref)``, in one round trip.  Without bound
    parameters psycopg sends the text as a simple query, which may hold two statements;
    the ids are lower-case UUIDs (checked here, so the literals are safe) and the district
    an integer."""
    if not all(_UUID.match(i) for i in ids):  # validation let something else through
        raise ValueError("statement ids must be lower-case UUIDs")
    listed = ", ".join(f"'{i}'" for i in ids)
    cursor.execute(
        f"SAVEPOINT {SAVEPOINT}; "
        "SELECT statement_id, data, is_voiding, object_ref FROM xapi_statements "
        f"WHERE district_id = {int(district_id)} AND (statement_id IN ({listed}) "
        f"OR (is_voiding AND object_ref IN ({listed})))"
    )
    cursor.nextset()
    return cursor.fetchall()


def rollback_to_savepoint(cursor) -> None:
    cursor.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")


def _values(count: int, width: int, cast: dict[int, str] | None = None) -> str:
    cast = cast or {}
    row = "(" + ", ".join("%s" + cast.get(i, "") for i in range(width)) + ")"
    return ", ".join([row] * count)


_ONE_SQL: dict[tuple[int, int], str] = {}


def _one_sql(relations: int, activities: int) -> str:
    """The text of :func:`insert_one` for a number of relation and activity rows (a few
    shapes, each prepared by psycopg once it is used often)."""
    key = (relations, activities)
    sql = _ONE_SQL.get(key)
    if sql is None:
        columns = ", ".join(STATEMENT_COLUMNS)
        width = len(STATEMENT_COLUMNS) + 1
        parts = [
            f"WITH s AS (INSERT INTO xapi_statements ({columns}, data) "
            f"VALUES {_values(1, width, {width - 1: '::jsonb'})} RETURNING id)"
        ]
        if relations:
            parts.append(
                ", r AS (INSERT INTO xapi_statement_relations "
                "(statement_pk, district_id, kind, key_hash) "
                "SELECT s.id, v.district_id, v.kind, v.key_hash FROM s, "
                f"(VALUES {_values(relations, 3, {0: '::integer'})}) "
                "AS v (district_id, kind, key_hash))"
            )
        if activities:
            parts.append(f", a AS ({upsert_sql(activities)})")
        parts.append(" SELECT id FROM s")
        sql = _ONE_SQL[key] = "".join(parts)
    return sql


def insert_one(cursor, row: dict, relations: list[tuple[str, str]], activities: list[dict]) -> int:
    """Store one statement ``row``, its relation rows ``(kind, key hash)`` and the
    activity upsert rows in one statement; return the statement's key."""
    params: list = [row[c] for c in STATEMENT_COLUMNS]
    params.append(json.dumps(row["data"]))
    for kind, key_hash in relations:
        params.extend((row["district_id"], kind, key_hash))
    params.extend(upsert_parameters(activities))
    cursor.execute(_one_sql(len(relations), len(activities)), params)
    # On the driver's cursor, past SQLAlchemy: counted for a bulk import's ANALYZE.
    statistics.written("xapi_statements", 1)
    statistics.written("xapi_statement_relations", len(relations))
    return cursor.fetchone()[0]


def copy_statements(cursor, rows: list[dict]) -> dict[str, int]:
    """Store ``rows`` with COPY (issue 14: a third of a batch's time went into binding
    parameters of the multi-row INSERT).  COPY cannot return the generated keys, so they
    are taken from the sequence first, in one round trip.  A unique violation (another
    request stored one of the ids meanwhile) raises like an INSERT and is retried by the
    caller in the savepoint."""
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence('xapi_statements', 'id')) "
        "FROM generate_series(1, %s)",
        (len(rows),),
    )
    # Keys in the order the statements were sent (a batch reads back in that order),
    # rows written in statement-id order: one lock order for concurrent batches, so
    # overlapping batches wait for each other instead of deadlocking.
    keyed = sorted(
        zip(sorted(pk for (pk,) in cursor.fetchall()), rows, strict=True),
        key=lambda pair: pair[1]["statement_id"],
    )
    columns = ", ".join(STATEMENT_COLUMNS)
    dumps = json.dumps
    with cursor.copy(f"COPY xapi_statements (id, {columns}, data) FROM STDIN") as copy:
        for pk, row in keyed:
            copy.write_row((pk, *[row[c] for c in STATEMENT_COLUMNS], dumps(row["data"])))
    statistics.written("xapi_statements", len(rows))  # a bulk import's ANALYZE
    return {row["statement_id"]: pk for pk, row in keyed}


def copy_relations(cursor, relations: list[tuple[int, int, str, str]]) -> None:
    """``(statement_pk, district_id, kind, key_hash)`` rows, with COPY."""
    with cursor.copy(
        "COPY xapi_statement_relations (statement_pk, district_id, kind, key_hash) FROM STDIN"
    ) as copy:
        for r in relations:
            copy.write_row(r)
    statistics.written("xapi_statement_relations", len(relations))
