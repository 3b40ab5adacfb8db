"""Deliver signals only after the transaction that caused them commits.

Services flush but never commit; the request or CLI command commits once, through
:func:`commit`.  A listener that indexes or forwards data must not run before that
commit (the data may still be rolled back), so services queue signals with
:func:`send_after_commit`.  SQLAlchemy forbids SQL inside its ``after_commit`` hook, so
the hook only marks the queue as ready and :func:`deliver_ready` runs the listeners
right after (listeners may read and write the database and commit their own work).
"""

from __future__ import annotations

import logging

from blinker import Signal
from flask import current_app
from sqlalchemy import event

from app.extensions import db

log = logging.getLogger(__name__)
_PENDING = "shuyuan_pending_signals"
_READY = "shuyuan_ready_signals"


def send_after_commit(signal: Signal, **kwargs) -> None:
    db.session.info.setdefault(_PENDING, []).append((signal, kwargs))


def commit() -> None:
    """Commit the request's transaction, then deliver the signals it queued."""
    db.session.commit()
    deliver_ready()


def deliver_ready() -> None:
    ready = db.session.info.pop(_READY, [])
    if not ready:
        return
    app = current_app._get_current_object()
    for signal, kwargs in ready:
        for receiver in list(signal.receivers_for(app)):
            try:
                receiver(app, **kwargs)
            except Exception:
                # A failing listener (search index, forwarder) must not undo or hide a
                # commit that already happened; each listener has its own repair path.
                log.exception("listener %r of %s failed", receiver, signal.name)
                db.session.rollback()


def _mark_ready(session) -> None:
    pending = session.info.pop(_PENDING, [])
    if pending:
        session.info.setdefault(_READY, []).extend(pending)


def _discard(session) -> None:
    session.info.pop(_PENDING, None)


def install() -> None:
    if not event.contains(db.session, "after_commit", _mark_ready):
        event.listen(db.session, "after_commit", _mark_ready)
        event.listen(db.session, "after_soft_rollback", lambda session, previous: _discard(session))
