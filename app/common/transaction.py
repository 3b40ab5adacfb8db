"""One commit per request, made by the framework.

Views and API handlers never call ``commit()``: services flush, and this module commits
the request's unit of work once the handler has returned a successful response (status
below 400), then delivers the after-commit signals it queued.  Any other outcome — an
exception, an ``abort``, a 4xx/5xx response — rolls the whole unit back.

Views that only read can say so with :func:`read_only`: on PostgreSQL their request then
runs its statements in autocommit mode, without the ``BEGIN`` and ``COMMIT`` round trips
(two of the four a bearer-authenticated presigned-URL request made).  Under PostgreSQL's
READ COMMITTED every statement takes its own snapshot anyway, so reads see exactly what
they saw inside a transaction; and the first statement that writes (or locks: ``SELECT …
FOR UPDATE``) still opens a real transaction (``BEGIN`` before it), which the framework
commits or rolls back as above, so a write in such a request (a token's ``last_used_at``)
is as atomic as anywhere else.

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

from flask import Flask, Response, g, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

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


def read_only(view):
    """Mark a GET view that only reads (see the module's docstring)."""
    view._shuyuan_read_only = True
    return view


_READ_ONLY = "shuyuan_read_only"  # execution option of a read-only request's connection
_READING = ("SELECT", "select")


def _start_read_only(app: Flask) -> None:
    if request.method not in ("GET", "HEAD"):
        return
    view = app.view_functions.get(request.endpoint)
    if view is None or not getattr(view, "_shuyuan_read_only", False):
        return
    if db.engine.dialect.name != "postgresql":
        return  # sqlite3 opens a transaction only before a write anyway
    db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT", _READ_ONLY: True})
    g._shuyuan_read_only = True


def _nothing_to_commit() -> bool:
    """A read-only request that wrote nothing and queued no signal: its connection has no
    transaction open, so there is nothing to commit (the teardown closes the session)."""
    if not g.get("_shuyuan_read_only"):
        return False
    session = db.session()
    if session.new or session.dirty or session.deleted or events.has_queued_signals():
        return False
    driver = session.connection().connection.driver_connection
    return driver.info.transaction_status == _IDLE


@event.listens_for(Engine, "before_cursor_execute")
def _begin_before_writing(conn, cursor, statement, parameters, context, executemany):
    # A read-only request's connection: anything but a plain SELECT (a write, a lock, a
    # SAVEPOINT) first opens a transaction, committed or rolled back by the framework.
    if not conn.get_execution_options().get(_READ_ONLY):
        return
    if statement.startswith(_READING) and " FOR " not in statement.upper():
        return
    driver = conn.connection.driver_connection
    if driver.info.transaction_status == _IDLE:
        driver.execute("BEGIN")


_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE


def _should_commit(response: Response) -> bool:
    if g.pop("_shuyuan_skip_commit", False):
        return False
    if response.status_code < 400:
        return True
    return bool(g.pop("_shuyuan_keep_on_error", False))


def init_app(app: Flask) -> None:
    # First of the request hooks: before the bearer-token check reads the database.
    app.before_request(lambda: _start_read_only(app))

    @app.after_request
    def _commit_unit_of_work(response: Response) -> Response:
        if _nothing_to_commit():
            return response
        if _should_commit(response):
            # A failure here propagates: the client must not be told "saved" when the
            # commit did not happen (the error handler turns it into a 409/503/500).
            events.commit()
        else:
            db.session.rollback()
        return response
