"""Grades (AGS): scores of learning events for content launched with a line item go to
an outbox and are posted to the LMS, retried with exponential backoff."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from app.accounts.models import User
from app.common.models import utcnow
from app.common.pagination import paginate
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
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


def record_grade_link(
    platform: LtiPlatform,
    deployment: LtiDeployment,
    user: User,
    sub: str,
    resource_link_id: str,
    content_id: str,
    lineitem: str,
    scopes: list[str],
) -> LtiGradeLink:
    """Where the user's scores for ``content_id`` go (one row per link and user)."""
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
    link.deployment_id = deployment.id
    link.sub = sub
    link.content_id = content_id
    link.lineitem_url = lineitem[:1000]
    link.scopes = list(scopes)
    db.session.flush()
    return link


def score_from_result(result: dict | None) -> tuple[float, float] | None:
    """(given, maximum) from a learning event's result: ``{"score": {"raw", "max"}}``,
    ``{"score": {"scaled"}}`` or ``{"score": 0.8}`` (scaled)."""
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
    except (TypeError, ValueError):
        return None
    if maximum <= 0:
        return None
    return max(0.0, min(given, maximum)), maximum


def queue_scores(user: User, content_ids: list[str], result: dict) -> list[LtiGradeOutbox]:
    score = score_from_result(result)
    if score is None or user is None or not content_ids:
        return []
    links = (
        db.session.execute(
            select(LtiGradeLink).where(
                LtiGradeLink.user_id == user.id, LtiGradeLink.content_id.in_(content_ids)
            )
        )
        .scalars()
        .all()
    )
    rows = []
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    completed = result.get("completion", True) is not False
    for link in links:
        if SCOPE_SCORE not in (link.scopes or []):
            continue
        row = LtiGradeOutbox(
            link_id=link.id,
            score_given=score[0],
            score_maximum=score[1],
            timestamp=stamp,
            activity_progress="Completed" if completed else "InProgress",
            grading_progress="FullyGraded" if completed else "Pending",
        )
        db.session.add(row)
        rows.append(row)
    db.session.flush()
    return rows


def _backoff(attempts: int) -> timedelta:
    base = current_app.config.get("LTI_GRADE_RETRY_SECONDS", 30)
    return timedelta(seconds=min(base * (2 ** max(attempts - 1, 0)), 6 * 3600))


def deliver_grade(outbox_id: int) -> str:
    """Post one score to its line item; on failure schedule a retry (or give up)."""
    from pylti1p3.assignments_grades import AssignmentsGradesService
    from pylti1p3.grade import Grade
    from pylti1p3.service_connector import ServiceConnector

    row = db.session.get(LtiGradeOutbox, outbox_id)
    if row is None or row.status != OutboxStatus.PENDING:
        return "skipped"
    link = row.link
    platform = db.session.get(LtiPlatform, link.platform_id)
    registration = registration_for(platform) if platform is not None else None
    row.attempts += 1
    try:
        if platform is None or not platform.active:
            raise RuntimeError("platform registration removed")
        connector = ServiceConnector(registration, http_session())
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
    except Exception as exc:  # network errors, 4xx/5xx from the LMS (LtiServiceException)
        message = describe_error(exc)
        row.last_error = message[:1000]
        if row.attempts >= current_app.config.get("LTI_GRADE_MAX_ATTEMPTS", 8):
            row.status = OutboxStatus.FAILED
        else:
            row.next_attempt_at = utcnow() + _backoff(row.attempts)
        log.warning(
            "grade %s to %s failed (attempt %s): %s",
            row.id,
            link.lineitem_url,
            row.attempts,
            message,
        )
        db.session.flush()
        return "failed"
    row.status, row.sent_at, row.last_error = OutboxStatus.SENT, utcnow(), None
    db.session.flush()
    return "sent"


def due_grades(now: datetime | None = None, limit: int = 200) -> list[int]:
    now = now or utcnow()
    return list(
        db.session.execute(
            select(LtiGradeOutbox.id)
            .where(
                LtiGradeOutbox.status == OutboxStatus.PENDING, LtiGradeOutbox.next_attempt_at <= now
            )
            .order_by(LtiGradeOutbox.next_attempt_at)
            .limit(limit)
        ).scalars()
    )


def deliver_due_grades(force: bool = False) -> dict:
    """Retry every due score (``force``: every pending one).  Commits per score."""
    counts = {"sent": 0, "failed": 0, "skipped": 0}
    ids = due_grades(now=utcnow() + timedelta(days=365) if force else None)
    for outbox_id in ids:
        counts[deliver_grade(outbox_id)] += 1
        db.session.commit()
    return counts


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
    row = db.session.get(LtiGradeOutbox, outbox_id)
    if row is None:
        raise NotFound("Score not found.")
    deployment = db.session.get(LtiDeployment, row.link.deployment_id)
    if not can_manage(actor, deployment):
        raise Forbidden("You cannot retry this score.")
    if row.status == OutboxStatus.SENT:
        raise Conflict("This score was already sent.")
    row.status, row.next_attempt_at, row.attempts = OutboxStatus.PENDING, utcnow(), 0
    db.session.flush()
    return row
