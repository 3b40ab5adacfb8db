"""Planner statistics after a bulk import: ``ANALYZE`` the tables a command filled.

PostgreSQL plans with what ``ANALYZE`` last saw of a table.  Autovacuum analyzes a
table once enough of it changed, but only on its next round (``autovacuum_naptime``, a
minute), and a table never analyzed has no statistics at all: the planner then sizes it
from its first pages.  Until then a statement planned for a few rows can scan many: the
xAPI id look-up before each insert (``app/xapi/services/rows.py``) scanned every
statement of the district on a new database (docs/operations.md, 2026-12-01).  A
command that loads many rows therefore ends with :func:`analyzed`::

    with statistics.analyzed():
        ...  # the import, its commits

which counts the rows the block inserts (``INSERT`` through SQLAlchemy, and ``COPY``s,
which bypass it and report with :func:`written`), then ``ANALYZE``s each table that got
at least as many rows as would make autovacuum analyze it (its
``autovacuum_analyze_threshold`` + ``autovacuum_analyze_scale_factor`` × the rows the
planner believed it had): what autovacuum would do within a minute, done before the
command returns, and a table that got a handful of rows is not sampled again for them.
SQLite plans without such statistics here: nothing is run there.

Only this thread's statements are counted (jobs on other threads are their own work).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import re
from collections.abc import Iterator
from contextvars import ContextVar

from sqlalchemy import event, text
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db

log = logging.getLogger(__name__)

_rows: ContextVar[collections.Counter | None] = ContextVar("analyzed_rows", default=None)
_INSERT = re.compile(r'\s*INSERT\s+INTO\s+"?(\w+)"?', re.IGNORECASE)


def written(table: str, rows: int) -> None:
    """Count ``rows`` written to ``table`` past SQLAlchemy (a ``COPY``) for an enclosing
    :func:`analyzed` block; nothing happens outside one."""
    counter = _rows.get()
    if counter is not None and rows > 0:
        counter[table] += rows


def _after_cursor_execute(conn, cursor, statement, parameters, context, executemany):
    counter = _rows.get()
    if counter is None:
        return  # another thread's statement (a job), not the import's
    match = _INSERT.match(statement)
    if match is None:
        return
    rows = cursor.rowcount
    if rows is None or rows < 0:  # unknown: one per parameter set
        rows = len(parameters) if executemany else 1
    if rows:
        counter[match.group(1)] += rows


@contextlib.contextmanager
def analyzed() -> Iterator[collections.Counter]:
    """Count the rows this block inserts, and ``ANALYZE`` the tables that got many when
    it ends (see the module docstring).  A block that fails may have committed part of
    its rows (a sync commits per subscription), so an error analyzes too; an interrupt
    (Ctrl-C) does not.  Yields the running counts."""
    outer = _rows.get()
    if outer is not None:  # inside another block: it counts, and analyzes at its end
        yield outer
        return
    engine = db.engine
    counter: collections.Counter = collections.Counter()
    token = _rows.set(counter)
    # Listened to only for the block: requests pay nothing for it.
    event.listen(engine, "after_cursor_execute", _after_cursor_execute)
    interrupted = False
    try:
        yield counter
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        event.remove(engine, "after_cursor_execute", _after_cursor_execute)
        _rows.reset(token)
        if not interrupted:
            try:
                analyze(counter)
            except SQLAlchemyError as exc:  # the import itself is done and committed
                log.warning("could not analyze the imported tables: %s", exc)


def after_bulk_import(command):
    """Decorator of a CLI command (under ``with_appcontext``) that loads many rows: its
    body runs in :func:`analyzed`."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with analyzed():
            return command(*args, **kwargs)

    wrapper.analyzes_after = True  # tests/common/test_statistics.py lists the commands
    return wrapper


def analyze(rows_by_table: dict[str, int]) -> list[str]:
    """``ANALYZE`` those of the tables that got enough rows to make autovacuum analyze
    them, on PostgreSQL (nothing elsewhere).  Returns the names analyzed."""
    engine = db.engine
    if engine.dialect.name != "postgresql" or not rows_by_table:
        return []
    # Its own connection in autocommit: it sees what the command committed, and the
    # command's session (and transaction) is left as it was.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        believed = connection.execute(
            text(
                "SELECT c.relname, greatest(c.reltuples, 0),"
                " current_setting('autovacuum_analyze_threshold')::float8,"
                " current_setting('autovacuum_analyze_scale_factor')::float8"
                " FROM pg_class c WHERE c.relname = ANY(:names) AND c.relkind IN ('r', 'p')"
                " AND pg_table_is_visible(c.oid)"
            ),
            {"names": sorted(rows_by_table)},
        ).all()
        tables = sorted(
            name
            for name, tuples, threshold, scale in believed
            if rows_by_table[name] >= threshold + scale * tuples
        )
        if tables:
            connection.execute(text("ANALYZE " + ", ".join(f'"{name}"' for name in tables)))
            log.info("analyzed %s after a bulk import", ", ".join(tables))
    return tables
