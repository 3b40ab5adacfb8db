"""LRS credentials: clients (HTTP Basic key/secret), launch tokens for content played by
one student, and the :class:`Principal` every service function receives."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import and_, bindparam, select, update

from app.accounts.models import District, School
from app.common.models import utcnow
from app.errors import BadRequest, Forbidden, Invalid, NotFound, Unauthorized
from app.extensions import db
from app.xapi import schemas
from app.xapi.models import ForwardTarget, LrsClient
from app.xapi.services.identity import actor_for, homepage, platform_authority, user_district_id

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


def create_client(name: str, district, scopes: list[str], school=None) -> tuple[LrsClient, str]:
    """A new LRS client; returns it and its secret (shown once, only its hash is kept)."""
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
            "account": {"homePage": f"{homepage()}/xapi/clients", "name": key},
        },
    )
    db.session.add(client)
    db.session.flush()
    return client, secret


def revoke_client(client: LrsClient) -> None:
    client.revoked_at = utcnow()
    db.session.flush()


def principal_for_client(client, forward_target_id=None, known=False) -> Principal:
    """``client``: an :class:`LrsClient` or a row with the same column names."""
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
    """Record the xAPI version a client speaks (only written when it changes).

    Written in its own short transaction: the answer to this client's next request
    without a version header depends on it, whatever becomes of this request (a 4xx rolls
    the request's own unit of work back)."""
    if principal.client_id is None or principal.last_version == version:
        return
    with db.engine.begin() as connection:
        connection.execute(
            update(LrsClient)
            .where(LrsClient.id == principal.client_id)
            .values(last_version=version)
        )
    principal.last_version = version


@functools.cache
def _client_query():
    """One query for the client and its district's forwarding target: plain columns, not
    an ORM entity (no identity map or instance state on every LRS request), built once
    per process with the key as a bound parameter (building it on every request was a
    sixth of a GET's CPU time, issue 14).  Still run on every request: a revoked client
    is refused on its next request."""
    clients, targets = LrsClient.__table__.c, ForwardTarget.__table__.c
    return (
        select(
            clients.id,
            clients.secret_hash,
            clients.revoked_at,
            clients.district_id,
            clients.school_id,
            clients.scopes,
            clients.authority,
            clients.last_version,
            targets.id.label("target_id"),
        )
        .outerjoin_from(
            LrsClient.__table__,
            ForwardTarget.__table__,
            and_(targets.district_id == clients.district_id, targets.active.is_(True)),
        )
        .where(clients.key == bindparam("key"))
    )


_CLIENT_SQL = (
    "SELECT c.id, c.secret_hash, c.revoked_at, c.district_id, c.school_id, c.scopes, "
    "c.authority, c.last_version, t.id AS target_id FROM xapi_clients c "
    "LEFT OUTER JOIN xapi_forward_targets t ON t.district_id = c.district_id AND t.active "
    "WHERE c.key = %s"
)


def _client_row(key: str):
    """The row of :func:`_client_query`.  On PostgreSQL it is sent on the driver's
    cursor as fixed text (psycopg prepares it after a few uses): SQLAlchemy's execution
    path was a tenth of a single POST's CPU in the workers (py-spy, issue 14)."""
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return db.session.execute(_client_query(), {"key": key}).first()
    from psycopg.rows import namedtuple_row

    driver = connection.connection.driver_connection
    with driver.cursor(row_factory=namedtuple_row) as cursor:
        cursor.execute(_CLIENT_SQL, (key,))
        return cursor.fetchone()


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
    row = _client_row(key)
    expected = row.secret_hash if row is not None else "0" * 64
    good = hmac.compare_digest(expected, hashlib.sha256(secret.encode()).hexdigest())
    if row is None or not good or row.revoked_at is not None:
        raise Unauthorized("Unknown or revoked LRS credentials.")
    return principal_for_client(row, row.target_id, known=True)


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
