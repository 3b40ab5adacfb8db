"""The week *structure* of a class, cached in the shared cache (issue 14).

"This week" reads, per class: the calendar it follows, the week's dates and lessons,
their knowledge points, their exactMatchOf equivalents and where the class is
(progress).  None of that depends on who asks, and it changes only when a calendar, a
class's progress or the framework (nodes, associations) is written, so it is cached
per class in the ``curriculum-weeks`` generation (app/common/cache.py) and a change
bumps that generation after its commit.  Who may see which *resource* is not cached:
the aligned-resources statement stays live for every reader, so publishing,
withdrawing, an alignment or a visibility change shows at once.

Invalidation is by the tables written, not by the services that write them, so a new
writer cannot forget it: every ORM flush and every ``session.execute`` of an INSERT,
UPDATE or DELETE on one of :data:`WATCHED` marks the unit of work, and its commit bumps
the generation (in every process sharing the cache).  The CASE import's COPY is marked
by hand (:func:`mark_changed`).  Until it commits, that unit of work reads and writes
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


def enabled() -> bool:
    """Whether this call may read and write cached week structures: only on a cache all
    processes share, and not in a unit of work that wrote a watched table (it would read
    the others' entries without its own change, or publish what may be rolled back)."""
    return current_app.config.get("CACHE_TYPE") == "RedisCache" and not _changes.marked()


def mark_changed(session: Session | None = None) -> None:
    """This unit of work changed the week structure (for writes no listener sees)."""
    _changes.mark(session)


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


def _after_flush(session, flush_context) -> None:
    for objects in (session.new, session.dirty, session.deleted):
        if any(isinstance(obj, WATCHED_MODELS) for obj in objects):
            _changes.mark(session)
            return


def _do_orm_execute(state) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in WATCHED:
            _changes.mark(state.session)


def _bump(_note) -> None:
    if current_app.config.get("CACHE_TYPE") == "RedisCache":
        cache.bump(SCOPE)


# Marked by a unit of work that wrote the week structure: it then reads and writes no
# cache entry, and its commit bumps the generation (a rollback forgets the mark).
_changes = CommitNote("curriculum-weeks", _bump)


def install() -> None:
    if not event.contains(db.session, "after_flush", _after_flush):
        event.listen(db.session, "after_flush", _after_flush)
        event.listen(db.session, "do_orm_execute", _do_orm_execute)
    _changes.install()
