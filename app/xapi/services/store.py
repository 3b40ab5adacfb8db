"""Storing statements: validation of a batch, idempotent insert with conflict detection,
relations, attachments, activity definitions, voiding and the forwarding outbox."""

from __future__ import annotations

import contextlib
import functools
import uuid
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from app.common.models import utcnow
from app.common.transaction import savepoint
from app.errors import BadRequest, Conflict, Forbidden, PayloadTooLarge
from app.extensions import db
from app.xapi import schemas
from app.xapi.models import Attachment, Statement, StatementRelation
from app.xapi.services import activities
from app.xapi.services import rows as rows_sql
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
_RETRY_SQLSTATES = {"40P01", "40001", "23505"}  # deadlock, serialization failure, unique
try:
    from psycopg import Error as _PsycopgError

    _DRIVER_ERRORS: tuple = (_PsycopgError,)
except ImportError:  # SQLite-only installations
    _DRIVER_ERRORS = ()


class _Retry(Exception):
    """The savepoint was rolled back: look again and insert again."""


def _insert_with_retries(principal, statements, ids, version, attachments) -> list[str]:
    """Insert in a savepoint; when a concurrent request stored some of the same ids
    between our check and our insert (unique violation), roll back only the savepoint
    and look again: those ids are now existing statements, compared like any re-post.
    Each retry sees more of the other requests' rows, so this ends; if it does not
    within ``INSERT_ATTEMPTS``, the client gets 409 and may simply send the batch again
    (nothing of it was stored)."""
    postgresql = db.session.connection().dialect.name == "postgresql"
    for _attempt in range(INSERT_ATTEMPTS):
        try:
            if postgresql:
                return _insert_postgresql(principal, statements, ids, version, attachments)
            with savepoint():
                return _insert_sqlite(principal, statements, ids, version, attachments)
        except _Retry:
            continue
        except IntegrityError as exc:
            if not _is_unique_violation(exc):
                raise
            continue
        except OperationalError as exc:
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


def _retriable(exc: Exception) -> bool:
    """A unique violation, deadlock or serialization failure, raised by the driver's
    cursor or through SQLAlchemy."""
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    return getattr(error, "sqlstate", None) in _RETRY_SQLSTATES


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


def _sort_found(found, chunk_ids, existing: dict, voided_earlier: set) -> None:
    for sid, full, is_voiding, object_ref in found:
        if sid in chunk_ids:
            existing[sid] = full
        if is_voiding and object_ref in chunk_ids:
            voided_earlier.add(object_ref)


def _insert_sqlite(principal, statements, ids, version, attachments) -> list[str]:
    existing: dict[str, dict] = {}
    voided_earlier: set[str] = set()  # ids a voiding statement stored before them targets
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start : chunk_start + 500]
        found = db.session.execute(
            _existing_query(), {"district": principal.district_id, "ids": chunk}
        )
        _sort_found(found, set(chunk), existing, voided_earlier)
    rows, new_statements = _rows(principal, statements, ids, version, existing)
    if not rows:
        return ids
    pks = db.session.execute(
        insert(Statement.__table__).returning(Statement.id, Statement.statement_id), rows
    ).all()
    pk_by_id = {sid: pk for pk, sid in pks}
    relations = [
        {
            "statement_pk": pk_by_id[sid],
            "district_id": principal.district_id,
            "kind": kind,
            "key_hash": key,
        }
        for sid, kind, key in _relations(new_statements)
    ]
    if relations:
        db.session.execute(insert(StatementRelation.__table__), relations)
    activities.update_activities(principal.district_id, new_statements)
    return _after_insert(principal, rows, ids, pk_by_id, attachments, voided_earlier)


def _insert_postgresql(principal, statements, ids, version, attachments) -> list[str]:
    """The insert on PostgreSQL, on the driver's cursor: ``SAVEPOINT`` and the look for
    existing ids in one round trip, then one statement for a single statement (row,
    relations, activity definitions) or key allocation and two ``COPY``s for a batch.
    The savepoint is not released (RELEASE would be one more round trip; the commit ends
    it).  A unique violation or deadlock rolls back to it and raises :class:`_Retry`."""
    cursor = db.session.connection().connection.driver_connection.cursor()
    try:
        existing: dict[str, dict] = {}
        voided_earlier: set[str] = set()
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            found = rows_sql.savepoint_and_look(cursor, principal.district_id, chunk)
            _sort_found(found, set(chunk), existing, voided_earlier)
        try:
            rows, new_statements = _rows(principal, statements, ids, version, existing)
            if not rows:
                return ids
            relations = _relations(new_statements)
            if len(rows) == 1:
                upserts = activities.postgresql_rows(
                    principal.district_id, activities.definitions(new_statements)
                )
                pk = rows_sql.insert_one(
                    cursor, rows[0], [(kind, key) for _sid, kind, key in relations], upserts
                )
                pk_by_id = {rows[0]["statement_id"]: pk}
            else:
                pk_by_id = rows_sql.copy_statements(cursor, rows)
                rows_sql.copy_relations(
                    cursor,
                    [
                        (pk_by_id[sid], principal.district_id, kind, key)
                        for sid, kind, key in relations
                    ],
                )
                activities.update_activities(principal.district_id, new_statements)
            return _after_insert(principal, rows, ids, pk_by_id, attachments, voided_earlier)
        except BaseException as exc:
            # Undo what the block did, as a nested transaction would (the caller's
            # transaction stays usable), and look again after a lost race.
            with contextlib.suppress(Exception):
                rows_sql.rollback_to_savepoint(cursor)
            if isinstance(exc, (DBAPIError, *_DRIVER_ERRORS)) and _retriable(exc):
                raise _Retry from None
            raise
    finally:
        cursor.close()


def _rows(principal, statements, ids, version, existing) -> tuple[list[dict], list[dict]]:
    """The table rows of the statements not stored yet, and those statements as stored
    (409 for an id stored with different content)."""
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
    return rows, new_statements


def _relations(new_statements) -> list[tuple[str, str, str]]:
    """``(statement id, kind, key hash)`` of every agent and activity each statement
    mentions."""
    out = []
    for full in new_statements:
        agents, activity_ids = statement_relations(full)
        out.extend((full["id"], "agent", sha1(k)) for k in agents)
        out.extend((full["id"], "activity", sha1(a)) for a in activity_ids)
    return out


def _after_insert(principal, rows, ids, pk_by_id, attachments, voided_earlier) -> list[str]:
    _store_attachments(principal, attachments)
    _apply_voiding(principal, rows, voided_earlier)
    queue_forwarding(principal, [pk_by_id[s] for s in ids if s in pk_by_id])
    db.session.flush()
    return ids


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
    activities.upsert(Attachment, rows, ["district_id", "sha2"])


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
