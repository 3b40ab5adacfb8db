"""Player progress: what players report, stored and sent on as ``learning_event``."""

from __future__ import annotations

from sqlalchemy import select

from app import signals
from app.accounts.models import User
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.common.events import send_after_commit
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
    send_after_commit(
        signals.learning_event,
        user=user,
        verb=verb,
        resource=resource,
        course=None,
        result=result,
        context=context,
    )
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
