"""What a class learns in a given week, and which resources fit it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import NamedTuple

from sqlalchemy import Date, and_, bindparam, case, func, or_, select

from app.accounts.models import User
from app.catalog.models import Resource
from app.curriculum.models import (
    CalendarEntry,
    CalendarWeek,
    ClassEdition,
    ClassMember,
    ClassProgress,
    Node,
    SchoolClass,
    TeachingCalendar,
)
from app.curriculum.services import week_cache
from app.curriculum.services.alignment import aligned_resources
from app.curriculum.services.calendar_terms import today, week_number
from app.curriculum.services.calendars import get_calendar
from app.curriculum.services.classes import classes_of, district_classes, get_class
from app.curriculum.services.nodes import equivalents, knowledge_points_of
from app.curriculum.services.permissions import require_user
from app.extensions import db


def _week_and_lessons(calendar: TeachingCalendar, week: int):
    """The week's row (dates) and its lessons in teaching order, in one statement."""
    found = db.session.execute(
        select(CalendarWeek, Node)
        .outerjoin(
            CalendarEntry,
            and_(
                CalendarEntry.calendar_id == CalendarWeek.calendar_id,
                CalendarEntry.week == CalendarWeek.week,
            ),
        )
        .outerjoin(Node, Node.id == CalendarEntry.node_id)
        .where(CalendarWeek.calendar_id == calendar.id, CalendarWeek.week == week)
        .order_by(CalendarEntry.position)
    ).all()
    if not found:  # a week outside the calendar: no dates, and lessons only if planned
        return None, _planned_lessons(calendar.id, week)
    return found[0][0], [node for _, node in found if node is not None]


def _planned_lessons(calendar_id: int, week: int) -> list[Node]:
    return list(
        db.session.execute(
            select(Node)
            .join(CalendarEntry, CalendarEntry.node_id == Node.id)
            .where(CalendarEntry.calendar_id == calendar_id, CalendarEntry.week == week)
            .order_by(CalendarEntry.position)
        ).scalars()
    )


def lessons_for_week(user: User | None, calendar_id: int, week: int) -> list[Node]:
    """The lessons planned for ``week`` of a calendar, in teaching order."""
    return _planned_lessons(get_calendar(user, calendar_id).id, week)


def resources_for_week(user: User | None, calendar_id: int, week: int) -> list[Resource]:
    """Published resources ``user`` may see aligned to the week's lessons (or their
    knowledge points, or equivalent lessons of other editions), in lesson order."""
    lessons = lessons_for_week(user, calendar_id, week)
    aligned = aligned_resources(user, lessons)
    out, seen = [], set()
    for lesson in lessons:
        for entry in aligned.get(lesson.id, []):
            if entry.resource.content_id not in seen:
                seen.add(entry.resource.content_id)
                out.append(entry.resource)
    return out


def week_plan(user: User | None, calendar_id: int, week: int) -> list[dict]:
    """One week of a calendar as a reader sees it: each lesson with its knowledge points
    and the resources ``user`` may see aligned to it (``node``, ``knowledge_points``,
    ``resources`` of :class:`AlignedResource`)."""
    lessons = lessons_for_week(user, calendar_id, week)
    knowledge_points = knowledge_points_of(lessons)
    aligned = aligned_resources(user, lessons, knowledge_points=knowledge_points)
    return [
        {
            "node": lesson,
            "knowledge_points": knowledge_points.get(lesson.identifier, []),
            "resources": aligned.get(lesson.id, []),
        }
        for lesson in lessons
    ]


def effective_calendar(
    school_class: SchoolClass, subject: str, day: date
) -> TeachingCalendar | None:
    """The calendar a class follows for ``subject`` on ``day``: the teacher's class
    calendar, else the school's, else the district's, for the class's edition."""
    return _followed(
        school_class, subject, TeachingCalendar.term_start <= day, TeachingCalendar.term_end >= day
    )


def last_ended_calendar(
    school_class: SchoolClass, subject: str, day: date
) -> TeachingCalendar | None:
    """The calendar the class followed in its latest term that ended before ``day``
    (between terms there is no :func:`effective_calendar`), by the same precedence."""
    return _followed(school_class, subject, TeachingCalendar.term_end < day, latest=True)


def _followed(school_class: SchoolClass, subject: str, *when, latest: bool = False):
    edition = school_class.edition_for(subject)
    if edition is None:
        return None
    candidates = (
        db.session.execute(
            select(TeachingCalendar).where(
                TeachingCalendar.subject == subject,
                TeachingCalendar.edition == edition,
                *when,
                TeachingCalendar.district_id == school_class.school.district_id,
                or_(
                    TeachingCalendar.class_id == school_class.id,
                    and_(
                        TeachingCalendar.class_id.is_(None),
                        TeachingCalendar.school_id == school_class.school_id,
                    ),
                    and_(TeachingCalendar.class_id.is_(None), TeachingCalendar.school_id.is_(None)),
                ),
            )
        )
        .scalars()
        .all()
    )
    if school_class.grade:
        candidates = [c for c in candidates if c.grade in (None, school_class.grade)]
    if latest and candidates:
        last_end = max(c.term_end for c in candidates)
        candidates = [c for c in candidates if c.term_end == last_end]
    if not candidates:
        return None
    return sorted(candidates, key=lambda c: (0 if c.class_id else 1 if c.school_id else 2, -c.id))[
        0
    ]


class FollowedCalendar(NamedTuple):
    """The calendar a class follows for one subject on a day, as a row
    (:func:`followed_calendars`); ``term_start`` is enough for ``week_number``."""

    class_id: int
    subject: str
    calendar_id: int
    term_start: date


def followed_calendars(user: User | None, day: date) -> list[FollowedCalendar]:
    """For each class ``user`` belongs to (in any role, by name as :func:`classes_of`
    lists them) and each of its editions (by subject), the calendar
    :func:`effective_calendar` gives on ``day``; classes and subjects without one are
    left out.  One statement built once per process, rows instead of class, school,
    edition and calendar entities (they were a statement for the classes and one per
    class and subject: issue 14, seventh round)."""
    if user is None:
        return []
    rows = db.session.execute(_followed_statement(), {"user_id": user.id, "day": day})
    return [FollowedCalendar(*row) for row in rows]


@cache
def _followed_statement():
    """:func:`_followed`'s choice for every class of a user (``user_id``) and subject
    on ``day`` (bind parameters): the same candidates, the first by the same precedence
    (class, school, district calendar, then the newest)."""
    from app.accounts.models import School

    day = bindparam("day", type_=Date)
    calendar = TeachingCalendar
    precedence = case(
        (calendar.class_id.is_not(None), 0), (calendar.school_id.is_not(None), 1), else_=2
    )
    candidates = (
        select(
            SchoolClass.id.label("class_id"),
            SchoolClass.name,
            ClassEdition.subject,
            calendar.id.label("calendar_id"),
            calendar.term_start,
            func.row_number()
            .over(
                partition_by=(SchoolClass.id, ClassEdition.subject),
                order_by=(precedence, calendar.id.desc()),
            )
            .label("choice"),
        )
        .join(School, School.id == SchoolClass.school_id)
        .join(ClassEdition, ClassEdition.class_id == SchoolClass.id)
        .join(
            calendar,
            and_(
                calendar.subject == ClassEdition.subject,
                calendar.edition == ClassEdition.edition,
                calendar.term_start <= day,
                calendar.term_end >= day,
                calendar.district_id == School.district_id,
                or_(
                    calendar.class_id == SchoolClass.id,
                    and_(calendar.class_id.is_(None), calendar.school_id == SchoolClass.school_id),
                    and_(calendar.class_id.is_(None), calendar.school_id.is_(None)),
                ),
                # A class with a grade follows calendars of no grade or of its grade.
                or_(
                    SchoolClass.grade.is_(None),
                    SchoolClass.grade == "",
                    calendar.grade.is_(None),
                    calendar.grade == SchoolClass.grade,
                ),
            ),
        )
        .where(
            SchoolClass.id.in_(
                select(ClassMember.class_id).where(ClassMember.user_id == bindparam("user_id"))
            )
        )
        .subquery("candidates")
    )
    return (
        select(
            candidates.c.class_id,
            candidates.c.subject,
            candidates.c.calendar_id,
            candidates.c.term_start,
        )
        .where(candidates.c.choice == 1)
        .order_by(candidates.c.name, candidates.c.class_id, candidates.c.subject)
    )


@dataclass
class WeekView:
    school_class: SchoolClass
    calendar: TeachingCalendar
    week: int
    starts_on: date | None
    ends_on: date | None
    lessons: list[dict] = field(default_factory=list)
    progress: Node | None = None
    progress_delta: int | None = None  # lessons ahead (+) or behind (-) of the plan
    kind: str = "teaching"  # teaching | review | exam


def this_week(
    user: User | None,
    class_id: int | None = None,
    on: date | None = None,
    offset: int = 0,
    subject: str | None = None,
) -> list[WeekView]:
    """What ``user``'s classes (or the one class) learn in the week of ``on`` (+ ``offset``
    weeks): lessons, their knowledge points and the resources aligned to them."""
    return weeks_at_offsets(user, (offset,), class_id, on, subject)[offset]


def weeks_at_offsets(
    user: User | None,
    offsets: tuple[int, ...],
    class_id: int | None = None,
    on: date | None = None,
    subject: str | None = None,
) -> dict[int, list[WeekView]]:
    """:func:`this_week` for several offsets at once (e.g. this, last and next week):
    the classes, calendars, knowledge points and aligned resources are each read once
    for all the weeks.  Offset → views.

    Each class's week structure (calendar, weeks, lessons, knowledge points,
    equivalents, progress) comes from the shared cache when it is there
    (:mod:`week_cache`); the classes ``user`` is in and the resources she may see are
    read live on every call."""
    user = require_user(user)
    on = on or today()
    offsets = tuple(offsets)
    classes = [get_class(user, class_id)] if class_id is not None else classes_of(user)
    structures = week_cache.class_weeks(
        classes, offsets, on, subject, lambda some: _class_weeks(some, offsets, on, subject)
    )
    lessons_by_id: dict[int, Node] = {}
    kps: dict[str, list[Node]] = {}
    matches: dict[str, set[str]] = {}
    for structure in structures:
        for *_rest, lessons in structure["found"]:
            lessons_by_id.update((n.id, n) for n in lessons)
        kps.update(structure["knowledge_points"])
        matches.update(structure["equivalents"])
    aligned = aligned_resources(
        user,
        list(lessons_by_id.values()),
        knowledge_points=kps,
        summaries=True,
        equivalent_identifiers=matches,
    )
    views: dict[int, list[WeekView]] = {offset: [] for offset in offsets}
    for school_class, structure in zip(classes, structures, strict=True):
        for offset, class_subject, calendar, number, starts, ends, kind, lessons in structure[
            "found"
        ]:
            view = WeekView(
                school_class,
                calendar,
                number,
                starts,
                ends,
                [
                    {
                        "node": n,
                        "knowledge_points": kps.get(n.identifier, []),
                        "resources": aligned.get(n.id, []),
                    }
                    for n in lessons
                ],
                kind=kind,
            )
            at = structure["progress"].get(class_subject)
            if at is not None:
                view.progress = at
                view.progress_delta = structure["deltas"].get(class_subject)
            views[offset].append(view)
    return views


def _class_weeks(
    classes: list[SchoolClass], offsets: tuple[int, ...], on: date, subject: str | None
) -> list[dict]:
    """The week structure of each class (what :mod:`week_cache` keeps), read together:
    one statement for the knowledge points, one for the equivalents and one for the
    progress of all of them."""
    per_class = []  # per class: (offset, subject, calendar, number, starts, ends, kind, lessons)
    for school_class in classes:
        found = []
        for class_edition in school_class.editions:
            if subject and class_edition.subject != subject:
                continue
            calendar = effective_calendar(school_class, class_edition.subject, on)
            if calendar is None:
                continue
            for offset in offsets:
                number = week_number(calendar, on) + offset
                row, lessons = _week_and_lessons(calendar, number)
                found.append(
                    (
                        offset,
                        class_edition.subject,
                        calendar,
                        number,
                        row.starts_on if row else None,
                        row.ends_on if row else None,
                        row.kind.value if row is not None and row.kind else "teaching",
                        lessons,
                    )
                )
        per_class.append(found)
    every_lesson = list({n.id: n for found in per_class for *_r, ls in found for n in ls}.values())
    kps = knowledge_points_of(every_lesson)
    identifiers = {n.identifier for n in every_lesson} | {
        kp.identifier for points in kps.values() for kp in points
    }
    matches = equivalents(identifiers)
    progress = _progress_of([c for c, found in zip(classes, per_class, strict=True) if found])
    out = []
    delta_by_calendar: dict[tuple[int, int], int | None] = {}
    for school_class, found in zip(classes, per_class, strict=True):
        mine = {n.identifier for *_r, lessons in found for n in lessons}
        points = {i: list(kps[i]) for i in mine if kps.get(i)}
        wanted = mine | {kp.identifier for nodes in points.values() for kp in nodes}
        at_by_subject = progress.get(school_class.id, {})
        deltas = {}
        for _offset, class_subject, calendar, *_rest in found:
            at = at_by_subject.get(class_subject)
            if at is not None and class_subject not in deltas:
                key = (calendar.id, at.id)
                if key not in delta_by_calendar:
                    delta_by_calendar[key] = _progress_delta(calendar, at, on)
                deltas[class_subject] = delta_by_calendar[key]
        out.append(
            {
                "found": found,
                "progress": {s: n for s, n in at_by_subject.items() if s in deltas},
                "deltas": deltas,
                "knowledge_points": points,
                "equivalents": {i: matches[i] for i in wanted},
            }
        )
    return out


def _progress_of(classes: list[SchoolClass]) -> dict[int, dict[str, Node]]:
    """Class id → subject → the lesson the class is at, for all ``classes`` at once."""
    if not classes:
        return {}
    out: dict[int, dict[str, Node]] = {}
    for class_id, subject, node in db.session.execute(
        select(ClassProgress.class_id, ClassProgress.subject, Node)
        .join(Node, Node.id == ClassProgress.node_id)
        .where(ClassProgress.class_id.in_([c.id for c in classes]))
    ):
        out.setdefault(class_id, {})[subject] = node
    return out


def _progress_delta(calendar: TeachingCalendar, node: Node, on: date) -> int | None:
    """Lessons the class is ahead (+) or behind (-) of the calendar's plan on ``on``."""
    planned = week_number(calendar, on)
    planned_lessons = (
        db.session.execute(
            select(Node.order_in_volume)
            .join(CalendarEntry, CalendarEntry.node_id == Node.id)
            .where(CalendarEntry.calendar_id == calendar.id, CalendarEntry.week <= planned)
        )
        .scalars()
        .all()
    )
    if node.order_in_volume and planned_lessons:
        return node.order_in_volume - max(o or 0 for o in planned_lessons)
    return None


@dataclass
class ClassCalendars:
    """A class of the administrator's districts with the calendar it follows in each
    subject on a given day (what the district pages link to)."""

    school_class: SchoolClass
    calendars: list[TeachingCalendar]


def district_class_calendars(user: User | None, on: date | None = None) -> list[ClassCalendars]:
    """Every class of the districts ``user`` administers, each with the calendars it
    follows on ``on`` (today by default); empty for anyone but administrators."""
    on = on or today()
    out = []
    for school_class in district_classes(user):
        calendars = [
            calendar
            for edition in school_class.editions
            if (calendar := effective_calendar(school_class, edition.subject, on)) is not None
        ]
        out.append(ClassCalendars(school_class, calendars))
    return out
