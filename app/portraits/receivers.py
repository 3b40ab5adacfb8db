"""Signal receivers: a stored learning event makes the portraits catch up, off the
request (background job)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# Verbs that change a portrait (answers, scores, time, completion).
RELEVANT = {
    "answered",
    "completed",
    "passed",
    "failed",
    "experienced",
    "progressed",
    "played",
    "paused",
}


def on_learning_event(app, user=None, verb=None, **kwargs) -> None:
    """The xAPI feature stores the statement when it receives the same signal (it was
    connected first); the job then reads everything new from the LRS."""
    if user is None or verb not in RELEVANT:
        return
    from flask import current_app

    if current_app.config.get("JOBS_EAGER"):
        # Eager jobs end by removing the session, which would detach the objects the
        # receivers after this one still read: run the job body here instead.
        from app.extensions import db
        from app.portraits.services import updates

        try:
            updates.ingest_job()
            db.session.commit()
        except Exception:
            log.exception("portraits update failed")
            db.session.rollback()
        return
    from app.jobs import enqueue

    try:
        enqueue("app.portraits.services.updates:ingest_job")
    except Exception:  # the next event or `flask portraits ingest` catches up
        log.exception("could not enqueue the portraits update")


def connect(app) -> None:
    from app import signals

    signals.learning_event.connect(on_learning_event, sender=app, weak=False)
