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
