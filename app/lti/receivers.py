"""Signal receivers: scores from players and exercises go to the LMS gradebook."""

from __future__ import annotations

import logging

from flask import current_app

from app.extensions import db

log = logging.getLogger(__name__)


def on_learning_event(
    app, user=None, verb=None, resource=None, course=None, result=None, context=None, **kwargs
) -> None:
    """A result with a score for content the user launched from an LMS with a line item
    is queued in the outbox and posted off the request path."""
    from app.lti.services import ags

    if user is None or ags.score_from_result(result) is None:
        return
    content_ids = [obj.content_id for obj in (resource, course) if obj is not None]
    rows = ags.queue_scores(user, content_ids, result)
    if not rows:
        return
    db.session.commit()
    for row in rows:
        _deliver_later(row.id)


def _deliver_later(outbox_id: int) -> None:
    from app.lti.services import ags

    if current_app.config.get("JOBS_EAGER"):
        try:
            ags.deliver_grade(outbox_id)
            db.session.commit()
        except Exception:
            log.exception("grade delivery %s failed", outbox_id)
            db.session.rollback()
        return
    from app.jobs import enqueue

    enqueue("app.lti.services.ags:deliver_grade", outbox_id)
