"""One commit per request, made by the framework.

Views and API handlers never call ``commit()``: services flush, and this module commits
the request's unit of work once the handler has returned a successful response (status
below 400), then delivers the after-commit signals it queued.  Any other outcome — an
exception, an ``abort``, a 4xx/5xx response — rolls the whole unit back.

Two escape hatches cover the cases where that rule is wrong:

- :func:`keep_on_error` — the handler answers 4xx but what it wrote must stay (a failed
  login counted for the rate limiter, a refused LTI launch logged for the admin);
- :func:`savepoint` — a local retry inside a service (an insert that may race another
  worker) rolls back only its own part, never the caller's whole unit of work.

CLI commands and jobs are their own unit of work: :func:`app.jobs.run_job` commits for
jobs, and commands use :func:`app.common.events.commit` once at the end.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from flask import Flask, Response, g

from app.common import events
from app.extensions import db

log = logging.getLogger(__name__)


def keep_on_error() -> None:
    """Commit this request's work even though the response will be an error."""
    g._shuyuan_keep_on_error = True


def skip_commit() -> None:
    """Roll this request's work back even though the response is a success (dry runs)."""
    g._shuyuan_skip_commit = True


@contextlib.contextmanager
def savepoint() -> Iterator[None]:
    """``with savepoint(): ...`` — a nested transaction; an exception inside rolls back
    only what the block did and is re-raised for the caller to handle."""
    _open_sqlite_transaction()
    with db.session.begin_nested():
        yield


def _open_sqlite_transaction() -> None:
    # Python's sqlite3 driver opens a transaction only before INSERT/UPDATE/DELETE.  A
    # SAVEPOINT issued outside one starts a transaction of its own that RELEASE then
    # commits for good, so the caller's later rollback would not undo the block's work.
    # Opening the outer transaction first keeps the savepoint nested, as on PostgreSQL;
    # IMMEDIATE takes the write lock now (waiting its turn), since a transaction that
    # read first could not upgrade once another writer committed ("database is locked").
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        return
    driver_connection = connection.connection.driver_connection
    if not driver_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _should_commit(response: Response) -> bool:
    if g.pop("_shuyuan_skip_commit", False):
        return False
    if response.status_code < 400:
        return True
    return bool(g.pop("_shuyuan_keep_on_error", False))


def init_app(app: Flask) -> None:
    @app.after_request
    def _commit_unit_of_work(response: Response) -> Response:
        if _should_commit(response):
            # A failure here propagates: the client must not be told "saved" when the
            # commit did not happen (the error handler turns it into a 409/503/500).
            events.commit()
        else:
            db.session.rollback()
        return response
