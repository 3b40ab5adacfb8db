"""Jobs the LTI flow starts once its request has committed (a roster sync after a launch,
a grade retry asked for by an admin, the first delivery of a stored score): a job must
see what the request stored, and must not run at all when the request rolled back.

Every job here is run by :func:`app.jobs.run_job`, which commits once at the end."""

from __future__ import annotations

from blinker import Signal

from app.common.events import send_after_commit

_committed = Signal("lti-job-after-commit")


def enqueue_after_commit(path: str, *args) -> None:
    send_after_commit(_committed, path=path, args=args)


@_committed.connect
def _enqueue(app, path: str, args: tuple) -> None:
    from app.jobs import enqueue

    enqueue(path, *args)


# Grades: the score of a learning event is stored by a job (the event's receiver runs
# after the request's commit and must not write there), then posted by another job once
# stored, so a failed post never loses it.


def record_score(
    user_id: int,
    content_ids: list[str],
    given: float,
    maximum: float,
    completed: bool,
    timestamp: str,
) -> int:
    """Put a learning event's score in the grade outbox (one row per grade link)."""
    from app.lti.services import ags

    score = ags.Score(given=given, maximum=maximum, completed=completed, timestamp=timestamp)
    return len(ags.queue_scores(user_id, content_ids, score))


def deliver_grades(outbox_ids: list[int]) -> dict:
    """Post these scores now if they are still pending and due."""
    from app.lti.services import ags

    return ags.deliver_grades(outbox_ids)


# Periodic jobs (run by `flask ops scheduler` through app.jobs): each is one idempotent step.


def deliver_due_grades() -> dict:
    """Post a batch of scores whose retry time has come (the grade outbox); every worker
    may run it at once, the claim keeps them off each other's scores."""
    from app.lti.services.ags import deliver_due_grades as deliver

    return deliver()


def rotate_keys() -> None:
    """One step of the key rotation schedule (publish, then sign, then retire)."""
    from app.lti.services.keys import rotate_keys as rotate

    rotate()


def purge_expired_launch_data() -> int:
    """Drop expired login states and nonces."""
    from app.lti.store import launch_store

    return launch_store().purge_expired()
