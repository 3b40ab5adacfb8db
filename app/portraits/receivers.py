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
    from app.jobs import enqueue

    try:
        enqueue("app.portraits.services.updates:ingest_job")
    except Exception:  # the next event or `flask portraits ingest` catches up
        log.exception("could not enqueue the portraits update")


def connect(app) -> None:
    from app import signals

    signals.learning_event.connect(on_learning_event, sender=app, weak=False)
