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
from flask import current_app, has_app_context
from sqlalchemy import event

from app.extensions import db

log = logging.getLogger(__name__)
_PENDING = "shuyuan_pending_signals"
_READY = "shuyuan_ready_signals"
_SEEN_BEFORE_COMMIT = "shuyuan_signals_seen_before_commit"
_IN_TRANSACTION = "shuyuan_in_transaction_receivers"  # app.extensions key
_SAVEPOINT_MARKS = "shuyuan_signals_at_savepoints"  # savepoint -> len(pending) at its start


def has_queued_signals() -> bool:
    """Whether this unit of work queued signals (pending or ready to deliver)."""
    info = db.session.info
    return bool(info.get(_PENDING) or info.get(_READY))


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


def connect_in_transaction(app, signal: Signal, receiver) -> None:
    """Run ``receiver(app, **kwargs)`` for ``signal`` inside the transaction that queued
    it, just before it commits, instead of after the commit.  For listeners whose writes
    must commit or roll back with the change itself (the PostgreSQL search backend); an
    exception fails the commit, so nothing of the transaction is stored."""
    app.extensions.setdefault(_IN_TRANSACTION, {}).setdefault(signal, []).append(receiver)


def _before_commit(session) -> None:
    if session.in_nested_transaction() or not has_app_context():
        return
    receivers = current_app.extensions.get(_IN_TRANSACTION)
    pending = session.info.get(_PENDING)
    if not receivers or not pending:
        return
    app = current_app._get_current_object()
    # a receiver may queue more signals: deliver until none is left unseen
    while session.info.get(_SEEN_BEFORE_COMMIT, 0) < len(pending):
        signal, kwargs = pending[session.info.get(_SEEN_BEFORE_COMMIT, 0)]
        session.info[_SEEN_BEFORE_COMMIT] = session.info.get(_SEEN_BEFORE_COMMIT, 0) + 1
        for receiver in receivers.get(signal, ()):
            receiver(app, **kwargs)


def _mark_ready(session) -> None:
    if session.in_nested_transaction():
        # SQLAlchemy sends after_commit for a released SAVEPOINT too: what was queued
        # inside it waits for the real commit (it may still be rolled back, and the
        # in-transaction receivers run at that commit, not at the savepoint's release).
        return
    session.info.pop(_SEEN_BEFORE_COMMIT, None)
    session.info.pop(_SAVEPOINT_MARKS, None)
    pending = session.info.pop(_PENDING, [])
    if pending:
        session.info.setdefault(_READY, []).extend(pending)


def _mark_savepoint(session, transaction) -> None:
    if transaction.nested:
        marks = session.info.setdefault(_SAVEPOINT_MARKS, {})
        marks[id(transaction)] = len(session.info.get(_PENDING, ()))


def _discard(session, previous) -> None:
    """A rollback drops what its transaction queued.  A savepoint's rollback (a local
    retry, a receiver's failed write) drops only the signals queued since the savepoint
    began: the outer transaction's signals still belong to a change that may commit, and
    the in-transaction delivery loop of :func:`_before_commit` keeps its place."""
    if previous.nested:
        mark = session.info.get(_SAVEPOINT_MARKS, {}).pop(id(previous), None)
        pending = session.info.get(_PENDING)
        if mark is not None and pending is not None:
            del pending[mark:]
            if session.info.get(_SEEN_BEFORE_COMMIT, 0) > mark:
                session.info[_SEEN_BEFORE_COMMIT] = mark
        return
    if previous.parent is not None:  # an inner subtransaction: the outer one decides
        return
    session.info.pop(_PENDING, None)
    session.info.pop(_SEEN_BEFORE_COMMIT, None)
    session.info.pop(_SAVEPOINT_MARKS, None)


def install() -> None:
    if not event.contains(db.session, "after_commit", _mark_ready):
        event.listen(db.session, "after_commit", _mark_ready)
        event.listen(db.session, "before_commit", _before_commit)
        event.listen(db.session, "after_transaction_create", _mark_savepoint)
        event.listen(db.session, "after_soft_rollback", _discard)
