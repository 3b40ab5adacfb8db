"""Grades (AGS): scores of learning events for content launched with a line item go to
an outbox (:mod:`app.common.outbox`) and are posted to the LMS, retried with the common
backoff until the LMS takes them or ``LTI_GRADE_MAX_ATTEMPTS`` is reached.

Rows are claimed with row locks (PostgreSQL ``FOR UPDATE SKIP LOCKED``), so any number of
deliverers (the job started after a score is stored, the periodic job on every worker,
``flask lti retry-grades``) never post the same score twice.  Nothing here commits: a
deliverer's job or command commits once, which also releases its claim.  Sent rows stay
in the table as the admin's grade log."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from app.accounts.models import User
from app.common import outbox
from app.common.models import utcnow
from app.common.pagination import paginate
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
from app.lti.jobs import enqueue_after_commit
from app.lti.models import (
    LtiDeployment,
    LtiGradeLink,
    LtiGradeOutbox,
    LtiPlatform,
    OutboxStatus,
)
from app.lti.services.http import describe_error, http_session
from app.lti.services.permissions import can_manage
from app.lti.tool import registration_for

log = logging.getLogger(__name__)

SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"

BATCH_SIZE = 50  # scores per claim: they stay locked while the batch is posted
RETRY_CAP = 6 * 3600  # seconds: the longest wait between two tries


LOOK_UP = object()  # record_grade_link: the caller has not read the link


def record_grade_link(
    platform: LtiPlatform,
    deployment: LtiDeployment,
    user: User,
    sub: str,
    resource_link_id: str,
    content_id: str,
    lineitem: str,
    scopes: list[str],
    link: LtiGradeLink | None | object = LOOK_UP,
) -> LtiGradeLink:
    """Where the user's scores for ``content_id`` go (one row per link and user);
    ``link``: that row (None: there is none) when the caller has already read it."""
    if link is LOOK_UP:
        link = db.session.execute(
            select(LtiGradeLink).filter_by(
                platform_id=platform.id, resource_link_id=resource_link_id, user_id=user.id
            )
        ).scalar_one_or_none()
    if link is None:
        link = LtiGradeLink(
            platform_id=platform.id, resource_link_id=resource_link_id, user_id=user.id
        )
        db.session.add(link)
    values = {
        "deployment_id": deployment.id,
        "sub": sub,
        "content_id": content_id,
        "lineitem_url": lineitem[:1000],
        "scopes": list(scopes),
    }
    # Only what changed is assigned: a returning learner's link is usually unchanged, and
    # assigning equal values would still make the row dirty for the flush (issue 14).
    for name, value in values.items():
        if getattr(link, name) != value:
            setattr(link, name, value)
    db.session.flush()
    return link


@dataclass(frozen=True)
class Score:
    """A score as the LMS gets it; ``timestamp`` is when the learner earned it (ISO 8601,
    UTC), which is how an AGS platform orders the scores it receives."""

    given: float
    maximum: float
    completed: bool
    timestamp: str


def score_from_result(result: dict | None) -> Score | None:
    """The score of a learning event's result: ``{"score": {"raw", "max"}}``,
    ``{"score": {"scaled"}}`` or ``{"score": 0.8}`` (scaled); None when there is none or
    it is not a finite number."""
    if not isinstance(result, dict) or result.get("score") is None:
        return None
    score = result["score"]
    try:
        if isinstance(score, dict):
            if score.get("raw") is not None and score.get("max"):
                given, maximum = float(score["raw"]), float(score["max"])
            elif score.get("scaled") is not None:
                given, maximum = float(score["scaled"]) * 100, 100.0
            else:
                return None
        else:
            given, maximum = float(score) * 100, 100.0
    except (TypeError, ValueError, OverflowError):
        return None
    if not (math.isfinite(given) and math.isfinite(maximum)) or maximum <= 0:
        return None
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return Score(
        given=max(0.0, min(given, maximum)),
        maximum=maximum,
        completed=result.get("completion", True) is not False,
        timestamp=stamp,
    )


def _score_links(user_id: int, content_ids: list[str]) -> list[LtiGradeLink]:
    links = db.session.execute(
        select(LtiGradeLink).where(
            LtiGradeLink.user_id == user_id, LtiGradeLink.content_id.in_(content_ids)
        )
    ).scalars()
    return [link for link in links if SCOPE_SCORE in (link.scopes or [])]


def has_score_links(user_id: int, content_ids: list[str]) -> bool:
    """Whether a score of the user for any of ``content_ids`` goes to an LMS (read only)."""
    return bool(content_ids) and bool(_score_links(user_id, content_ids))


def queue_scores(user_id: int, content_ids: list[str], score: Score) -> list[LtiGradeOutbox]:
    """Put the score in the outbox once per grade link of the user for that content; they
    are posted by a job started once this unit of work has committed."""
    if not content_ids:
        return []
    rows = [
        LtiGradeOutbox(
            link_id=link.id,
            score_given=score.given,
            score_maximum=score.maximum,
            timestamp=score.timestamp,
            activity_progress="Completed" if score.completed else "InProgress",
            grading_progress="FullyGraded" if score.completed else "Pending",
            attempts=0,
            next_attempt_at=utcnow(),
        )
        for link in _score_links(user_id, content_ids)
    ]
    if not rows:
        return []
    db.session.add_all(rows)
    db.session.flush()
    enqueue_after_commit("app.lti.jobs:deliver_grades", [row.id for row in rows])
    return rows


# --- delivery ---------------------------------------------------------------------------


def deliver_due_grades(
    now: datetime | None = None, force: bool = False, limit: int | None = None
) -> dict:
    """Post up to ``limit`` (:data:`BATCH_SIZE`) pending scores whose retry time has come
    (``force``: every pending one).  Flushes; the job or command commits, which releases
    the claim."""
    now = now or utcnow()
    limit = limit or BATCH_SIZE
    claim_time = now + timedelta(days=365 * 100) if force else now
    rows = outbox.claim(
        LtiGradeOutbox, LtiGradeOutbox.status == OutboxStatus.PENDING, now=claim_time, limit=limit
    )
    return _deliver(rows, now)


def deliver_grades(outbox_ids: list[int], now: datetime | None = None) -> dict:
    """Post the given scores if they are still pending and due (a row that failed and
    waits for its retry, or that another deliverer holds right now, is left alone)."""
    now = now or utcnow()
    if not outbox_ids:
        return _deliver([], now)
    rows = outbox.claim(
        LtiGradeOutbox,
        LtiGradeOutbox.id.in_(outbox_ids),
        LtiGradeOutbox.status == OutboxStatus.PENDING,
        now=now,
        limit=len(outbox_ids),
    )
    return _deliver(rows, now)


def _deliver(rows: list[LtiGradeOutbox], now: datetime) -> dict:
    """Post claimed rows one by one; every row ends sent, rescheduled with the common
    backoff, or given up after ``LTI_GRADE_MAX_ATTEMPTS`` failures."""
    counts = {"sent": 0, "failed": 0, "given_up": 0}
    if not rows:
        return counts
    # One query for the links (the rows' lazy loads then hit the identity map), and one
    # connector, hence one access token, per platform for the whole batch.
    db.session.execute(
        select(LtiGradeLink).where(LtiGradeLink.id.in_({row.link_id for row in rows}))
    ).scalars().all()
    connectors: dict[int, object] = {}
    config = current_app.config
    for row in rows:
        error = _post(row, connectors)
        if error is None:
            outbox.record_success([row], delete=False)  # kept: the admin's grade log
            row.status, row.sent_at = OutboxStatus.SENT, utcnow()
            counts["sent"] += 1
            continue
        counts["failed"] += 1
        log.warning(
            "grade %s to %s failed (attempt %s): %s",
            row.id,
            row.link.lineitem_url,
            (row.attempts or 0) + 1,
            error,
        )
        given_up = outbox.record_failure(
            [row],
            error,
            now=now,
            base=config.get("LTI_GRADE_RETRY_SECONDS", 30),
            cap=RETRY_CAP,
            max_attempts=config.get("LTI_GRADE_MAX_ATTEMPTS", 8),
        )
        for exhausted in given_up:
            exhausted.status = OutboxStatus.FAILED
            counts["given_up"] += 1
    db.session.flush()
    return counts


def _post(row: LtiGradeOutbox, connectors: dict) -> str | None:
    """Post one score; None when the LMS took it, else what went wrong (for the log)."""
    from pylti1p3.assignments_grades import AssignmentsGradesService
    from pylti1p3.grade import Grade
    from pylti1p3.service_connector import ServiceConnector

    link = row.link
    try:
        if link.platform_id not in connectors:
            platform = db.session.get(LtiPlatform, link.platform_id)
            connectors[link.platform_id] = (
                ServiceConnector(registration_for(platform), http_session())
                if platform is not None and platform.active
                else None
            )
        connector = connectors[link.platform_id]
        if connector is None:
            return "The platform registration was removed or deactivated."
        service = AssignmentsGradesService(
            connector, {"scope": link.scopes, "lineitem": link.lineitem_url}
        )
        grade = (
            Grade()
            .set_score_given(row.score_given)
            .set_score_maximum(row.score_maximum)
            .set_timestamp(row.timestamp)
            .set_activity_progress(row.activity_progress)
            .set_grading_progress(row.grading_progress)
            .set_user_id(link.sub)
        )
        service.put_grade(grade)
    except Exception as exc:  # network errors, 4xx/5xx (LtiServiceException), token errors
        return describe_error(exc)
    return None


def grade_log(actor: User | None, status: str | None = None, page: int = 1, per_page: int = 50):
    if actor is None or not (actor.is_platform_admin or actor.is_district_admin()):
        raise Forbidden("Only administrators see the grade log.")
    statement = (
        select(LtiGradeOutbox)
        .join(LtiGradeLink)
        .join(LtiDeployment, LtiDeployment.id == LtiGradeLink.deployment_id)
    )
    count = (
        select(func.count(LtiGradeOutbox.id))
        .join(LtiGradeLink)
        .join(LtiDeployment, LtiDeployment.id == LtiGradeLink.deployment_id)
    )
    if status:
        if status not in {s.value for s in OutboxStatus}:
            raise Invalid(
                "Unknown status.", fields={"status": [", ".join(s.value for s in OutboxStatus)]}
            )
        statement = statement.where(LtiGradeOutbox.status == status)
        count = count.where(LtiGradeOutbox.status == status)
    if not actor.is_platform_admin:
        statement = statement.where(LtiDeployment.district_id.in_(actor.admin_district_ids()))
        count = count.where(LtiDeployment.district_id.in_(actor.admin_district_ids()))
    statement = statement.order_by(LtiGradeOutbox.id.desc())
    return paginate(statement, page, per_page, count_statement=count)


def retry_grade(actor: User | None, outbox_id: int) -> LtiGradeOutbox:
    """Make a failed or waiting score due now and post it once this request commits."""
    # Locked (PostgreSQL): a deliverer posting this very row finishes first, so a score it
    # has just sent is seen as sent here and never put back to pending.
    row = db.session.execute(
        select(LtiGradeOutbox)
        .where(LtiGradeOutbox.id == outbox_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("Score not found.")
    deployment = db.session.get(LtiDeployment, row.link.deployment_id)
    if not can_manage(actor, deployment):
        raise Forbidden("You cannot retry this score.")
    if row.status == OutboxStatus.SENT:
        raise Conflict("This score was already sent.")
    row.status, row.next_attempt_at, row.attempts = OutboxStatus.PENDING, utcnow(), 0
    db.session.flush()
    enqueue_after_commit("app.lti.jobs:deliver_grades", [row.id])
    return row
