"""Activity definitions gathered from stored statements: which definitions a batch
carries, how a new definition merges into the stored one, and the upserts that store them
(on PostgreSQL the merge runs on the server, with no SELECT first, issue 14)."""

from __future__ import annotations

import json

from sqlalchemy import select

from app.common.models import utcnow
from app.extensions import db
from app.xapi.models import Activity
from app.xapi.services.identity import sha1

_UPSERTS: dict = {}


def upsert(model, rows, index_elements, update_columns=None):
    """INSERT … ON CONFLICT for ``rows``, as one executemany of a statement built once per
    table and dialect (so SQLAlchemy's compiled cache is hit; the rows go out as
    multi-row VALUES)."""
    dialect = db.session.get_bind().dialect.name
    key = (model, dialect, tuple(index_elements), tuple(update_columns or ()))
    statement = _UPSERTS.get(key)
    if statement is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        statement = dialect_insert(model)
        if update_columns:
            statement = statement.on_conflict_do_update(
                index_elements=index_elements,
                set_={c: statement.excluded[c] for c in update_columns},
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=index_elements)
        _UPSERTS[key] = statement
    db.session.execute(statement, rows)


def merge_definition(old: dict, new: dict) -> dict:
    merged = dict(old)
    for key, value in new.items():
        if (
            key in ("name", "description")
            and isinstance(value, dict)
            and isinstance(merged.get(key), dict)
        ):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def merge_sql(old: str, new: str) -> str:
    """:func:`merge_definition` in PostgreSQL: the new keys over the old ones, and the
    language maps ``name`` and ``description`` merged when both sides have one."""

    def both(key: str) -> str:
        return (
            f"CASE WHEN jsonb_typeof({old}->'{key}') = 'object' "
            f"AND jsonb_typeof({new}->'{key}') = 'object' "
            f"THEN ({old}->'{key}') || ({new}->'{key}') END"
        )

    return (
        f"({old} || {new} || jsonb_strip_nulls(jsonb_build_object("
        f"'name', {both('name')}, 'description', {both('description')})))"
    )


MERGED = merge_sql("xapi_activities.definition", "excluded.definition")
# The ON CONFLICT clause of the PostgreSQL upsert: an unchanged definition is not
# rewritten (the WHERE).
ON_CONFLICT_SQL = (
    "ON CONFLICT (district_id, activity_hash) DO UPDATE SET "
    f"definition = {MERGED}, updated = excluded.updated "
    f"WHERE {MERGED} IS DISTINCT FROM xapi_activities.definition"
)
# ON CONFLICT DO UPDATE locks the conflicting row even when its WHERE is false: every
# statement about a known activity wrote a row lock (a heap write and WAL record) and held
# it until the commit, so two requests naming the same activity waited for each other's
# commit (issue 14, "Lock:transactionid" on the upsert at 1M statements).  Rows whose
# stored definition already holds the merge are dropped before the INSERT, without a lock:
# storing nothing is then the same as a no-op upsert ordered before any concurrent change.
# A scalar subquery (one index look-up per row), not NOT EXISTS: the planner turned that
# into a hash anti join over the whole table.
_UNCHANGED_SQL = (
    "NOT coalesce((SELECT "
    f"{merge_sql('known.definition', 'v.definition')} = known.definition "
    "FROM xapi_activities AS known WHERE known.district_id = v.district_id "
    "AND known.activity_hash = v.activity_hash), false)"
)
UPSERT_CHUNK = 1000
_UPSERT_ROW = "(%s::integer, %s::varchar, %s::varchar, %s::jsonb, %s::timestamp)"


def upsert_sql(count: int) -> str:
    """The PostgreSQL upsert of ``count`` activity rows ``(district_id, activity_hash,
    activity_id, definition as JSON text, updated)``, psycopg placeholders; also used as a
    CTE of the one-statement insert of a single statement (app.xapi.services.rows)."""
    return (
        "INSERT INTO xapi_activities (district_id, activity_hash, activity_id, definition, "
        "updated) SELECT v.district_id, v.activity_hash, v.activity_id, v.definition, "
        f"v.updated FROM (VALUES {', '.join([_UPSERT_ROW] * count)}) AS v (district_id, "
        f"activity_hash, activity_id, definition, updated) WHERE {_UNCHANGED_SQL} "
        + ON_CONFLICT_SQL
    )


def upsert_parameters(rows: list[dict]) -> list:
    """The parameters of :func:`upsert_sql` for the rows of :func:`postgresql_rows`."""
    params: list = []
    for a in rows:
        params.extend(
            (
                a["district_id"],
                a["activity_hash"],
                a["activity_id"],
                json.dumps(a["definition"]),
                a["updated"],
            )
        )
    return params


def definitions(statements) -> dict[str, tuple[str, dict]]:
    """``{sha1(activity id): (activity id, definition)}`` of every activity with a
    definition in ``statements`` (object, sub-statement object, context activities),
    merged in statement order."""
    found: dict[str, tuple[str, dict]] = {}
    for full in statements:
        obj = full["object"]
        candidates = [obj]
        if obj.get("objectType") == "SubStatement":
            candidates = [obj["object"]]
        for holder in (full, obj):
            for value in ((holder.get("context") or {}).get("contextActivities") or {}).values():
                candidates.extend(value if isinstance(value, list) else [value])
        for candidate in candidates:
            if candidate.get("objectType", "Activity") == "Activity" and candidate.get(
                "definition"
            ):
                previous = found.get(candidate["id"], (None, {}))[1]
                found[candidate["id"]] = (
                    candidate["id"],
                    merge_definition(previous, candidate["definition"]),
                )
    return {sha1(i): (i, d) for i, d in found.values()}


def postgresql_rows(district_id: int, hashes: dict[str, tuple[str, dict]]) -> list[dict]:
    """The rows of the PostgreSQL upsert, in hash order (one lock order for concurrent
    batches)."""
    now = utcnow()
    return [
        {
            "district_id": district_id,
            "activity_hash": key,
            "activity_id": hashes[key][0],
            "definition": hashes[key][1],
            "updated": now,
        }
        for key in sorted(hashes)
    ]


def update_activities(district_id: int, statements) -> None:
    """Store the activity definitions of ``statements`` (new ones inserted, known ones
    merged)."""
    hashes = definitions(statements)
    if not hashes:
        return
    if db.session.get_bind().dialect.name == "postgresql":
        rows = postgresql_rows(district_id, hashes)
        cursor = db.session.connection().connection.driver_connection.cursor()
        try:
            # At most UPSERT_CHUNK rows a statement (PostgreSQL takes 65,535 parameters).
            for start in range(0, len(rows), UPSERT_CHUNK):
                chunk = rows[start : start + UPSERT_CHUNK]
                cursor.execute(upsert_sql(len(chunk)), upsert_parameters(chunk))
        finally:
            cursor.close()
        return
    current = dict(
        db.session.execute(
            select(Activity.activity_hash, Activity.definition).where(
                Activity.district_id == district_id,
                Activity.activity_hash.in_(list(hashes)),
            )
        ).all()
    )
    rows = []
    for key in sorted(hashes):
        activity_id, definition = hashes[key]
        merged = merge_definition(current.get(key) or {}, definition)
        if key in current and merged == current[key]:
            continue
        rows.append(
            {
                "district_id": district_id,
                "activity_hash": key,
                "activity_id": activity_id,
                "definition": merged,
                "updated": utcnow(),
            }
        )
    if rows:
        upsert(Activity, rows, ["district_id", "activity_hash"], ["definition", "updated"])
