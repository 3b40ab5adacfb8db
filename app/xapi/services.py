"""Learning Record Store: credentials, storing and querying statements, documents.

Functions take the acting :class:`Principal` (an LRS client, a launch token, or the
platform itself) explicitly and never look at the request.  They only flush; the caller
commits.  Errors are :mod:`app.errors` classes whose status is the one the xAPI spec
names (400 for every invalid statement or parameter, 409 for a conflicting id, 412 for a
failed precondition, 403/401 for credentials).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from marshmallow import ValidationError
from sqlalchemy import and_, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.common.models import utcnow
from app.errors import AppError, BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from app.extensions import db
from app.xapi import schemas
from app.xapi.models import (
    Activity,
    Attachment,
    Document,
    ForwardTarget,
    LrsClient,
    OutboxEntry,
    Statement,
    StatementRelation,
)

SCOPES = (
    "all",
    "all/read",
    "statements/write",
    "statements/read",
    "statements/read/mine",
    "state",
    "define",
    "profile",
)
SUPPORTED_VERSIONS = ("1.0.3", "2.0.0")


class PreconditionFailed(AppError):
    """The document changed since you read it (ETag mismatch)."""

    status = 412
    code = "precondition_failed"


class UnsupportedMediaType(AppError):
    status = 415
    code = "unsupported_media_type"


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


# --- principals and credentials ----------------------------------------------------------


@dataclass
class Principal:
    """Who is calling the LRS, and within which tenant."""

    district_id: int
    school_id: int | None
    scopes: set[str]
    authority: dict
    client_id: int | None = None
    last_version: str = "2.0.0"
    # Forwarding target of the district, when already known (looked up with the client).
    forward_target_id: int | None = None
    forward_target_known: bool = False
    # Launch tokens: the only actor this principal may write and read statements about.
    actor: dict | None = None
    activity_id: str | None = None
    registration: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def tenant(self) -> str:
        return f"s{self.school_id}" if self.school_id else f"d{self.district_id}"

    def can(self, *wanted: str) -> bool:
        return bool(self.scopes & ({"all"} | set(wanted)))


def _homepage() -> str:
    return current_app.config.get("XAPI_PLATFORM_URL", "http://localhost:5000").rstrip("/")


def platform_authority() -> dict:
    return {
        "objectType": "Agent",
        "name": current_app.config.get("PLATFORM_NAME", "Shuyuan"),
        "account": {"homePage": _homepage(), "name": "shuyuan"},
    }


def create_client(name: str, district, scopes: list[str], school=None) -> tuple[LrsClient, str]:
    """A new LRS client; returns it and its secret (shown once, only its hash is kept)."""
    from app.errors import Invalid

    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise Invalid(
            f"Unknown scope(s): {', '.join(unknown)}.",
            fields={"scopes": [f"choose from {', '.join(SCOPES)}"]},
        )
    if not name.strip():
        raise Invalid("A client needs a name.", fields={"name": ["required"]})
    if school is not None and school.district_id != district.id:
        raise Invalid("The school is not in that district.", fields={"school": ["not in district"]})
    key = secrets.token_hex(10)
    secret = secrets.token_urlsafe(32)
    client = LrsClient(
        name=name.strip(),
        key=key,
        secret_hash=hashlib.sha256(secret.encode()).hexdigest(),
        district_id=district.id,
        school_id=school.id if school else None,
        scopes=list(scopes),
        authority={
            "objectType": "Agent",
            "name": name.strip(),
            "account": {"homePage": f"{_homepage()}/xapi/clients", "name": key},
        },
    )
    db.session.add(client)
    db.session.flush()
    return client, secret


def revoke_client(client: LrsClient) -> None:
    client.revoked_at = utcnow()
    db.session.flush()


def principal_for_client(client: LrsClient, forward_target_id=None, known=False) -> Principal:
    return Principal(
        district_id=client.district_id,
        school_id=client.school_id,
        scopes=set(client.scopes),
        authority=client.authority,
        client_id=client.id,
        last_version=client.last_version,
        forward_target_id=forward_target_id,
        forward_target_known=known,
    )


def remember_version(principal: Principal, version: str) -> None:
    """Record the xAPI version a client speaks (only written when it changes)."""
    if principal.client_id is None or principal.last_version == version:
        return
    db.session.execute(
        update(LrsClient).where(LrsClient.id == principal.client_id).values(last_version=version)
    )
    principal.last_version = version


def authenticate(authorization: str | None) -> Principal:
    """Resolve an ``Authorization`` header (Basic key:secret, or a launch token)."""
    if not authorization:
        raise Unauthorized("Send HTTP Basic credentials of an LRS client.")
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme != "basic":
        raise Unauthorized(
            "Only HTTP Basic credentials are accepted (a launch token goes as user 'launch')."
        )
    try:
        key, _, secret = (
            base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Unauthorized("Malformed Basic credentials.") from None
    if key == "launch":
        return principal_for_launch_token(secret)
    # One query for the client and its district's forwarding target.
    row = db.session.execute(
        select(LrsClient, ForwardTarget.id)
        .outerjoin(
            ForwardTarget,
            and_(
                ForwardTarget.district_id == LrsClient.district_id, ForwardTarget.active.is_(True)
            ),
        )
        .where(LrsClient.key == key)
    ).first()
    client, target_id = row if row is not None else (None, None)
    expected = client.secret_hash if client else "0" * 64
    good = hmac.compare_digest(expected, hashlib.sha256(secret.encode()).hexdigest())
    if client is None or not good or client.revoked_at is not None:
        raise Unauthorized("Unknown or revoked LRS credentials.")
    return principal_for_client(client, target_id, known=True)


# --- actors of platform users and launch tokens ------------------------------------------


def user_district_id(user) -> int | None:
    if user.district_id:
        return user.district_id
    if user.school is not None:
        return user.school.district_id
    ids = sorted(user.member_district_ids())
    return ids[0] if ids else None


def actor_for(user) -> dict:
    """The xAPI Agent of a platform user: an account on the tenant's home page, named by
    the stable public id (never the email)."""
    from app.accounts.models import District

    district = db.session.get(District, user_district_id(user)) if user_district_id(user) else None
    home = f"{_homepage()}/d/{district.code}" if district else _homepage()
    return {"objectType": "Agent", "account": {"homePage": home, "name": user.public_id}}


def _launch_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="xapi-launch")


def issue_launch_token(
    user, activity_id: str, registration: str | None = None, ttl: int | None = None
) -> str:
    """A short-lived token for content played by ``user``: it may post statements about
    that student only (and read them and its state).  Send it as HTTP Basic with the
    user name ``launch`` and the token as password (:func:`launch_auth_header`); bearer
    tokens are the platform's API tokens and are not accepted under /xapi/."""
    district_id = user_district_id(user)
    if district_id is None:
        raise Forbidden("The user belongs to no district, so there is no LRS tenant for them.")
    if not schemas.is_iri(activity_id):
        raise BadRequest("activity_id must be an IRI.")
    ttl = ttl or current_app.config.get("XAPI_LAUNCH_TTL", 4 * 3600)
    payload = {
        "u": user.public_id,
        "d": district_id,
        "s": user.school_id,
        "a": activity_id,
        "r": registration,
        "t": int(ttl),
        "actor": actor_for(user),
    }
    return _launch_serializer().dumps(payload)


def launch_auth_header(token: str) -> str:
    return "Basic " + base64.b64encode(f"launch:{token}".encode()).decode()


def principal_for_launch_token(token: str) -> Principal:
    serializer = _launch_serializer()
    try:
        payload, issued = serializer.loads(token, return_timestamp=True)
    except BadSignature:
        raise Unauthorized("Invalid launch token.") from None
    if issued + timedelta(seconds=payload.get("t", 0)) < datetime.now(UTC):
        raise Unauthorized("The launch token has expired; relaunch the content.")
    return Principal(
        district_id=payload["d"],
        school_id=payload.get("s"),
        scopes={"statements/write", "statements/read/mine", "state"},
        authority=platform_authority(),
        actor=payload["actor"],
        activity_id=payload["a"],
        registration=payload.get("r"),
    )


def platform_principal(district_id: int, school_id: int | None = None) -> Principal:
    return Principal(
        district_id=district_id, school_id=school_id, scopes={"all"}, authority=platform_authority()
    )


# --- identity keys -------------------------------------------------------------------------


def agent_key(agent: dict) -> str:
    """The identity of an Agent or identified Group, as one string."""
    if "mbox" in agent:
        return "mbox:" + agent["mbox"].lower()
    if "mbox_sha1sum" in agent:
        return "sha1:" + agent["mbox_sha1sum"].lower()
    if "openid" in agent:
        return "openid:" + agent["openid"]
    if "account" in agent:
        return "account:" + agent["account"]["homePage"] + "|" + agent["account"]["name"]
    members = sorted(agent_key(m) for m in agent.get("member") or [])
    return "group:" + ";".join(members)


def _agents_in(agent: dict | None) -> list[str]:
    if not isinstance(agent, dict):
        return []
    keys = [agent_key(agent)]
    for member in agent.get("member") or []:
        keys.append(agent_key(member))
    return keys


def _context_activities(context: dict | None) -> list[str]:
    ids = []
    for value in ((context or {}).get("contextActivities") or {}).values():
        for activity in value if isinstance(value, list) else [value]:
            ids.append(activity["id"])
    return ids


def _relations(statement: dict) -> tuple[set[str], set[str]]:
    """(agent keys, activity ids) mentioned anywhere in a statement."""
    agents: set[str] = set()
    activities: set[str] = set()

    def visit(stmt: dict, top: bool):
        agents.update(_agents_in(stmt.get("actor")))
        obj = stmt.get("object") or {}
        kind = obj.get("objectType", "Activity")
        if kind == "Activity":
            activities.add(obj["id"])
        elif kind in ("Agent", "Group"):
            agents.update(_agents_in(obj))
        elif kind == "SubStatement":
            visit(obj, False)
        context = stmt.get("context") or {}
        agents.update(_agents_in(context.get("instructor")))
        agents.update(_agents_in(context.get("team")))
        for item in context.get("contextAgents") or []:
            agents.update(_agents_in(item.get("agent")))
        for item in context.get("contextGroups") or []:
            agents.update(_agents_in(item.get("group")))
        activities.update(_context_activities(context))
        if top:
            agents.update(_agents_in(stmt.get("authority")))

    visit(statement, True)
    return agents, activities


def _object_key(obj: dict) -> tuple[str, str, str | None]:
    """(objectType, hash, referenced statement id)."""
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        return kind, sha1(obj["id"]), None
    if kind in ("Agent", "Group"):
        return kind, sha1(agent_key(obj)), None
    if kind == "StatementRef":
        return kind, sha1(obj["id"].lower()), obj["id"].lower()
    return kind, sha1(json.dumps(obj, sort_keys=True)), None


# --- statement comparison and signatures -----------------------------------------------------


def _comparable(statement: dict) -> dict:
    """A statement reduced for "same statement?" checks: ignore what the LRS adds."""
    data = copy.deepcopy(statement)
    for key in ("authority", "stored", "version", "id"):
        data.pop(key, None)
    if "timestamp" in data:
        with contextlib.suppress(ValueError):
            data["timestamp"] = schemas.format_timestamp(
                schemas.parse_timestamp(data["timestamp"], "1.0.3")
            )
    _lower_ids(data)
    _normalise_context_activities(data)
    for holder in (data, data.get("object") if isinstance(data.get("object"), dict) else {}):
        result = holder.get("result")
        if isinstance(result, dict) and isinstance(result.get("duration"), str):
            result["duration"] = _truncate_duration(result["duration"])
    return data


def _truncate_duration(value: str) -> str:
    """Durations compare to 0.01 s precision."""
    import re

    def cut(match):
        whole, fraction = match.group(1), (match.group(2) or "")
        fraction = fraction[:2].rstrip("0")
        return f"{whole}.{fraction}S" if fraction else f"{whole}S"

    return re.sub(r"(\d+)(?:[.,](\d+))?S$", cut, value)


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


def _normalise_context_activities(statement: dict) -> None:
    """Context activity lists are always returned as arrays (single objects are wrapped)."""
    for holder in (
        statement,
        statement.get("object") if isinstance(statement.get("object"), dict) else None,
    ):
        if not holder:
            continue
        activities = (holder.get("context") or {}).get("contextActivities")
        if isinstance(activities, dict):
            for key, value in list(activities.items()):
                if not isinstance(value, list):
                    activities[key] = [value]


def _lower_ids(data):
    if isinstance(data, dict):
        obj = data.get("object")
        if (
            isinstance(obj, dict)
            and obj.get("objectType") == "StatementRef"
            and isinstance(obj.get("id"), str)
        ):
            obj["id"] = obj["id"].lower()
        for key, value in data.items():
            if key == "registration" and isinstance(value, str):
                data[key] = value.lower()
            else:
                _lower_ids(value)
    elif isinstance(data, list):
        for item in data:
            _lower_ids(item)


def same_statement(new: dict, stored: dict) -> bool:
    a, b = _comparable(new), _comparable(stored)
    if "timestamp" not in new:
        b.pop("timestamp", None)
    return a == b


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def verify_signature(statement: dict, jws: bytes, index: int) -> None:
    """Check a signed statement's JWS (xAPI 'Signed Statements')."""
    where = f"statement[{index}].attachments"
    try:
        text = jws.decode("ascii").strip()
        header_b64, payload_b64, signature_b64 = text.split(".")
        header = json.loads(_b64url(header_b64))
        payload = json.loads(_b64url(payload_b64))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadRequest(
            f"{where}: the signature is not a JWS in compact serialization.",
            fields={where: ["malformed JWS"]},
        ) from None
    if not isinstance(header, dict) or header.get("alg") not in ("RS256", "RS384", "RS512"):
        raise BadRequest(
            f"{where}: the JWS algorithm must be RS256, RS384 or RS512.",
            fields={where: ["bad alg"]},
        )
    if not isinstance(payload, dict):
        raise BadRequest(
            f"{where}: the JWS payload is not a statement.", fields={where: ["bad payload"]}
        )
    original = copy.deepcopy(statement)
    original["attachments"] = [
        a for a in original.get("attachments", []) if a.get("usageType") != schemas.SIGNATURE_USAGE
    ]
    if not original["attachments"]:
        original.pop("attachments")
    payload_copy = copy.deepcopy(payload)
    if isinstance(payload_copy.get("attachments"), list):
        payload_copy["attachments"] = [
            a
            for a in payload_copy["attachments"]
            if not isinstance(a, dict) or a.get("usageType") != schemas.SIGNATURE_USAGE
        ]
        if not payload_copy["attachments"]:
            payload_copy.pop("attachments")
    if (
        "id" in payload_copy
        and "id" in original
        and str(payload_copy["id"]).lower() != str(original["id"]).lower()
    ):
        raise BadRequest(
            f"{where}: the signed payload has another statement id.",
            fields={where: ["payload differs"]},
        )
    if not same_statement(payload_copy, original):
        raise BadRequest(
            f"{where}: the JWS payload does not match the statement.",
            fields={where: ["payload differs"]},
        )
    certificates = header.get("x5c")
    if certificates:
        try:
            import jwt
            from cryptography import x509

            cert = x509.load_der_x509_certificate(base64.b64decode(certificates[0]))
            jwt.api_jws.PyJWS().decode_complete(
                text, key=cert.public_key(), algorithms=[header["alg"]]
            )
        except Exception:
            raise BadRequest(
                f"{where}: the JWS signature does not verify with its x5c certificate.",
                fields={where: ["bad signature"]},
            ) from None


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
) -> list[str]:
    """Validate and store statements atomically; return their ids.

    ``attachments`` maps SHA-2 to (content type, bytes) for multipart requests.  Nothing is
    stored unless every statement is valid.
    """
    if not principal.can("statements/write"):
        raise Forbidden("This client may not write statements.")
    if not isinstance(statements, list):
        raise BadRequest("The body must be a statement object or an array of statements.")
    max_batch = current_app.config.get("XAPI_MAX_BATCH", 1000)
    if len(statements) > max_batch:
        from app.errors import PayloadTooLarge

        raise PayloadTooLarge(f"At most {max_batch} statements per request.")
    attachments = attachments or {}
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
            schemas.validate_statement(statement, version)
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

    try:
        return _insert(principal, statements, ids, version, attachments)
    except IntegrityError:
        # Another request stored one of these ids between our check and our insert.
        db.session.rollback()
        return _insert(principal, statements, ids, version, attachments)


def _insert(principal, statements, ids, version, attachments) -> list[str]:
    existing: dict[str, dict] = {}
    voided_earlier: set[str] = set()  # ids a voiding statement stored before them targets
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start : chunk_start + 500]
        found = db.session.execute(
            select(
                Statement.statement_id, Statement.full, Statement.is_voiding, Statement.object_ref
            ).where(
                Statement.district_id == principal.district_id,
                or_(
                    Statement.statement_id.in_(chunk),
                    and_(Statement.is_voiding.is_(True), Statement.object_ref.in_(chunk)),
                ),
            )
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
        object_type, object_hash, object_ref = _object_key(obj)
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
    rows.sort(key=lambda r: r["statement_id"])  # one lock order for concurrent batches
    pks = db.session.execute(
        insert(Statement.__table__).returning(Statement.id, Statement.statement_id), rows
    ).all()
    pk_by_id = {sid: pk for pk, sid in pks}
    relations = []
    for full in new_statements:
        agents, activities = _relations(full)
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
    if relations:
        db.session.execute(insert(StatementRelation.__table__), relations)
    _store_attachments(principal, attachments)
    _update_activities(principal, new_statements)
    _apply_voiding(principal, rows, voided_earlier)
    _queue_forwarding(principal, [pk_by_id[s] for s in ids if s in pk_by_id])
    db.session.flush()
    return ids


def _upsert(model, rows, index_elements, update_columns=None):
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(model).values(rows)
    if update_columns:
        statement = statement.on_conflict_do_update(
            index_elements=index_elements, set_={c: statement.excluded[c] for c in update_columns}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=index_elements)
    db.session.execute(statement)


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


# --- reading statements ---------------------------------------------------------------------


STATEMENT_QUERY_PARAMS = {
    "statementId",
    "voidedStatementId",
    "agent",
    "verb",
    "activity",
    "registration",
    "related_activities",
    "related_agents",
    "since",
    "until",
    "limit",
    "format",
    "attachments",
    "ascending",
    "more",
}


def _tenant_conditions(principal: Principal, table=Statement):
    conditions = [table.district_id == principal.district_id]
    if principal.school_id:
        conditions.append(table.school_id == principal.school_id)
    if not principal.can("statements/read", "all/read"):
        if principal.actor is not None:
            conditions.append(table.actor_hash == sha1(agent_key(principal.actor)))
        elif principal.can("statements/read/mine"):
            conditions.append(table.client_id == principal.client_id)
        else:
            raise Forbidden("This client may not read statements.")
    return conditions


def get_statement(principal: Principal, statement_id: str, voided: bool = False) -> Statement:
    if not schemas.is_uuid(statement_id):
        raise BadRequest("statementId must be a UUID.", fields={"statementId": ["not a UUID"]})
    row = db.session.execute(
        select(Statement).where(
            *_tenant_conditions(principal), Statement.statement_id == statement_id.lower()
        )
    ).scalar_one_or_none()
    if row is None or row.voided != voided:
        if row is not None and voided:
            raise NotFound("That statement is not voided; ask for it with statementId.")
        if row is not None:
            raise NotFound("That statement is voided; ask for it with voidedStatementId.")
        raise NotFound("No statement with that id.")
    return row


@dataclass
class StatementQuery:
    agent: dict | None = None
    verb: str | None = None
    activity: str | None = None
    registration: str | None = None
    related_activities: bool = False
    related_agents: bool = False
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 0
    format: str = "exact"
    attachments: bool = False
    ascending: bool = False
    after: tuple[datetime, int] | None = None  # keyset cursor of the `more` link

    def to_token(self) -> dict:
        return {
            "agent": self.agent,
            "verb": self.verb,
            "activity": self.activity,
            "registration": self.registration,
            "ra": self.related_activities,
            "rg": self.related_agents,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "limit": self.limit,
            "format": self.format,
            "attachments": self.attachments,
            "asc": self.ascending,
        }

    @classmethod
    def from_token(cls, data: dict) -> StatementQuery:
        return cls(
            agent=data["agent"],
            verb=data["verb"],
            activity=data["activity"],
            registration=data["registration"],
            related_activities=data["ra"],
            related_agents=data["rg"],
            since=datetime.fromisoformat(data["since"]) if data["since"] else None,
            until=datetime.fromisoformat(data["until"]) if data["until"] else None,
            limit=data["limit"],
            format=data["format"],
            attachments=data["attachments"],
            ascending=data["asc"],
            after=(datetime.fromisoformat(data["after"][0]), data["after"][1]),
        )


def _bool_param(params, name) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadRequest(f"{name} must be true or false.", fields={name: ["not a boolean"]})


def parse_agent_param(value: str, name: str = "agent") -> dict:
    try:
        agent = json.loads(value)
    except ValueError:
        raise BadRequest(
            f"{name} must be a JSON Agent object.", fields={name: ["not JSON"]}
        ) from None
    try:
        schemas.actor_schema(agent).load(agent)
    except ValidationError as exc:
        flat = schemas.flatten_errors(exc.messages, name)
        raise BadRequest(f"Invalid {name}: " + schemas.describe_errors(flat), fields=flat) from None
    return agent


def parse_query(params: dict, version: str) -> StatementQuery:
    unknown = set(params) - STATEMENT_QUERY_PARAMS
    if unknown:
        raise BadRequest(
            f"Unknown query parameter(s): {', '.join(sorted(unknown))}.",
            fields={u: ["unknown parameter"] for u in unknown},
        )
    query = StatementQuery()
    if "agent" in params:
        query.agent = parse_agent_param(params["agent"])
    if "verb" in params:
        if not schemas.is_iri(params["verb"]):
            raise BadRequest("verb must be an IRI.", fields={"verb": ["not an IRI"]})
        query.verb = params["verb"]
    if "activity" in params:
        if not schemas.is_iri(params["activity"]):
            raise BadRequest("activity must be an IRI.", fields={"activity": ["not an IRI"]})
        query.activity = params["activity"]
    if "registration" in params:
        if not schemas.is_uuid(params["registration"]):
            raise BadRequest(
                "registration must be a UUID.", fields={"registration": ["not a UUID"]}
            )
        query.registration = params["registration"].lower()
    query.related_activities = _bool_param(params, "related_activities")
    query.related_agents = _bool_param(params, "related_agents")
    query.attachments = _bool_param(params, "attachments")
    query.ascending = _bool_param(params, "ascending")
    for name in ("since", "until"):
        if name in params:
            try:
                moment = schemas.parse_timestamp(params[name], "1.0.3").replace(tzinfo=None)
            except ValueError as exc:
                raise BadRequest(f"{name} {exc}.", fields={name: [str(exc)]}) from None
            setattr(query, name, moment)
    if "limit" in params:
        try:
            query.limit = int(params["limit"])
            if query.limit < 0:
                raise ValueError
        except ValueError:
            raise BadRequest(
                "limit must be a non-negative integer.",
                fields={"limit": ["not a non-negative integer"]},
            ) from None
    fmt = params.get("format", "exact")
    if fmt not in ("ids", "exact", "canonical"):
        raise BadRequest(
            "format must be ids, exact or canonical.", fields={"format": ["unknown format"]}
        )
    query.format = fmt
    return query


def _more_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="xapi-more")


def query_from_more(token: str) -> StatementQuery:
    try:
        return StatementQuery.from_token(_more_serializer().loads(token))
    except (BadSignature, KeyError, TypeError, ValueError):
        raise BadRequest("The more link is invalid.", fields={"more": ["invalid"]}) from None


def _direct_conditions(principal: Principal, query: StatementQuery, table) -> list:
    conditions = []
    if query.agent is not None:
        key = sha1(agent_key(query.agent))
        if query.related_agents:
            conditions.append(
                table.id.in_(
                    select(StatementRelation.statement_pk).where(
                        StatementRelation.district_id == principal.district_id,
                        StatementRelation.key_hash == key,
                        StatementRelation.kind == "agent",
                    )
                )
            )
        else:
            conditions.append(
                or_(
                    table.actor_hash == key,
                    and_(table.object_hash == key, table.object_type.in_(("Agent", "Group"))),
                )
            )
    if query.verb is not None:
        conditions.append(table.verb_hash == sha1(query.verb))
    if query.activity is not None:
        key = sha1(query.activity)
        if query.related_activities:
            conditions.append(
                table.id.in_(
                    select(StatementRelation.statement_pk).where(
                        StatementRelation.district_id == principal.district_id,
                        StatementRelation.key_hash == key,
                        StatementRelation.kind == "activity",
                    )
                )
            )
        else:
            conditions.append(and_(table.object_hash == key, table.object_type == "Activity"))
    if query.registration is not None:
        conditions.append(table.registration == query.registration)
    return conditions


def _page_conditions(query: StatementQuery, table=Statement) -> list:
    conditions = []
    if query.since is not None:
        conditions.append(table.stored > query.since)
    if query.until is not None:
        conditions.append(table.stored <= query.until)
    if query.after is not None:
        stored, pk = query.after
        if query.ascending:
            conditions.append(
                or_(table.stored > stored, and_(table.stored == stored, table.id > pk))
            )
        else:
            conditions.append(
                or_(table.stored < stored, and_(table.stored == stored, table.id < pk))
            )
    return conditions


def query_statements(
    principal: Principal, query: StatementQuery
) -> tuple[list[Statement], str | None]:
    """One page of statements matching ``query``, and the `more` token if there are more."""
    max_limit = current_app.config.get("XAPI_MAX_LIMIT", 500)
    limit = min(query.limit or max_limit, max_limit)
    order = (
        (Statement.stored.asc(), Statement.id.asc())
        if query.ascending
        else (Statement.stored.desc(), Statement.id.desc())
    )
    tenant = _tenant_conditions(principal)
    direct = _direct_conditions(principal, query, Statement)
    base = tenant + [Statement.voided.is_(False)] + _page_conditions(query)
    rows = list(
        db.session.execute(
            select(Statement).where(*base, *direct).order_by(*order).limit(limit + 1)
        ).scalars()
    )
    if direct:
        # Statements targeting a matching statement (StatementRef) match too.
        target = db.aliased(Statement)
        referring = (
            select(Statement)
            .where(
                *base,
                Statement.object_type == "StatementRef",
                exists(
                    select(target.id).where(
                        target.district_id == Statement.district_id,
                        target.statement_id == Statement.object_ref,
                        *_direct_conditions(principal, query, target),
                    )
                ),
            )
            .order_by(*order)
            .limit(limit + 1)
        )
        extra = [
            r for r in db.session.execute(referring).scalars() if r.id not in {x.id for x in rows}
        ]
        if extra:
            rows = sorted(rows + extra, key=lambda r: (r.stored, r.id), reverse=not query.ascending)
    more = None
    if len(rows) > limit:
        rows = rows[:limit]
        token = query.to_token()
        token["after"] = [rows[-1].stored.isoformat(), rows[-1].id]
        more = _more_serializer().dumps(token)
    return rows, more


# --- output formats --------------------------------------------------------------------------


def _ids_agent(agent: dict) -> dict:
    out = {"objectType": agent.get("objectType", "Agent")}
    for key in schemas.IFIS:
        if key in agent:
            out[key] = agent[key]
            break
    else:
        if "member" in agent:
            out["member"] = [_ids_agent(m) for m in agent["member"]]
    return out


def _format_ids(statement: dict, top: bool = True) -> dict:
    out = dict(statement)
    out["actor"] = _ids_agent(statement["actor"])
    out["verb"] = {"id": statement["verb"]["id"]}
    obj = statement["object"]
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        out["object"] = {"id": obj["id"]}
    elif kind in ("Agent", "Group"):
        out["object"] = _ids_agent(obj)
    elif kind == "SubStatement":
        out["object"] = _format_ids(obj, top=False)
    if "context" in statement:
        context = dict(statement["context"])
        for key in ("instructor", "team"):
            if key in context:
                context[key] = _ids_agent(context[key])
        if "contextActivities" in context:
            context["contextActivities"] = {
                k: [{"id": a["id"]} for a in (v if isinstance(v, list) else [v])]
                for k, v in context["contextActivities"].items()
            }
        out["context"] = context
    if top and "authority" in statement:
        out["authority"] = _ids_agent(statement["authority"])
    return out


def _pick_language(language_map: dict, languages: list[str]) -> dict:
    if not isinstance(language_map, dict) or not language_map:
        return language_map
    lowered = {k.lower(): k for k in language_map}
    for lang in languages:
        lang = lang.lower()
        if lang in lowered:
            key = lowered[lang]
            return {key: language_map[key]}
        for candidate_lower, key in lowered.items():
            if candidate_lower.split("-")[0] == lang.split("-")[0]:
                return {key: language_map[key]}
    key = "und" if "und" in language_map else next(iter(language_map))
    return {key: language_map[key]}


def _format_canonical(statement: dict, languages: list[str]) -> dict:
    out = copy.deepcopy(statement)

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if (
                    key in ("display", "name", "description")
                    and isinstance(value, dict)
                    and all(isinstance(v, str) for v in value.values())
                ):
                    node[key] = _pick_language(value, languages)
                elif key != "extensions":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(out)
    return out


def render_statement(row_full: dict, fmt: str, languages: list[str] | None = None) -> dict:
    if fmt == "ids":
        return _format_ids(row_full)
    if fmt == "canonical":
        return _format_canonical(row_full, languages or [])
    return row_full


def consistent_through() -> str:
    return schemas.format_timestamp(utcnow())


def attachments_for(principal: Principal, rows: list[Statement]) -> list[Attachment]:
    hashes = {
        a["sha2"]
        for row in rows
        for a in (row.full.get("attachments") or [])
        if row.has_attachments
    }
    if not hashes:
        return []
    return list(
        db.session.execute(
            select(Attachment).where(
                Attachment.district_id == principal.district_id, Attachment.sha2.in_(sorted(hashes))
            )
        ).scalars()
    )


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


def _json_object(content: bytes):
    try:
        value = json.loads(content.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
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


# --- activities and agents ---------------------------------------------------------------------


def get_activity(principal: Principal, activity_id: str) -> dict:
    row = db.session.execute(
        select(Activity).where(
            Activity.district_id == principal.district_id,
            Activity.activity_hash == sha1(activity_id),
        )
    ).scalar_one_or_none()
    activity = {"objectType": "Activity", "id": activity_id}
    if row is not None and row.definition:
        activity["definition"] = row.definition
    return activity


def person_for(agent: dict) -> dict:
    person: dict = {"objectType": "Person"}
    if "name" in agent:
        person["name"] = [agent["name"]]
    for key in schemas.IFIS:
        if key in agent:
            person[key] = [agent[key]]
    return person


# --- forwarding ----------------------------------------------------------------------------------


def _queue_forwarding(principal: Principal, statement_pks: list[int]) -> None:
    if not statement_pks:
        return
    if principal.forward_target_known:
        target_id = principal.forward_target_id
    else:
        target_id = _forward_target_id(principal.district_id)
    if target_id is None:
        return
    db.session.execute(
        insert(OutboxEntry.__table__),
        [
            {
                "target_id": target_id,
                "statement_pk": pk,
                "attempts": 0,
                "next_attempt_at": utcnow(),
                "created_at": utcnow(),
            }
            for pk in statement_pks
        ],
    )
    db.session.info["xapi_forward_pending"] = True


def _forward_target_id(district_id: int) -> int | None:
    return db.session.execute(
        select(ForwardTarget.id).where(
            ForwardTarget.district_id == district_id, ForwardTarget.active.is_(True)
        )
    ).scalar_one_or_none()


def set_forward_target(
    district,
    endpoint: str,
    username: str = "",
    password: str = "",
    version: str = "1.0.3",
    active: bool = True,
) -> ForwardTarget:
    if not endpoint.startswith(("http://", "https://")):
        raise BadRequest("The forwarding endpoint must be an http(s) URL.")
    target = db.session.execute(
        select(ForwardTarget).filter_by(district_id=district.id)
    ).scalar_one_or_none()
    if target is None:
        target = ForwardTarget(district_id=district.id)
        db.session.add(target)
    target.endpoint = endpoint.rstrip("/") + "/"
    target.username, target.password, target.version, target.active = (
        username,
        password,
        version,
        active,
    )
    db.session.flush()
    return target


def backoff_seconds(attempts: int) -> int:
    """30 s, 1 min, 2 min, ... capped at 1 hour."""
    return min(30 * 2 ** max(attempts - 1, 0), 3600)


def forward_due(batch_size: int = 200, now: datetime | None = None, http=None) -> dict:
    """Send due outbox entries to their external LRS; failures are retried later with
    backoff.  Entries are removed only once the external LRS accepted them."""
    import requests

    http = http or requests.Session()
    now = now or utcnow()
    sent = failed = 0
    targets = {t.id: t for t in db.session.execute(select(ForwardTarget)).scalars()}
    for target_id, target in targets.items():
        if not target.active:
            continue
        entries = list(
            db.session.execute(
                select(OutboxEntry)
                .where(OutboxEntry.target_id == target_id, OutboxEntry.next_attempt_at <= now)
                .order_by(OutboxEntry.id)
                .limit(batch_size)
            ).scalars()
        )
        if not entries:
            continue
        fulls = dict(
            db.session.execute(
                select(Statement.id, Statement.full).where(
                    Statement.id.in_([e.statement_pk for e in entries])
                )
            ).all()
        )
        payload = []
        for entry in entries:
            statement = dict(fulls[entry.statement_pk])
            statement.pop("stored", None)
            statement.pop("authority", None)
            if target.version.startswith("1"):
                statement.pop("version", None)
            payload.append(statement)
        error = None
        try:
            response = http.post(
                target.endpoint + "statements",
                json=payload,
                timeout=20,
                auth=(target.username, target.password) if target.username else None,
                headers={"X-Experience-API-Version": target.version},
            )
            if response.status_code not in (200, 204):
                error = f"HTTP {response.status_code}: {response.text[:300]}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        if error is None:
            for entry in entries:
                db.session.delete(entry)
            sent += len(entries)
        else:
            for entry in entries:
                entry.attempts += 1
                entry.last_error = error
                entry.next_attempt_at = now + timedelta(seconds=backoff_seconds(entry.attempts))
            failed += len(entries)
        db.session.flush()
    return {"sent": sent, "failed": failed}


def after_store() -> None:
    """Call after committing stored statements: start forwarding what was queued."""
    if db.session.info.pop("xapi_forward_pending", False):
        from app.jobs import enqueue

        try:
            enqueue("app.xapi.services:forward_job")
        except Exception:  # the outbox keeps the statements; `flask xapi forward` retries
            import logging

            logging.getLogger(__name__).exception("could not enqueue xAPI forwarding")


def forward_job() -> dict:
    """Job entry point (``enqueue("app.xapi.services:forward_job")``)."""
    return forward_due()


def outbox_size() -> int:
    from sqlalchemy import func

    return db.session.execute(select(func.count()).select_from(OutboxEntry)).scalar_one()


# --- managing clients as a platform user (API) -------------------------------------------------


def _require_admin_of(user, district_id: int) -> None:
    if user is None:
        raise Unauthorized("Log in or send a bearer token.")
    if not (user.is_platform_admin or user.is_district_admin(district_id)):
        raise Forbidden("Only the district's administrators manage its LRS clients.")


def list_clients(user) -> list[LrsClient]:
    if user is None:
        raise Unauthorized("Log in or send a bearer token.")
    statement = select(LrsClient).order_by(LrsClient.id)
    if not user.is_platform_admin:
        districts = user.admin_district_ids()
        if not districts:
            raise Forbidden("Only district administrators manage LRS clients.")
        statement = statement.where(LrsClient.district_id.in_(sorted(districts)))
    return list(db.session.execute(statement).scalars())


def create_client_as(user, district_id: int, name: str, scopes: list[str], school_id=None):
    from app.accounts.models import District, School

    _require_admin_of(user, district_id)
    district = db.session.get(District, district_id)
    if district is None:
        raise NotFound("District not found.")
    school = None
    if school_id is not None:
        school = db.session.get(School, school_id)
        if school is None:
            raise NotFound("School not found.")
    return create_client(name, district, scopes, school=school)


def revoke_client_as(user, client_id: int) -> LrsClient:
    client = db.session.get(LrsClient, client_id)
    if client is None:
        raise NotFound("No such LRS client.")
    _require_admin_of(user, client.district_id)
    revoke_client(client)
    return client
