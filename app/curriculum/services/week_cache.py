"""The week *structure* of a class, cached in the shared cache (issue 14).

"This week" reads, per class: the calendar it follows, the week's dates and lessons,
their knowledge points, their exactMatchOf equivalents and where the class is
(progress).  None of that depends on who asks, and it changes only when a calendar, a
class's progress or the framework (nodes, associations) is written, so it is cached
per class in the ``curriculum-weeks`` generation (app/common/cache.py) and a change
bumps that generation after its commit.

The week's aligned resources a reader may see (the rows of the aligned-resources
statement, :func:`aligned_rows`) are cached too, in a scope of their own
(``curriculum-week-resources``), keyed by the catalog's visibility key of the reader
(``catalog.visibility_key``: every non-author student of a school shares one) and the
node identifiers asked for.  That generation is bumped by every committed write of
resources, resource alignments, nodes, associations and the sharing subscriptions
(who receives what), the same table-driven way, so publishing, withdrawing, an
alignment or a subscription shows at once in every worker; a calendar or progress
change does not bump it (the identifiers in the key follow the structure).

Invalidation is by the tables written, not by the services that write them, so a new
writer cannot forget it: every ORM flush and every ``session.execute`` of an INSERT,
UPDATE or DELETE on one of :data:`WATCHED` marks the unit of work, and its commit bumps
the generation (in every process sharing the cache).  The CASE import's COPY is marked
by hand (:func:`mark_changed`).  Writes from outside the app (psql, a script's COPY, a
restore) are seen by nobody: the operator then runs ``flask curriculum cache clear``
(:func:`clear`; docs/operations.md).  Until it commits, that unit of work reads and writes
no cache entry, so nobody else can see what it wrote and may still roll back.

Only on Redis (``REDIS_URL``), which every worker and host shares: with a per-process
SimpleCache the bump would reach only the process that made the change, and another
gunicorn worker would show a teacher her old calendar.  Without Redis every call reads
the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date

from flask import current_app
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from app.common import cache
from app.common.unit_of_work import CommitNote
from app.curriculum.models import (
    Association,
    CalendarEntry,
    CalendarWeek,
    ClassProgress,
    Node,
    SchoolClass,
    TeachingCalendar,
)
from app.extensions import db

log = logging.getLogger(__name__)

SCOPE = "curriculum-weeks"
# In every key: an entry pickled by an older shape of this module is never read.
_VERSION = 1
WATCHED_MODELS = (TeachingCalendar, CalendarWeek, CalendarEntry, ClassProgress, Node, Association)
WATCHED = frozenset(model.__table__.name for model in WATCHED_MODELS)

ROWS_SCOPE = "curriculum-week-resources"
# What the aligned-resources rows are read from: resources (state, visibility, title...),
# their alignments, nodes (identifier -> id), associations (kept with the nodes), and the
# sharing tables that decide which districts receive which content ids.  By table name,
# so the curriculum need not import the sharing models.
ROWS_WATCHED = frozenset(
    {
        "resources",
        "curriculum_alignments",
        Node.__table__.name,
        Association.__table__.name,
        "sharing_subscriptions",
        "sharing_subscribed_items",
    }
)


def enabled() -> bool:
    """Whether this call may read and write cached week structures: only on a cache all
    processes share, and not in a unit of work that wrote a watched table (it would read
    the others' entries without its own change, or publish what may be rolled back)."""
    return current_app.config.get("CACHE_TYPE") == "RedisCache" and not _changes.marked()


def rows_enabled() -> bool:
    """:func:`enabled` for the cached aligned-resource rows."""
    return (
        current_app.config.get("CACHE_TYPE") == "RedisCache"
        and not _row_changes.marked()
        and not _changes.marked()
    )


def mark_changed(session: Session | None = None) -> None:
    """This unit of work changed the week structure (for writes no listener sees, e.g.
    the CASE import's COPY of nodes and associations): both generations are bumped."""
    _changes.mark(session)
    _row_changes.mark(session)


def aligned_rows(
    user, identifiers: list[str], produce: Callable[[], list[tuple]], author_column: int
) -> list[tuple]:
    """The aligned-resources rows ``user`` may see for ``identifiers`` (what ``produce``
    reads from the database: plain, picklable tuples), from the shared cache when they
    are there.

    The key is ``catalog.visibility_key(user)``, which leaves out the user's id when she
    has authored nothing (so a school's students share one entry).  That answer is
    itself cached under the catalog's generation, so just after her first publication it
    may still say "no author" while the database already shows her own private row
    (column ``author_column``): such rows are returned but never stored under the
    shared key, where her schoolmates would read them."""
    if not rows_enabled():
        return produce()
    from app.catalog import services as catalog

    visibility = catalog.visibility_key(user)
    parts = ("week-rows", _VERSION, visibility, tuple(sorted(identifiers)))
    shared = visibility[0] == "user" and visibility[1] is None
    read: list[list[tuple]] = []

    def made() -> list[tuple] | None:
        rows = produce()
        read.append(rows)
        if shared and any(row[author_column] == user.id for row in rows):
            return None  # returned to her below, not stored
        return rows

    value = cache.remember(ROWS_SCOPE, parts, made)
    return read[0] if value is None else value


def class_key(school_class: SchoolClass, offsets: tuple[int, ...], on: date, subject) -> tuple:
    """What decides a class's structure besides the watched tables: the live class row
    (its school's district and its grade choose the calendar, its editions the
    subjects), the day and the weeks asked for."""
    editions = tuple(
        (e.subject, e.edition) for e in school_class.editions if not subject or e.subject == subject
    )
    return (
        "class-weeks",
        _VERSION,
        school_class.id,
        school_class.school_id,
        school_class.school.district_id,
        school_class.grade,
        editions,
        on.isoformat(),
        tuple(offsets),
    )


def class_weeks(
    classes: list[SchoolClass],
    offsets: tuple[int, ...],
    on: date,
    subject: str | None,
    build: Callable[[list[SchoolClass]], list[dict]],
) -> list[dict]:
    """Each class's week structure (what ``build`` makes for a list of classes, in
    order), from the cache where it is there; the missing ones built in one pass."""
    if not classes:
        return []
    if not enabled():
        return build(classes)
    parts = [class_key(c, offsets, on, subject) for c in classes]
    values = cache.remember_many(
        SCOPE, parts, lambda positions: build([classes[p] for p in positions])
    )
    out = []
    for school_class, value in zip(classes, values, strict=True):
        try:
            out.append(_attach(value))
        except Exception:  # noqa: BLE001  an entry the models no longer fit: rebuild
            log.warning("unreadable week structure of class %s; rebuilt", school_class.id)
            out.append(build([school_class])[0])
    return out


def _attach(value: dict) -> dict:
    """The cached structure with its ``Node`` and ``TeachingCalendar`` objects put into
    this session without SQL: the instance the session already holds, else the
    unpickled one (lazy relationships then load as usual)."""
    session = db.session
    attached: dict[int, object] = {}

    def one(obj):
        if obj is None:
            return None
        found = attached.get(id(obj))
        if found is None:
            state = inspect(obj)
            if state.session_id == session().hash_key:  # built in this call: already here
                found = obj
            else:
                found = session.identity_map.get(state.key)
                if found is None:
                    # A detached, clean instance becomes persistent as it is: no SQL, and
                    # cheaper than merge(load=False), which copies it into a new one.
                    session.add(obj)
                    found = obj
            attached[id(obj)] = found
        return found

    return {
        "found": [
            (offset, subject, one(calendar), number, starts, ends, kind, [one(n) for n in lessons])
            for offset, subject, calendar, number, starts, ends, kind, lessons in value["found"]
        ],
        "progress": {subject: one(node) for subject, node in value["progress"].items()},
        "deltas": value["deltas"],
        "knowledge_points": {
            identifier: [one(n) for n in nodes]
            for identifier, nodes in value["knowledge_points"].items()
        },
        "equivalents": value["equivalents"],
    }


# --- invalidation -----------------------------------------------------------------------


def _table_name(obj) -> str | None:
    table = getattr(type(obj), "__table__", None)
    return getattr(table, "name", None)


def _after_flush(session, flush_context) -> None:
    names = {
        _table_name(obj)
        for objects in (session.new, session.dirty, session.deleted)
        for obj in objects
    }
    if names & WATCHED:
        _changes.mark(session)
    if names & ROWS_WATCHED:
        _row_changes.mark(session)


def _do_orm_execute(state) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        name = getattr(table, "name", None)
        if name in WATCHED:
            _changes.mark(state.session)
        if name in ROWS_WATCHED:
            _row_changes.mark(state.session)


def _bump(_note) -> None:
    if current_app.config.get("CACHE_TYPE") == "RedisCache":
        cache.bump(SCOPE)


def _bump_rows(_note) -> None:
    if current_app.config.get("CACHE_TYPE") == "RedisCache":
        cache.bump(ROWS_SCOPE)


def clear() -> bool:
    """Make every cached week structure and aligned-resource row stale, in every process
    sharing the cache: for writes the listeners cannot see (raw SQL or ``COPY`` from
    outside the app, a restore; ``flask curriculum cache clear``).  False when there is
    nothing to clear (no Redis: nothing is cached); raises :class:`RuntimeError` when
    Redis did not take the bump."""
    if current_app.config.get("CACHE_TYPE") != "RedisCache":
        return False
    for scope in (SCOPE, ROWS_SCOPE):
        before = cache.generation(scope)
        cache.bump(scope)  # logs and swallows a Redis error: checked below
        if before < 0 or cache.generation(scope) <= before:
            raise RuntimeError(f"the cache generation {scope!r} could not be bumped")
    return True


# Marked by a unit of work that wrote the week structure: it then reads and writes no
# cache entry, and its commit bumps the generation (a rollback forgets the mark).
_changes = CommitNote("curriculum-weeks", _bump)
# The same for the aligned-resource rows (resources, alignments, sharing, nodes).
_row_changes = CommitNote("curriculum-week-resources", _bump_rows)


def install() -> None:
    if not event.contains(db.session, "after_flush", _after_flush):
        event.listen(db.session, "after_flush", _after_flush)
        event.listen(db.session, "do_orm_execute", _do_orm_execute)
    _changes.install()
    _row_changes.install()
