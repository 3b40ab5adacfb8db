"""Activity definitions gathered from stored statements: which definitions a batch
carries, how a new definition merges into the stored one, and the upserts that store them
(on PostgreSQL the merge runs on the server, with no SELECT first, issue 14)."""

from __future__ import annotations

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
# The ON CONFLICT clause of the PostgreSQL upsert, also used inside the one-statement
# insert of a single statement (app.xapi.services.rows): an unchanged definition is not
# rewritten (the WHERE).
ON_CONFLICT_SQL = (
    "ON CONFLICT (district_id, activity_hash) DO UPDATE SET "
    f"definition = {MERGED}, updated = excluded.updated "
    f"WHERE {MERGED} IS DISTINCT FROM xapi_activities.definition"
)


def _activity_upsert_postgresql():
    """One statement that inserts new activities and merges definitions into existing
    ones on the server (no SELECT first, issue 14)."""
    statement = _UPSERTS.get("activities-postgresql")
    if statement is None:
        from sqlalchemy import literal_column, text
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        # The Core table, not the entity: an ORM-enabled INSERT goes through SQLAlchemy's
        # bulk persistence on every execute (a tenth of a single POST's CPU, issue 14).
        statement = pg_insert(Activity.__table__)
        statement = statement.on_conflict_do_update(
            index_elements=["district_id", "activity_hash"],
            set_={"definition": literal_column(MERGED), "updated": statement.excluded.updated},
            where=text(f"{MERGED} IS DISTINCT FROM xapi_activities.definition"),
        )
        _UPSERTS["activities-postgresql"] = statement
    return statement


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
        db.session.execute(_activity_upsert_postgresql(), postgresql_rows(district_id, hashes))
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
