"""Signal receivers: learning events on subscribed items become the publisher's usage
counters (aggregated; no student identity is stored).

The counter is written inside the transaction that reports the event (connected with
:func:`app.common.events.connect_in_transaction`): it commits with it, and nothing is
reloaded after the commit (issue 14: reading the expired resource and user again after
an LTI launch's commit was 12 % of the launch)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def on_learning_event(
    app, user=None, verb=None, resource=None, course=None, result=None, context=None, **kwargs
) -> None:
    from app.sharing.services import usage

    try:
        content_ids = [obj.content_id for obj in (resource, course) if obj is not None]
        usage.record(user, str(verb or ""), content_ids, result)
    except Exception:
        log.exception("sharing: could not count a learning event")


def on_request_ready(app, subscription_id=None, **kwargs) -> None:
    """A remote subscription request was stored: deliver it from a job (see
    ``federation.deliver_request``); a failure is retried by the next sync."""
    from app.jobs import enqueue

    try:
        enqueue("app.sharing.services.federation:deliver_request", subscription_id)
    except Exception:
        log.exception("could not enqueue the delivery of subscription %s", subscription_id)
