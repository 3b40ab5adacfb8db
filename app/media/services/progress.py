"""Player progress: what players report, stored and sent on as ``learning_event``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app import signals
from app.accounts.models import User
from app.catalog import services as catalog
from app.catalog.models import CourseSection, Resource, SectionItem
from app.errors import Invalid, Unauthorized
from app.extensions import db
from app.media.models import ProgressEvent
from app.media.services.permissions import require_user

VERBS = {
    "played",
    "paused",
    "seeked",
    "completed",
    "progressed",
    "experienced",
    "opened",
    "launched",
    "answered",
    "attempted",
    "passed",
    "failed",
    "xapi",
}


def record_progress(
    user: User | None,
    content_id: str,
    verb: str,
    result: dict | None = None,
    context: dict | None = None,
    statement: dict | None = None,
) -> ProgressEvent:
    """Store what a player reported and send ``learning_event`` after commit."""
    if user is None:
        raise Unauthorized("Log in to record progress.")
    if verb not in VERBS:
        raise Invalid(
            f"Unknown verb '{verb}'.", fields={"verb": [f"One of {', '.join(sorted(VERBS))}."]}
        )
    for name, value in (("result", result), ("context", context)):
        if value is not None and not isinstance(value, dict):
            raise Invalid(f"{name} must be an object.", fields={name: ["An object."]})
    resource = catalog.get_content(user, Resource, content_id)
    context = dict(context or {})
    if verb == "xapi":
        if not isinstance(statement, dict) or "verb" not in statement:
            raise Invalid(
                "An xAPI event needs its statement.", fields={"statement": ["A statement object."]}
            )
        context["statement"] = statement
    if result is not None and "progress" in result:
        progress = result["progress"]
        if not isinstance(progress, int | float) or not 0 <= progress <= 1:
            raise Invalid(
                "Progress is a number from 0 to 1.", fields={"result": ["progress 0..1."]}
            )
    event = ProgressEvent(
        user_id=user.id,
        resource_id=resource.id,
        content_id=resource.content_id,
        verb=verb,
        result=result,
        context=context,
    )
    db.session.add(event)
    db.session.flush()
    signals.send_learning_event(user, verb, resource=resource, result=result, context=context)
    return event


def progress_of(user: User | None, content_id: str, limit: int = 100) -> list[ProgressEvent]:
    user = require_user(user)
    return list(
        db.session.execute(
            select(ProgressEvent)
            .where(ProgressEvent.user_id == user.id, ProgressEvent.content_id == content_id)
            .order_by(ProgressEvent.created_at.desc(), ProgressEvent.id.desc())
            .limit(limit)
        ).scalars()
    )


# --- a learner's own progress, for the catalog's cards and "continue" list -------------

DONE_VERBS = {"completed", "passed"}


@dataclass(frozen=True)
class LearnerProgress:
    """How far one learner got with one resource (what her cards show)."""

    content_id: str
    fraction: float  # 0..1; 1 when completed
    completed: bool
    last_at: datetime


@dataclass(frozen=True)
class CourseProgress:
    """Resources of a course the learner completed, of those it lists."""

    content_id: str
    done: int
    total: int

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


def _fraction(result) -> float | None:
    value = result.get("progress") if isinstance(result, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0.0, min(1.0, float(value)))


def learner_progress(user: User | None, content_ids) -> dict[str, LearnerProgress]:
    """Her progress on each of these resources she has touched (others are absent)."""
    ids = {c for c in content_ids if isinstance(c, str)}
    if user is None or not ids:
        return {}
    rows = db.session.execute(
        select(ProgressEvent.content_id, ProgressEvent.verb, ProgressEvent.result)
        .add_columns(ProgressEvent.created_at)
        .where(ProgressEvent.user_id == user.id, ProgressEvent.content_id.in_(ids))
    ).all()
    found: dict[str, dict] = {}
    for content_id, verb, result, created_at in rows:
        entry = found.setdefault(content_id, {"fraction": 0.0, "completed": False, "last": None})
        if verb in DONE_VERBS:
            entry["completed"] = True
        fraction = _fraction(result)
        if fraction is not None:
            entry["fraction"] = max(entry["fraction"], fraction)
        if entry["last"] is None or created_at > entry["last"]:
            entry["last"] = created_at
    return {
        content_id: LearnerProgress(
            content_id,
            1.0 if entry["completed"] else entry["fraction"],
            entry["completed"],
            entry["last"],
        )
        for content_id, entry in found.items()
    }


def recent_resources(user: User | None, limit: int = 3) -> list[LearnerProgress]:
    """The resources she worked on last and has not finished, newest first ("continue
    where you left off")."""
    if user is None:
        return []
    latest = func.max(ProgressEvent.created_at)
    recent = db.session.execute(
        select(ProgressEvent.content_id, latest)
        .where(ProgressEvent.user_id == user.id)
        .group_by(ProgressEvent.content_id)
        .order_by(latest.desc())
        .limit(max(limit * 4, 12))
    ).all()
    progress = learner_progress(user, [content_id for content_id, _ in recent])
    open_ones = [progress[c] for c, _ in recent if c in progress and not progress[c].completed]
    return open_ones[:limit]


def course_progress(user: User | None, courses) -> dict[str, CourseProgress]:
    """Per course (published rows): how many of its resources she completed."""
    if user is None:
        return {}
    courses = list(courses)
    content_of = {course.id: course.content_id for course in courses}
    items: dict[str, list[str]] = {course.content_id: [] for course in courses}
    # One query for a whole page of cards (not two per course for its sections and items).
    rows = db.session.execute(
        select(CourseSection.course_id, SectionItem.resource_content_id)
        .join(SectionItem, SectionItem.section_id == CourseSection.id)
        .where(
            CourseSection.course_id.in_(content_of or {-1}),
            SectionItem.resource_content_id.is_not(None),
        )
        .order_by(CourseSection.position, SectionItem.position)
    ).all()
    for course_id, resource_id in rows:
        items[content_of[course_id]].append(resource_id)
    progress = learner_progress(user, {c for ids in items.values() for c in ids})
    result = {}
    for content_id, ids in items.items():
        unique = list(dict.fromkeys(ids))
        touched = [progress[c] for c in unique if c in progress]
        if touched:
            done = sum(1 for p in touched if p.completed)
            result[content_id] = CourseProgress(content_id, done, len(unique))
    return result
