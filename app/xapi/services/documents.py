"""State, Activity Profile and Agent Profile documents, with ETag preconditions and
JSON merging."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from app.common.models import utcnow
from app.errors import AppError, BadRequest, Conflict, Forbidden, NotFound
from app.extensions import db
from app.xapi import jsontext
from app.xapi.models import Document
from app.xapi.services.auth import Principal
from app.xapi.services.identity import agent_key, sha1


class PreconditionFailed(AppError):
    """The document changed since you read it (ETag mismatch)."""

    status = 412
    code = "precondition_failed"


# --- documents ---------------------------------------------------------------------------------


@dataclass
class DocumentScope:
    kind: str
    activity_id: str | None = None
    agent: dict | None = None
    registration: str | None = None

    def conditions(self, principal: Principal) -> list:
        return [
            Document.tenant == principal.tenant,
            Document.kind == self.kind,
            Document.activity_hash == (sha1(self.activity_id) if self.activity_id else ""),
            Document.agent_hash == (sha1(agent_key(self.agent)) if self.agent else ""),
            Document.registration == (self.registration or ""),
        ]


def _check_document_scope(principal: Principal, scope: DocumentScope, write: bool) -> None:
    needed = "state" if scope.kind == "state" else "profile"
    if not (principal.can(needed) or (not write and principal.can("all/read"))):
        raise Forbidden(
            f"This client may not {'write' if write else 'read'} "
            f"{scope.kind.replace('_', ' ')} documents."
        )
    if (
        principal.actor is not None
        and scope.kind == "state"
        and scope.agent is not None
        and agent_key(scope.agent) != agent_key(principal.actor)
    ):
        raise Forbidden("A launch token may only use its own student's state.")


def get_document(principal: Principal, scope: DocumentScope, doc_id: str) -> Document:
    _check_document_scope(principal, scope, write=False)
    document = db.session.execute(
        select(Document).where(*scope.conditions(principal), Document.doc_id == doc_id)
    ).scalar_one_or_none()
    if document is None:
        raise NotFound("No such document.")
    return document


def list_document_ids(
    principal: Principal, scope: DocumentScope, since: datetime | None
) -> list[str]:
    _check_document_scope(principal, scope, write=False)
    statement = select(Document.doc_id).where(*scope.conditions(principal))
    if since is not None:
        statement = statement.where(Document.updated > since)
    return list(db.session.execute(statement.order_by(Document.doc_id)).scalars())


def _etag(content: bytes) -> str:
    return '"' + hashlib.sha1(content, usedforsecurity=False).hexdigest() + '"'


def _check_preconditions(
    existing: Document | None, if_match: str | None, if_none_match: str | None
) -> None:
    if if_match is not None:
        tags = [t.strip() for t in if_match.split(",")]
        if existing is None or (
            "*" not in tags and existing.etag not in tags and existing.etag.strip('"') not in tags
        ):
            raise PreconditionFailed("If-Match does not match the document's current ETag.")
    if if_none_match is not None and existing is not None:
        tags = [t.strip() for t in if_none_match.split(",")]
        if "*" in tags or existing.etag in tags:
            raise PreconditionFailed("If-None-Match: the document already exists.")


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def save_document(
    principal: Principal,
    scope: DocumentScope,
    doc_id: str,
    content: bytes,
    content_type: str,
    merge: bool,
    if_match: str | None,
    if_none_match: str | None,
    require_precondition: bool,
    require_precondition_new: bool = False,
) -> Document:
    """PUT (replace) or POST (merge JSON objects) a document."""
    _check_document_scope(principal, scope, write=True)
    if _is_json(content_type):
        _refuse_non_standard_json(content)
    existing = db.session.execute(
        select(Document)
        .where(*scope.conditions(principal), Document.doc_id == doc_id)
        .with_for_update()
    ).scalar_one_or_none()
    _check_preconditions(existing, if_match, if_none_match)
    if (
        not merge
        and require_precondition
        and existing is not None
        and if_match is None
        and if_none_match is None
    ):
        raise Conflict(
            "The document exists: send If-Match with its ETag (or If-None-Match: *) to change it."
        )
    if (
        not merge
        and require_precondition_new
        and existing is None
        and if_match is None
        and if_none_match is None
    ):
        raise BadRequest(
            "Send If-None-Match: * to create this document (or If-Match to replace one).",
            fields={"If-None-Match": ["missing"]},
        )
    if merge:
        if not _is_json(content_type) and existing is not None:
            raise BadRequest("POST merges JSON documents: send Content-Type application/json.")
        new_value = _json_object(content) if _is_json(content_type) else None
        if existing is not None:
            if new_value is None:
                raise BadRequest("POST merges JSON objects: the body is not a JSON object.")
            if not _is_json(existing.content_type):
                raise BadRequest(
                    "The stored document is not JSON, so it cannot be merged; use PUT."
                )
            old_value = _json_object(existing.content)
            if old_value is None:
                raise BadRequest(
                    "The stored document is not a JSON object, so it cannot be merged; use PUT."
                )
            old_value.update(new_value)
            content = json.dumps(old_value, ensure_ascii=False).encode("utf-8")
            content_type = "application/json"
        elif _is_json(content_type) and new_value is None:
            raise BadRequest("POST merges JSON objects: the body is not a JSON object.")
    now = utcnow()
    if existing is None:
        existing = Document(
            tenant=principal.tenant,
            kind=scope.kind,
            activity_hash=sha1(scope.activity_id) if scope.activity_id else "",
            agent_hash=sha1(agent_key(scope.agent)) if scope.agent else "",
            registration=scope.registration or "",
            doc_id=doc_id,
        )
        db.session.add(existing)
    existing.content = content
    existing.content_type = content_type or "application/octet-stream"
    existing.etag = _etag(content)
    existing.updated = now
    db.session.flush()
    return existing


def _refuse_non_standard_json(content: bytes) -> None:
    """A JSON document may not carry NaN/Infinity, lone surrogates or absurd nesting:
    stored, it would be served (and merged into) as invalid JSON.  A body that is not
    JSON at all is kept as the opaque bytes the client sent (PUT), as before."""
    try:
        jsontext.loads(content, current_app.config["XAPI_MAX_JSON_DEPTH"])
    except jsontext.JsonRejected as exc:
        if exc.kind != "syntax":
            raise jsontext.as_bad_request(
                exc, "body", current_app.config["XAPI_MAX_JSON_DEPTH"]
            ) from None


def _json_object(content: bytes):
    try:
        value = jsontext.loads(content)
    except jsontext.JsonRejected:
        return None
    return value if isinstance(value, dict) else None


def delete_documents(
    principal: Principal,
    scope: DocumentScope,
    doc_id: str | None,
    if_match: str | None,
    if_none_match: str | None,
) -> None:
    _check_document_scope(principal, scope, write=True)
    statement = select(Document).where(*scope.conditions(principal))
    if doc_id is not None:
        statement = statement.where(Document.doc_id == doc_id)
    documents = list(db.session.execute(statement).scalars())
    if doc_id is not None:
        _check_preconditions(documents[0] if documents else None, if_match, if_none_match)
    for document in documents:
        db.session.delete(document)
    db.session.flush()
