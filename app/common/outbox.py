"""Outbox tables: rows that must reach another system (an external LRS, an LMS grade
book) and are retried with backoff until they do.

A producer adds a row in the same transaction as the change it reports, so whatever is
stored is also queued.  A deliverer (a job or a CLI loop) then does, in its own unit of
work::

    from app.common import outbox

    rows = outbox.claim(GradeOutbox, GradeOutbox.status == "pending", limit=50)
    for row in rows:
        try:
            send(row)
        except SendError as exc:
            for given_up in outbox.record_failure([row], str(exc), max_attempts=8):
                given_up.status = "failed"     # what giving up means is the caller's call
        else:
            outbox.record_success([row], delete=False)
            row.status = "sent"
    # ... and the job commits once (app.jobs.run_job does).

API: :func:`claim` (due rows, locked), :func:`backoff` (the one retry schedule),
:func:`record_success`, :func:`record_failure` (both flush, neither commits).

The model needs an integer ``id`` primary key (the default claim order) and three
columns: ``attempts`` (int, not null, default 0), ``next_attempt_at`` (naive UTC
datetime, not null, in an index that starts with it or with the caller's extra filter)
and ``last_error`` (text, or a string of at least :data:`ERROR_LENGTH`).  Anything else —
status, sent time, grouping by destination — stays the caller's.

Concurrency.  On PostgreSQL :func:`claim` is ``SELECT … FOR UPDATE SKIP LOCKED``: a row
claimed by one deliverer stays locked until that deliverer's transaction ends, and every
other deliverer skips it, so two workers never send the same row at the same time, and a
row deleted or rescheduled by the first is not seen as due by the second.  SQLite has no
row locks, so there the claim is a plain ``SELECT`` (SQLite deployments run one process;
if two deliverers overlap anyway, a row may be sent twice, which is why deliveries must be
idempotent at the receiver: xAPI statements by id, AGS scores by timestamp).

Hold the claim only as long as the delivery takes (keep HTTP timeouts short): the locks
are released by the caller's commit or rollback.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select

from app.common.models import utcnow
from app.extensions import db

ERROR_LENGTH = 1000
"""``last_error`` is cut to this many characters."""


def claim(model, *conditions, now: datetime | None = None, limit: int = 100, order_by=None):
    """Due rows of ``model`` (``next_attempt_at <= now`` and every extra condition), oldest
    first by default, locked for this transaction and skipped by concurrent claimers
    (PostgreSQL).  Returns a list of ORM rows (at most ``limit``)."""
    now = now or utcnow()
    statement = (
        select(model)
        .where(model.next_attempt_at <= now, *conditions)
        .order_by(*(order_by if order_by is not None else (model.id,)))
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    return list(db.session.execute(statement).scalars())


def backoff(
    attempts: int, *, base: float = 30, cap: float = 3600, jitter: float = 0.2, rng=random
) -> timedelta:
    """Delay before the next try after ``attempts`` failed ones: ``base`` seconds doubled
    per attempt, never more than ``cap``, shortened by up to ``jitter`` (a fraction) at
    random so that rows that failed together do not all retry in the same second."""
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=delay * (1 - jitter * rng.random()))


def record_success(rows, *, delete: bool = True) -> None:
    """The rows were delivered: delete them (``delete=True``) or keep them with their
    error cleared, for callers that keep a delivery log (they set their own status)."""
    for row in rows:
        if delete:
            db.session.delete(row)
        else:
            row.last_error = None
    db.session.flush()


def record_failure(
    rows,
    error: str,
    *,
    now: datetime | None = None,
    base: float = 30,
    cap: float = 3600,
    max_attempts: int | None = None,
) -> list:
    """Count a failed attempt on each row, keep the error, schedule each row's next try
    with :func:`backoff`.  Returns the rows that reached ``max_attempts`` (the caller marks
    them as given up; they are rescheduled all the same, so a caller that ignores the
    answer simply keeps retrying)."""
    now = now or utcnow()
    exhausted = []
    for row in rows:
        row.attempts = (row.attempts or 0) + 1
        row.last_error = error[:ERROR_LENGTH]
        row.next_attempt_at = now + backoff(row.attempts, base=base, cap=cap)
        if max_attempts is not None and row.attempts >= max_attempts:
            exhausted.append(row)
    db.session.flush()
    return exhausted
