"""Storing statements: validation of a batch, idempotent insert with conflict detection,
relations, attachments, activity definitions, voiding and the forwarding outbox."""

from __future__ import annotations

import functools
import json
import uuid
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from app.common.models import utcnow
from app.common.transaction import savepoint
from app.errors import BadRequest, Conflict, Forbidden, PayloadTooLarge
from app.extensions import db
from app.xapi import schemas
from app.xapi.models import Activity, Attachment, Statement, StatementRelation
from app.xapi.services.auth import Principal
from app.xapi.services.forwarding import queue_forwarding
from app.xapi.services.identity import agent_key, object_key, sha1, statement_relations
from app.xapi.services.signatures import same_statement, verify_signature


def _with_array_context_activities(statement: dict) -> dict:
    """A shallow copy of the statement whose context activity lists are arrays (copying
    only the parts that change, so the caller's dict is left alone)."""
    out = dict(statement)

    def fix(holder: dict) -> dict:
        context = holder.get("context")
        activities = context.get("contextActivities") if isinstance(context, dict) else None
        if isinstance(activities, dict) and any(
            not isinstance(v, list) for v in activities.values()
        ):
            fixed = {k: (v if isinstance(v, list) else [v]) for k, v in activities.items()}
            holder = dict(holder)
            holder["context"] = {**context, "contextActivities": fixed}
        return holder

    out = fix(out)
    if isinstance(out.get("object"), dict) and out["object"].get("objectType") == "SubStatement":
        out["object"] = fix(out["object"])
    return out


# --- storing statements ---------------------------------------------------------------------


def _stored_now() -> datetime:
    now = utcnow()
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


def _validation_error(index: int | None, exc: ValidationError) -> BadRequest:
    prefix = "statement" if index is None else f"statement[{index}]"
    flat = schemas.flatten_errors(exc.messages, prefix)
    return BadRequest(
        "Invalid statement: " + schemas.describe_errors(flat), fields=flat, code="invalid_statement"
    )


def store_statements(
    principal: Principal,
    statements: list,
    version: str = "2.0.0",
    attachments: dict[str, tuple[str, bytes]] | None = None,
    statement_id: str | None = None,
    single: bool = False,
    json_checked: bool = False,
) -> list[str]:
    """Validate and store statements atomically; return their ids.

    ``attachments`` maps SHA-2 to (content type, bytes) for multipart requests.  Nothing is
    stored unless every statement is valid.  ``json_checked``: the statements were read
    with :func:`app.xapi.jsontext.loads` (the HTTP body), so its checks need not run again.
    """
    if not principal.can("statements/write"):
        raise Forbidden("This client may not write statements.")
    if not isinstance(statements, list):
        raise BadRequest("The body must be a statement object or an array of statements.")
    max_batch = current_app.config.get("XAPI_MAX_BATCH", 1000)
    if len(statements) > max_batch:
        raise PayloadTooLarge(f"At most {max_batch} statements per request.")
    attachments = attachments or {}
    max_depth = current_app.config.get("XAPI_MAX_JSON_DEPTH", 64)
    ids: list[str] = []
    seen: set[str] = set()
    needed_hashes: set[str] = set()
    for index, statement in enumerate(statements):
        label = None if single else index
        if not isinstance(statement, dict):
            raise BadRequest(
                f"statement[{index}] must be a JSON object.",
                fields={f"statement[{index}]": ["not an object"]},
            )
        try:
            schemas.validate_statement(statement, version, max_depth, json_checked)
        except ValidationError as exc:
            raise _validation_error(label, exc) from None
        if statement_id is not None:
            if "id" in statement and statement["id"].lower() != statement_id.lower():
                raise BadRequest(
                    "The statementId parameter and the statement's id differ.",
                    fields={"statementId": ["differs from statement.id"]},
                )
            statement = {**statement, "id": statement_id}
            statements[index] = statement
        sid = (statement.get("id") or str(uuid.uuid4())).lower()
        if sid in seen:
            raise BadRequest(
                f"statement[{index}].id: {sid} appears twice in this batch.",
                fields={f"statement[{index}].id": ["duplicate id in batch"]},
            )
        seen.add(sid)
        ids.append(sid)
        if principal.actor is not None and agent_key(statement["actor"]) != agent_key(
            principal.actor
        ):
            raise Forbidden("A launch token may only record statements about its own student.")
        for position, attachment in enumerate(statement.get("attachments") or []):
            if attachment.get("usageType") == schemas.SIGNATURE_USAGE:
                if attachment.get("contentType") != "application/octet-stream":
                    raise BadRequest(
                        f"statement[{index}].attachments[{position}].contentType: "
                        "a signature must be application/octet-stream.",
                        fields={"contentType": ["not octet-stream"]},
                    )
                part = attachments.get(attachment["sha2"])
                if part is None:
                    raise BadRequest(
                        f"statement[{index}]: the signature attachment is missing "
                        "from the request.",
                        fields={f"statement[{index}].attachments": ["signature missing"]},
                    )
                verify_signature(statement, part[1], index)
            if "fileUrl" not in attachment:
                needed_hashes.add(attachment["sha2"])
    missing = needed_hashes - set(attachments)
    if missing:
        raise BadRequest(
            "Attachment content is missing for sha2 "
            + ", ".join(sorted(missing))
            + " (send it as a multipart/mixed part with X-Experience-API-Hash, or give a fileUrl).",
            fields={"attachments": ["missing content"]},
        )
    extra = set(attachments) - {a["sha2"] for s in statements for a in (s.get("attachments") or [])}
    if extra:
        raise BadRequest(
            "The request has parts that no statement's attachments declare: "
            + ", ".join(sorted(extra)),
            fields={"attachments": ["unexpected parts"]},
        )

    _serialise_sqlite_writers()
    # Voiding rules: the target must not itself be a voiding statement.
    voiding_targets = {}
    for index, statement in enumerate(statements):
        if statement["verb"]["id"] == schemas.VOIDED_VERB:
            voiding_targets[statement["object"]["id"].lower()] = index
    if voiding_targets:
        batch_voiding = {
            sid
            for sid, s in zip(ids, statements, strict=True)
            if s["verb"]["id"] == schemas.VOIDED_VERB
        }
        for target, index in voiding_targets.items():
            if target in batch_voiding:
                raise BadRequest(
                    f"statement[{index}].object: cannot void a voiding statement.",
                    fields={"object.id": ["targets a voiding statement"]},
                )
        rows = (
            db.session.execute(
                select(Statement.statement_id).where(
                    Statement.district_id == principal.district_id,
                    Statement.statement_id.in_(list(voiding_targets)),
                    Statement.is_voiding.is_(True),
                )
            )
            .scalars()
            .all()
        )
        if rows:
            raise BadRequest(
                f"statement[{voiding_targets[rows[0]]}].object: statement {rows[0]} is a voiding "
                "statement and cannot be voided.",
                fields={"object.id": ["targets a voiding statement"]},
            )

    return _insert_with_retries(principal, statements, ids, version, attachments)


INSERT_ATTEMPTS = 8
_RETRY_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure
try:
    from psycopg import Error as _PsycopgError

    _DRIVER_ERRORS: tuple = (_PsycopgError,)
except ImportError:  # SQLite-only installations
    _DRIVER_ERRORS = ()


def _insert_with_retries(principal, statements, ids, version, attachments) -> list[str]:
    """Insert in a savepoint; when a concurrent request stored some of the same ids
    between our check and our insert (unique violation), roll back only the savepoint
    and look again: those ids are now existing statements, compared like any re-post.
    Each retry sees more of the other requests' rows, so this ends; if it does not
    within ``INSERT_ATTEMPTS``, the client gets 409 and may simply send the batch again
    (nothing of it was stored)."""
    for _attempt in range(INSERT_ATTEMPTS):
        try:
            with savepoint():
                return _insert(principal, statements, ids, version, attachments)
        except IntegrityError as exc:
            if not _is_unique_violation(exc):
                raise
            continue
        except _DRIVER_ERRORS as exc:  # raised by COPY, which bypasses SQLAlchemy
            if getattr(exc, "sqlstate", None) in _RETRY_SQLSTATES | {"23505"}:
                continue
            raise
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES:
                continue
            if "database is locked" in str(exc.orig):  # SQLite's busy timeout ran out
                break
            raise
    raise Conflict(
        _("Other requests are storing the same statements right now; send the batch again."),
        code="concurrent_write",
    )


def _is_unique_violation(exc: IntegrityError) -> bool:
    # psycopg names it by SQLSTATE; sqlite3 only in its message.
    return getattr(exc.orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(
        exc.orig
    )


def _serialise_sqlite_writers() -> None:
    """SQLite allows one writer at a time: take its write lock before looking for
    existing ids, so that the look and the insert see the same database (a plain
    deferred transaction would only take it at the first INSERT, after the look).  It
    also makes the savepoint nest inside a real transaction.  PostgreSQL needs none of
    this: row locks and the retry above handle it."""
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        return
    if not connection.connection.dbapi_connection.in_transaction:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except OperationalError:  # busy for longer than the busy timeout
            raise Conflict(
                _("The LRS is busy with other writes; send the statements again."),
                code="concurrent_write",
            ) from None


@functools.cache
def _existing_query():
    """Stored statements with one of the ids, and voiding statements that target one:
    built once per process from the table's Core columns (no ORM statement compilation
    on every POST, issue 14); the ids are an expanding bound parameter."""
    table = Statement.__table__.c
    ids = bindparam("ids", expanding=True)
    voiding_one = and_(table.is_voiding.is_(True), table.object_ref.in_(ids))
    return select(table.statement_id, table.data, table.is_voiding, table.object_ref).where(
        table.district_id == bindparam("district"), or_(table.statement_id.in_(ids), voiding_one)
    )


def _insert(principal, statements, ids, version, attachments) -> list[str]:
    existing: dict[str, dict] = {}
    voided_earlier: set[str] = set()  # ids a voiding statement stored before them targets
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start : chunk_start + 500]
        found = db.session.execute(
            _existing_query(), {"district": principal.district_id, "ids": chunk}
        )
        chunk_ids = set(chunk)
        for sid, full, is_voiding, object_ref in found:
            if sid in chunk_ids:
                existing[sid] = full
            if is_voiding and object_ref in chunk_ids:
                voided_earlier.add(object_ref)
    stored = _stored_now()
    stored_text = schemas.format_timestamp(stored)
    default_version = "2.0.0" if version.startswith("2") else "1.0.0"
    rows, new_statements = [], []
    for statement, sid in zip(statements, ids, strict=True):
        if sid in existing:
            if not same_statement(statement, existing[sid]):
                raise Conflict(f"A different statement with id {sid} is already stored.")
            continue
        full = _with_array_context_activities(statement)
        full["id"] = sid
        full["stored"] = stored_text
        full["authority"] = principal.authority
        full.setdefault("version", default_version)
        if "timestamp" not in full:
            full["timestamp"] = stored_text
        timestamp = schemas.parse_timestamp(full["timestamp"], "1.0.3").replace(tzinfo=None)
        obj = full["object"]
        object_type, object_hash, object_ref = object_key(obj)
        registration = (full.get("context") or {}).get("registration")
        rows.append(
            {
                "statement_id": sid,
                "district_id": principal.district_id,
                "school_id": principal.school_id,
                "client_id": principal.client_id,
                "actor_hash": sha1(agent_key(full["actor"])),
                "verb_hash": sha1(full["verb"]["id"]),
                "object_type": object_type,
                "object_hash": object_hash,
                "object_ref": object_ref,
                "registration": registration.lower() if registration else None,
                "stored": stored,
                "timestamp": timestamp,
                "voided": False,
                "is_voiding": full["verb"]["id"] == schemas.VOIDED_VERB,
                "version": full["version"][:16],
                "has_attachments": bool(full.get("attachments")),
                "data": full,
            }
        )
        new_statements.append(full)
    if not rows:
        return ids
    connection = db.session.connection()
    postgresql = connection.dialect.name == "postgresql"
    if postgresql:
        pk_by_id = _copy_statements(connection, rows)
    else:
        pks = db.session.execute(
            insert(Statement.__table__).returning(Statement.id, Statement.statement_id), rows
        ).all()
        pk_by_id = {sid: pk for pk, sid in pks}
    relations = []
    for full in new_statements:
        agents, activities = statement_relations(full)
        pk = pk_by_id[full["id"]]
        relations.extend(
            {
                "statement_pk": pk,
                "district_id": principal.district_id,
                "kind": "agent",
                "key_hash": sha1(k),
            }
            for k in agents
        )
        relations.extend(
            {
                "statement_pk": pk,
                "district_id": principal.district_id,
                "kind": "activity",
                "key_hash": sha1(a),
            }
            for a in activities
        )
    if relations and postgresql:
        _copy_relations(connection, relations)
    elif relations:
        db.session.execute(insert(StatementRelation.__table__), relations)
    _store_attachments(principal, attachments)
    _update_activities(principal, new_statements)
    _apply_voiding(principal, rows, voided_earlier)
    queue_forwarding(principal, [pk_by_id[s] for s in ids if s in pk_by_id])
    db.session.flush()
    return ids


_UPSERTS: dict = {}


_STATEMENT_COLUMNS = (
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


def _copy_statements(connection, rows: list[dict]) -> dict[str, int]:
    """PostgreSQL: store the rows with COPY (issue 14: a third of a batch's time went
    into binding parameters of the multi-row INSERT).  COPY cannot return the generated
    keys, so they are taken from the sequence first, in one round trip.  A unique
    violation (another request stored one of the ids meanwhile) raises like the INSERT
    did and is retried by :func:`_insert_with_retries`."""
    with connection.connection.driver_connection.cursor() as cursor:
        return _copy_statements_with(cursor, rows)


def _copy_statements_with(cursor, rows: list[dict]) -> dict[str, int]:
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
    columns = ", ".join(_STATEMENT_COLUMNS)
    dumps = json.dumps
    with cursor.copy(f"COPY xapi_statements (id, {columns}, data) FROM STDIN") as copy:
        for pk, row in keyed:
            copy.write_row((pk, *[row[c] for c in _STATEMENT_COLUMNS], dumps(row["data"])))
    return {row["statement_id"]: pk for pk, row in keyed}


def _copy_relations(connection, relations: list[dict]) -> None:
    with (
        connection.connection.driver_connection.cursor() as cursor,
        cursor.copy(
            "COPY xapi_statement_relations (statement_pk, district_id, kind, key_hash) FROM STDIN"
        ) as copy,
    ):
        for r in relations:
            copy.write_row((r["statement_pk"], r["district_id"], r["kind"], r["key_hash"]))


def _upsert(model, rows, index_elements, update_columns=None):
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


def _merge_sql(old: str, new: str) -> str:
    """:func:`_merge_definition` in PostgreSQL: the new keys over the old ones, and the
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


def _activity_upsert_postgresql():
    """One statement that inserts new activities and merges definitions into existing
    ones on the server (no SELECT first, issue 14); an unchanged definition is not
    rewritten (the WHERE)."""
    statement = _UPSERTS.get("activities-postgresql")
    if statement is None:
        from sqlalchemy import literal_column, text
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        merged = _merge_sql("xapi_activities.definition", "excluded.definition")
        # The Core table, not the entity: an ORM-enabled INSERT goes through SQLAlchemy's
        # bulk persistence on every execute (a tenth of a single POST's CPU, issue 14).
        statement = pg_insert(Activity.__table__)
        statement = statement.on_conflict_do_update(
            index_elements=["district_id", "activity_hash"],
            set_={"definition": literal_column(merged), "updated": statement.excluded.updated},
            where=text(f"{merged} IS DISTINCT FROM xapi_activities.definition"),
        )
        _UPSERTS["activities-postgresql"] = statement
    return statement


def _store_attachments(principal, attachments):
    if not attachments:
        return
    rows = [
        {
            "district_id": principal.district_id,
            "sha2": sha2,
            "content_type": content_type,
            "content": content,
            "created_at": utcnow(),
        }
        for sha2, (content_type, content) in sorted(attachments.items())
    ]
    _upsert(Attachment, rows, ["district_id", "sha2"])


def _update_activities(principal, statements):
    definitions: dict[str, tuple[str, dict]] = {}
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
                previous = definitions.get(candidate["id"], (None, {}))[1]
                definitions[candidate["id"]] = (
                    candidate["id"],
                    _merge_definition(previous, candidate["definition"]),
                )
    if not definitions:
        return
    hashes = {sha1(i): (i, d) for i, d in definitions.values()}
    if db.session.get_bind().dialect.name == "postgresql":
        now = utcnow()
        rows = [
            {
                "district_id": principal.district_id,
                "activity_hash": key,
                "activity_id": hashes[key][0],
                "definition": hashes[key][1],
                "updated": now,
            }
            for key in sorted(hashes)  # one lock order for concurrent batches
        ]
        db.session.execute(_activity_upsert_postgresql(), rows)
        return
    current = dict(
        db.session.execute(
            select(Activity.activity_hash, Activity.definition).where(
                Activity.district_id == principal.district_id,
                Activity.activity_hash.in_(list(hashes)),
            )
        ).all()
    )
    rows = []
    for key in sorted(hashes):
        activity_id, definition = hashes[key]
        merged = _merge_definition(current.get(key) or {}, definition)
        if key in current and merged == current[key]:
            continue
        rows.append(
            {
                "district_id": principal.district_id,
                "activity_hash": key,
                "activity_id": activity_id,
                "definition": merged,
                "updated": utcnow(),
            }
        )
    if rows:
        _upsert(Activity, rows, ["district_id", "activity_hash"], ["definition", "updated"])


def _merge_definition(old: dict, new: dict) -> dict:
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


def _apply_voiding(principal, rows, voided_earlier: set[str]):
    targets = [r["object_ref"] for r in rows if r["is_voiding"] and r["object_ref"]]
    if targets:
        db.session.execute(
            update(Statement)
            .where(
                Statement.district_id == principal.district_id,
                Statement.statement_id.in_(targets),
                Statement.is_voiding.is_(False),
            )
            .values(voided=True)
        )
    # A voiding statement may have arrived before its target.
    late = [
        r["statement_id"]
        for r in rows
        if not r["is_voiding"] and r["statement_id"] in voided_earlier
    ]
    if late:
        db.session.execute(
            update(Statement)
            .where(Statement.district_id == principal.district_id, Statement.statement_id.in_(late))
            .values(voided=True)
        )
