"""Signal receivers: learning events on subscribed items become the publisher's usage
counters (aggregated; no student identity is stored)."""

from __future__ import annotations

import logging

from app.extensions import db

log = logging.getLogger(__name__)


def on_learning_event(
    app, user=None, verb=None, resource=None, course=None, result=None, context=None, **kwargs
) -> None:
    from app.sharing.services import usage

    content_ids = [obj.content_id for obj in (resource, course) if obj is not None]
    if usage.record(user, str(verb or ""), content_ids, result):
        db.session.commit()


def on_request_ready(app, subscription_id=None, **kwargs) -> None:
    """A remote subscription request was stored: deliver it from a job (see
    ``federation.deliver_request``); a failure is retried by the next sync."""
    from app.jobs import enqueue

    try:
        enqueue("app.sharing.services.federation:deliver_request", subscription_id)
    except Exception:
        log.exception("could not enqueue the delivery of subscription %s", subscription_id)
