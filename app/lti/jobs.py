"""Jobs the LTI flow starts once its request has committed (a roster sync after a launch,
a grade retry asked for by an admin): a job must see what the request stored, and must
not run at all when the request rolled back."""

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


# Periodic jobs (run by `flask ops scheduler` through app.jobs): each is one idempotent step.


def deliver_due_grades() -> dict:
    """Post the scores whose retry time has come (the grade outbox)."""
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
