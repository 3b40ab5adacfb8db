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
