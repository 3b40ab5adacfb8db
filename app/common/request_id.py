"""The id of the request being served — or, inside a job, of the request that queued it.

Set by :mod:`app.ops.logs` for each request (from nginx's ``X-Request-ID`` or made there)
and carried by :mod:`app.jobs` into the jobs a request queues, so one id follows the work
through the logs of every process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_current: ContextVar[str | None] = ContextVar("shuyuan_request_id", default=None)


def current() -> str | None:
    return _current.get()


def set_current(value: str | None) -> None:
    _current.set(value)


@contextlib.contextmanager
def bound(value: str | None) -> Iterator[None]:
    token = _current.set(value)
    try:
        yield
    finally:
        _current.reset(token)
