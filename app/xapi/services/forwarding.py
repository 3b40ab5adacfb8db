"""Forwarding a district's statements to its own external LRS through the outbox."""

from __future__ import annotations

import logging
from datetime import datetime

import requests
from blinker import Namespace
from sqlalchemy import func, insert, select

from app.common import outbox
from app.common.events import send_after_commit
from app.common.models import utcnow
from app.errors import BadRequest
from app.extensions import db
from app.jobs import enqueue
from app.xapi.models import ForwardTarget, OutboxEntry, Statement
from app.xapi.services.auth import Principal

log = logging.getLogger(__name__)

RETRY_BASE = 30  # seconds before the first retry; doubled per attempt ...
RETRY_CAP = 3600  # ... up to an hour
FORWARD_TIMEOUT = 20  # seconds per batch: the claimed rows stay locked meanwhile

_signals = Namespace()
outbox_filled = _signals.signal("xapi-outbox-filled")
"""xAPI-internal, after commit: statements were queued for forwarding (no kwargs)."""


def queue_forwarding(principal: Principal, statement_pks: list[int]) -> None:
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
    # The forwarder starts once the statements are committed (never before: it runs in
    # another transaction and would not see them).
    send_after_commit(outbox_filled)


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


def forward_due(batch_size: int = 200, now: datetime | None = None, http=None) -> dict:
    """Send due outbox entries to their external LRS; failures are retried later with
    backoff.  Entries are removed only once the external LRS accepted them.

    The entries are claimed with :func:`app.common.outbox.claim` (row locks skipped by
    concurrent forwarders on PostgreSQL), so two forwarders never send the same statement;
    the caller's commit releases them."""
    http = http or requests.Session()
    now = now or utcnow()
    sent = failed = 0
    targets = db.session.execute(
        select(ForwardTarget).where(ForwardTarget.active.is_(True)).order_by(ForwardTarget.id)
    ).scalars()
    for target in list(targets):
        entries = outbox.claim(
            OutboxEntry, OutboxEntry.target_id == target.id, now=now, limit=batch_size
        )
        if not entries:
            continue
        error = _post(http, target, _payload(target, entries))
        if error is None:
            outbox.record_success(entries)
            sent += len(entries)
        else:
            outbox.record_failure(entries, error, now=now, base=RETRY_BASE, cap=RETRY_CAP)
            failed += len(entries)
    return {"sent": sent, "failed": failed}


def _payload(target: ForwardTarget, entries: list[OutboxEntry]) -> list[dict]:
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
        # The external LRS sets its own stored and authority (and 1.0.3 its version).
        statement.pop("stored", None)
        statement.pop("authority", None)
        if target.version.startswith("1"):
            statement.pop("version", None)
        payload.append(statement)
    return payload


def _post(http, target: ForwardTarget, payload: list[dict]) -> str | None:
    """POST one batch; None when the external LRS accepted it, else what went wrong."""
    try:
        response = http.post(
            target.endpoint + "statements",
            json=payload,
            timeout=FORWARD_TIMEOUT,
            auth=(target.username, target.password) if target.username else None,
            headers={"X-Experience-API-Version": target.version},
        )
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {exc}"
    if response.status_code not in (200, 204):
        return f"HTTP {response.status_code}: {response.text[:300]}"
    return None


def start_forwarding(app, **_) -> None:
    """Receiver of :data:`outbox_filled`: run the forwarder as a job."""
    try:
        enqueue("app.xapi.services.forwarding:forward_job")
    except Exception:  # the outbox keeps the statements; `flask xapi forward` retries
        log.exception("could not enqueue xAPI forwarding")


def forward_job() -> dict:
    """Job entry point (``enqueue("app.xapi.services.forwarding:forward_job")``)."""
    return forward_due()


def outbox_size() -> int:
    return db.session.execute(select(func.count()).select_from(OutboxEntry)).scalar_one()


# --- managing forwarding targets as a platform user (admin page) -------------------------

FORWARD_VERSIONS = ("1.0.3", "2.0.0")


def _require_forwarding_admin(user, district_id: int | None = None) -> None:
    from app.errors import Forbidden, Unauthorized

    if user is None:
        raise Unauthorized("Log in or send a bearer token.")
    allowed = user.is_platform_admin or (
        user.is_district_admin(district_id) if district_id else user.is_district_admin()
    )
    if not allowed:
        raise Forbidden("Only the district's administrators manage its forwarding.")


def list_forward_targets(user) -> list[ForwardTarget]:
    """The forwarding targets of the districts ``user`` administers (all for a platform
    admin); passwords never leave this module's callers' pages."""
    _require_forwarding_admin(user)
    statement = select(ForwardTarget).order_by(ForwardTarget.district_id)
    if not user.is_platform_admin:
        statement = statement.where(
            ForwardTarget.district_id.in_(sorted(user.admin_district_ids()))
        )
    return list(db.session.execute(statement).scalars())


def pending_by_target(targets: list[ForwardTarget]) -> dict[int, int]:
    """How many statements wait in the outbox for each target."""
    if not targets:
        return {}
    rows = db.session.execute(
        select(OutboxEntry.target_id, func.count())
        .where(OutboxEntry.target_id.in_([t.id for t in targets]))
        .group_by(OutboxEntry.target_id)
    ).all()
    return {target_id: int(n) for target_id, n in rows}


def set_forward_target_as(
    user,
    district_id: int,
    endpoint: str,
    username: str = "",
    password: str | None = None,
    version: str = "1.0.3",
    active: bool = True,
) -> ForwardTarget:
    """An administrator sets (or changes) her district's forwarding target.  An empty
    ``password`` keeps the stored one (the page never shows it back)."""
    from urllib.parse import urlparse

    from app.accounts.models import District
    from app.errors import Invalid, NotFound

    _require_forwarding_admin(user, district_id)
    district = db.session.get(District, district_id)
    if district is None:
        raise NotFound("District not found.")
    errors: dict[str, list[str]] = {}
    endpoint = (endpoint or "").strip()
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(endpoint) > 500:
        errors["endpoint"] = ["An http(s) URL."]
    if version not in FORWARD_VERSIONS:
        errors["version"] = ["Must be one of: 1.0.3, 2.0.0."]
    if len(username or "") > 200:
        errors["username"] = ["Longer than maximum length 200."]
    if password is not None and len(password) > 500:
        errors["password"] = ["Longer than maximum length 500."]
    if errors:
        raise Invalid("The submitted data is not valid.", fields=errors)
    existing = db.session.execute(
        select(ForwardTarget).filter_by(district_id=district.id)
    ).scalar_one_or_none()
    if not password and existing is not None:
        password = existing.password
    return set_forward_target(district, endpoint, username or "", password or "", version, active)
