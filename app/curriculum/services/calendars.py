"""Teaching calendars: create, edit as versions, move and shift lessons, override per class."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import School, User
from app.common.models import utcnow
from app.common.transaction import savepoint
from app.curriculum.models import (
    CalendarEntry,
    CalendarVersion,
    CalendarWeek,
    ClassRole,
    Level,
    SchoolClass,
    TeachingCalendar,
    WeekKind,
)
from app.curriculum.services.calendar_terms import (
    holiday_entry,
    parse_date,
    spread_lessons,
    term_weeks,
    validate_term,
)
from app.curriculum.services.classes import classes_of, get_class
from app.curriculum.services.nodes import get_node, lessons_of_volume, volume_title
from app.curriculum.services.permissions import (
    can_edit_calendar,
    can_read_calendar,
    is_class_member,
    require_user,
)
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db


def get_calendar(user: User | None, calendar_id: int, edit: bool = False) -> TeachingCalendar:
    user = require_user(user)
    calendar = db.session.get(TeachingCalendar, calendar_id)
    if calendar is None or not can_read_calendar(user, calendar):
        raise NotFound("Calendar not found.")
    if edit and not can_edit_calendar(user, calendar):
        raise Forbidden(
            "Only the district's admins (or, for a class calendar, its teachers) can edit it."
        )
    return calendar


def list_calendars(user: User | None) -> list[TeachingCalendar]:
    """Calendars ``user`` may see: her districts' and schools' calendars and those of her
    classes (all of them for platform admins), newest term first."""
    if user is None:
        return []
    statement = select(TeachingCalendar)
    if not user.is_platform_admin:
        class_ids = [c.id for c in classes_of(user)]
        if user.is_teacher:
            class_ids += list(
                db.session.execute(
                    select(SchoolClass.id).where(
                        SchoolClass.school_id.in_(user.member_school_ids() or {0})
                    )
                ).scalars()
            )
        clauses = [
            TeachingCalendar.district_id.in_(user.admin_district_ids() or {0}),
            and_(
                TeachingCalendar.class_id.is_(None),
                TeachingCalendar.school_id.is_(None),
                TeachingCalendar.district_id.in_(user.member_district_ids() or {0}),
            ),
            and_(
                TeachingCalendar.class_id.is_(None),
                TeachingCalendar.school_id.in_(user.member_school_ids() or {0}),
            ),
            TeachingCalendar.class_id.in_(class_ids or [0]),
        ]
        statement = statement.where(or_(*clauses))
    return list(
        db.session.execute(
            statement.order_by(
                TeachingCalendar.term_start.desc(), TeachingCalendar.title, TeachingCalendar.id
            )
        ).scalars()
    )


def class_calendar(school_class: SchoolClass, subject: str, term: str) -> TeachingCalendar | None:
    """The class's own calendar for ``subject`` in ``term`` (there is at most one)."""
    return db.session.execute(
        select(TeachingCalendar).filter_by(class_id=school_class.id, subject=subject, term=term)
    ).scalar_one_or_none()


def _second_class_calendar() -> Conflict:
    return Conflict(
        "This class already has a calendar for this subject and term.",
        fields={"term": ["The class already has a calendar for this term."]},
    )


def _inserted(calendar: TeachingCalendar) -> bool:
    """Insert ``calendar``; False when the class got a calendar for the same subject and
    term meanwhile (the unique constraint), with only this insert undone."""
    try:
        with savepoint():
            db.session.add(calendar)
            db.session.flush()
    except IntegrityError:
        return False
    return True


def create_calendar(user: User | None, data: dict) -> TeachingCalendar:
    """A calendar for a district (or one of its schools, or a class) with the default plan:
    the volume's lessons spread over the term's teaching weeks."""
    user = require_user(user)
    volume = get_node(data["volume_id"])
    if volume.level != Level.VOLUME:
        raise Invalid("A calendar plans one volume.", fields={"volume_id": ["Not a volume."]})
    school_class = db.session.get(SchoolClass, data["class_id"]) if data.get("class_id") else None
    school = db.session.get(School, data["school_id"]) if data.get("school_id") else None
    if data.get("class_id") and school_class is None:
        raise NotFound("Class not found.")
    if data.get("school_id") and school is None:
        raise NotFound("School not found.")
    if school_class is not None:
        school = school_class.school
    district_id = school.district_id if school else data.get("district_id")
    if district_id is None:
        admin_of = sorted(user.admin_district_ids())
        district_id = admin_of[0] if admin_of else user.district_id
    if district_id is None:
        raise Invalid("Which district?", fields={"district_id": ["Required."]})
    allowed = (
        user.is_platform_admin
        or user.is_district_admin(district_id)
        or (school_class is not None and is_class_member(user, school_class, ClassRole.TEACHER))
    )
    if not allowed:
        raise Forbidden("Only district admins create calendars (teachers: for their own class).")
    term_start, term_end = (
        parse_date(data["term_start"], "term_start"),
        parse_date(data["term_end"], "term_end"),
    )
    holidays = [holiday_entry(h) for h in data.get("holidays") or []]
    validate_term(term_start, term_end, holidays)
    subject = data.get("subject") or volume.subject
    edition = data.get("edition") or volume.edition
    if not subject or not edition:
        raise Invalid(
            "The volume has no subject or edition.",
            fields={"volume_id": ["No subject or edition."]},
        )
    calendar = TeachingCalendar(
        title=data.get("title") or f"{data['term']} {volume_title(volume)}",
        district_id=district_id,
        school_id=school.id if school else None,
        class_id=school_class.id if school_class else None,
        term=data["term"],
        subject=subject,
        edition=edition,
        grade=volume.grade,
        volume_id=volume.id,
        term_start=term_start,
        term_end=term_end,
        lessons_per_week=data.get("lessons_per_week") or 5,
        holidays=holidays,
        current_version=0,
        created_by_id=user.id,
    )
    if school_class is not None and class_calendar(school_class, subject, data["term"]):
        raise _second_class_calendar()
    if not _inserted(calendar):
        raise _second_class_calendar()
    # Review and exam weeks (``kinds``: week number -> kind) take no new lessons.
    kinds = {int(k): v for k, v in (data.get("kinds") or {}).items()}
    weeks = [
        {**w, "kind": kinds.get(w["week"], WeekKind.TEACHING.value)}
        for w in term_weeks(term_start, term_end, holidays)
    ]
    unknown = sorted(set(kinds) - {w["week"] for w in weeks})
    if unknown:
        raise Invalid(
            "No such week.",
            fields={"kinds": [f"Week {w} is not in this term." for w in unknown]},
        )
    capacity = [
        {**w, "teaching_days": w["teaching_days"] if w["kind"] == "teaching" else 0} for w in weeks
    ]
    plan = spread_lessons(
        [n.id for n in lessons_of_volume(volume)], capacity, calendar.lessons_per_week
    )
    _write_plan(
        user,
        calendar,
        [{**w, "lessons": plan[w["week"]]} for w in weeks],
        "Generated default plan.",
    )
    return calendar


WEEK_KINDS = tuple(k.value for k in WeekKind)


def _validate_weeks(calendar: TeachingCalendar, weeks: list[dict]) -> None:
    errors: dict[str, list[str]] = {}
    lessons = {n.id: n for n in lessons_of_volume(calendar.volume)}
    seen_weeks, scheduled = {}, {}
    ranges = []
    for i, week in enumerate(weeks):
        where = f"weeks[{i}]"
        number = week["week"]
        if number in seen_weeks:
            errors.setdefault(where, []).append(f"Week {number} appears twice.")
        seen_weeks[number] = where
        start, end = week["starts_on"], week["ends_on"]
        if end < start:
            errors.setdefault(where, []).append(f"Week {number} ends before it starts.")
        if start < calendar.term_start or end > calendar.term_end:
            errors.setdefault(where, []).append(
                f"Week {number} ({start} to {end}) is outside the term "
                f"({calendar.term_start} to {calendar.term_end})."
            )
        ranges.append((start, end, number, where))
        if week.get("kind", WeekKind.TEACHING) not in WEEK_KINDS:
            errors.setdefault(where, []).append(
                f"Week {number} has an unknown kind (teaching, review or exam)."
            )
        for node_id in week.get("lessons", []):
            if node_id not in lessons:
                errors.setdefault(where, []).append(
                    f"Lesson {node_id} is not a lesson of this volume."
                )
            elif node_id in scheduled:
                errors.setdefault(where, []).append(
                    f"Lesson {lessons[node_id].title} is scheduled twice "
                    f"(weeks {scheduled[node_id]} and {number})."
                )
            else:
                scheduled[node_id] = number
    ranges.sort()
    for (_s1, e1, n1, _w1), (s2, _e2, n2, w2) in zip(ranges, ranges[1:], strict=False):
        if s2 <= e1:
            errors.setdefault(w2, []).append(
                f"Week {n2} overlaps week {n1} ({s2} is before {e1} ends)."
            )
    if errors:
        raise Invalid("The calendar is not valid.", fields=errors)


def _write_plan(
    user: User, calendar: TeachingCalendar, weeks: list[dict], note: str | None
) -> CalendarVersion:
    _validate_weeks(calendar, weeks)
    db.session.execute(delete(CalendarEntry).where(CalendarEntry.calendar_id == calendar.id))
    db.session.execute(delete(CalendarWeek).where(CalendarWeek.calendar_id == calendar.id))
    db.session.flush()
    for week in weeks:
        db.session.add(
            CalendarWeek(
                calendar_id=calendar.id,
                week=week["week"],
                starts_on=week["starts_on"],
                ends_on=week["ends_on"],
                kind=WeekKind(week.get("kind") or WeekKind.TEACHING),
            )
        )
        for position, node_id in enumerate(week.get("lessons", [])):
            db.session.add(
                CalendarEntry(
                    calendar_id=calendar.id, week=week["week"], position=position, node_id=node_id
                )
            )
    calendar.current_version += 1
    calendar.updated_at = utcnow()
    version = CalendarVersion(
        calendar_id=calendar.id,
        version=calendar.current_version,
        note=(note or "")[:500] or None,
        created_by_id=user.id,
        data={
            "term": calendar.term,
            "term_start": calendar.term_start.isoformat(),
            "term_end": calendar.term_end.isoformat(),
            "lessons_per_week": calendar.lessons_per_week,
            "holidays": calendar.holidays,
            "weeks": [
                {
                    "week": w["week"],
                    "starts_on": w["starts_on"].isoformat(),
                    "ends_on": w["ends_on"].isoformat(),
                    "kind": str(WeekKind(w.get("kind") or WeekKind.TEACHING)),
                    "lessons": list(w.get("lessons", [])),
                }
                for w in weeks
            ],
        },
    )
    db.session.add(version)
    db.session.flush()
    db.session.expire(calendar, ["weeks"])
    return version


def calendar_plan(calendar: TeachingCalendar) -> list[dict]:
    """The current weeks with their lesson nodes, in order."""
    entries = defaultdict(list)
    for entry in db.session.execute(
        select(CalendarEntry)
        .where(CalendarEntry.calendar_id == calendar.id)
        .order_by(CalendarEntry.week, CalendarEntry.position)
    ).scalars():
        entries[entry.week].append(entry.node)
    return [
        {
            "week": w.week,
            "starts_on": w.starts_on,
            "ends_on": w.ends_on,
            "kind": (w.kind or WeekKind.TEACHING).value,
            "lessons": entries.get(w.week, []),
        }
        for w in calendar.weeks
    ]


def save_calendar(user: User | None, calendar_id: int, data: dict) -> TeachingCalendar:
    """Save a new version: term dates, holidays, lessons per week and/or the weeks.

    Without ``weeks`` the lessons stay in their week numbers (dates follow the term);
    with ``regenerate`` the default plan is spread again.
    """
    calendar = get_calendar(user, calendar_id, edit=True)
    plan_now = calendar_plan(calendar)
    current = {p["week"]: [n.id for n in p["lessons"]] for p in plan_now}
    # A week keeps its kind (review, exam) through every save that does not change it.
    kinds = {p["week"]: p["kind"] for p in plan_now}
    kinds.update({int(k): v for k, v in (data.get("kinds") or {}).items()})
    if "title" in data and data["title"]:
        calendar.title = data["title"][:200]
    term_start = parse_date(data.get("term_start", calendar.term_start), "term_start")
    term_end = parse_date(data.get("term_end", calendar.term_end), "term_end")
    holidays = (
        [holiday_entry(h) for h in data["holidays"]]
        if "holidays" in data
        else list(calendar.holidays or [])
    )
    validate_term(term_start, term_end, holidays)
    calendar.term_start, calendar.term_end, calendar.holidays = term_start, term_end, holidays
    if data.get("lessons_per_week"):
        calendar.lessons_per_week = data["lessons_per_week"]
    defaults = {
        w["week"]: {**w, "kind": kinds.get(w["week"], WeekKind.TEACHING.value)}
        for w in term_weeks(term_start, term_end, holidays)
    }
    if data.get("regenerate"):
        # Review and exam weeks take no new lessons.
        capacity = [
            {**w, "teaching_days": w["teaching_days"] if w["kind"] == "teaching" else 0}
            for w in defaults.values()
        ]
        plan = spread_lessons(
            [n.id for n in lessons_of_volume(calendar.volume)],
            capacity,
            calendar.lessons_per_week,
        )
        weeks = [{**w, "lessons": plan[n]} for n, w in defaults.items()]
    elif data.get("weeks") is not None:
        weeks = []
        for i, week in enumerate(data["weeks"]):
            default = defaults.get(week["week"], {})
            starts_on = week.get("starts_on") or default.get("starts_on")
            ends_on = week.get("ends_on") or default.get("ends_on")
            if starts_on is None or ends_on is None:
                raise Invalid(
                    "The calendar is not valid.",
                    fields={
                        f"weeks[{i}]": [
                            f"Week {week['week']} is outside the term ({term_start} to {term_end})."
                        ]
                    },
                )
            weeks.append(
                {
                    "week": week["week"],
                    "starts_on": parse_date(starts_on, f"weeks[{i}].starts_on"),
                    "ends_on": parse_date(ends_on, f"weeks[{i}].ends_on"),
                    "kind": week.get("kind") or kinds.get(week["week"], WeekKind.TEACHING.value),
                    "lessons": list(week.get("lessons") or []),
                }
            )
    else:
        weeks = [{**w, "lessons": current.get(n, [])} for n, w in defaults.items()]
        lost = [lesson for n, lessons in current.items() if n not in defaults for lesson in lessons]
        if lost and weeks:
            weeks[-1]["lessons"] = weeks[-1]["lessons"] + lost
    _write_plan(user, calendar, weeks, data.get("note"))
    return calendar


def move_lesson(user: User | None, calendar_id: int, node_id: int, week: int) -> TeachingCalendar:
    """Put one lesson into another week (at its end)."""
    calendar = get_calendar(user, calendar_id, edit=True)
    plan = [
        {**p, "lessons": [n.id for n in p["lessons"] if n.id != node_id]}
        for p in calendar_plan(calendar)
    ]
    target = next((p for p in plan if p["week"] == week), None)
    if target is None:
        raise Invalid("No such week.", fields={"week": [f"Week {week} is not in this calendar."]})
    target["lessons"].append(node_id)
    _write_plan(user, calendar, plan, f"Moved lesson {node_id} to week {week}.")
    return calendar


def shift_calendar(
    user: User | None, calendar_id: int, by: int = 1, from_week: int = 1
) -> TeachingCalendar:
    """Move every lesson from ``from_week`` on by ``by`` weeks (later when positive);
    lessons pushed past either end collect in the first or last week."""
    calendar = get_calendar(user, calendar_id, edit=True)
    if by == 0:
        return calendar
    plan = calendar_plan(calendar)
    numbers = [p["week"] for p in plan]
    start = next((i for i, n in enumerate(numbers) if n >= from_week), len(numbers))
    moved = [
        {**p, "lessons": [n.id for n in p["lessons"]] if i < start else []}
        for i, p in enumerate(plan)
    ]
    for i in range(start, len(plan)):
        target = min(max(i + by, 0), len(plan) - 1)
        moved[target]["lessons"] = moved[target]["lessons"] + [n.id for n in plan[i]["lessons"]]
    _write_plan(user, calendar, moved, f"Shifted by {by} week(s) from week {from_week}.")
    return calendar


def override_calendar(user: User | None, calendar_id: int, class_id: int) -> TeachingCalendar:
    """A teacher's copy of a district or school calendar for her class (returned as is
    when she already has one for that term and subject)."""
    user = require_user(user)
    base = get_calendar(user, calendar_id)
    school_class = get_class(user, class_id, manage=True)
    if school_class.school.district_id != base.district_id:
        raise Invalid("The class is in another district.", fields={"class_id": ["Other district."]})
    existing = class_calendar(school_class, base.subject, base.term)
    if existing is not None:
        return existing
    calendar = TeachingCalendar(
        title=f"{base.title} · {school_class.name}"[:200],
        district_id=base.district_id,
        school_id=school_class.school_id,
        class_id=school_class.id,
        based_on_id=base.id,
        term=base.term,
        subject=base.subject,
        edition=base.edition,
        grade=base.grade,
        volume_id=base.volume_id,
        term_start=base.term_start,
        term_end=base.term_end,
        lessons_per_week=base.lessons_per_week,
        holidays=list(base.holidays or []),
        current_version=0,
        created_by_id=user.id,
    )
    if not _inserted(calendar):
        # Another request made the class's copy at the same moment: that one is hers.
        return class_calendar(school_class, base.subject, base.term)
    plan = [{**p, "lessons": [n.id for n in p["lessons"]]} for p in calendar_plan(base)]
    _write_plan(
        user, calendar, plan, f"Copied from calendar {base.id} version {base.current_version}."
    )
    return calendar


def calendar_versions(user: User | None, calendar_id: int) -> list[CalendarVersion]:
    calendar = get_calendar(user, calendar_id)
    return list(
        db.session.execute(
            select(CalendarVersion)
            .where(CalendarVersion.calendar_id == calendar.id)
            .order_by(CalendarVersion.version.desc())
        ).scalars()
    )


def restore_calendar_version(user: User | None, calendar_id: int, version: int) -> TeachingCalendar:
    calendar = get_calendar(user, calendar_id, edit=True)
    row = db.session.execute(
        select(CalendarVersion).filter_by(calendar_id=calendar.id, version=version)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("Calendar version not found.")
    data = row.data
    calendar.term_start, calendar.term_end = (
        date.fromisoformat(data["term_start"]),
        date.fromisoformat(data["term_end"]),
    )
    calendar.holidays, calendar.lessons_per_week = data["holidays"], data["lessons_per_week"]
    weeks = [
        {
            "week": w["week"],
            "starts_on": date.fromisoformat(w["starts_on"]),
            "ends_on": date.fromisoformat(w["ends_on"]),
            "kind": w.get("kind", WeekKind.TEACHING.value),
            "lessons": w["lessons"],
        }
        for w in data["weeks"]
    ]
    _write_plan(user, calendar, weeks, f"Restored version {version}.")
    return calendar


def delete_calendar(user: User | None, calendar_id: int) -> None:
    calendar = get_calendar(user, calendar_id, edit=True)
    db.session.delete(calendar)
    db.session.flush()


def district_calendars_for(user: User | None, school_class: SchoolClass) -> list[TeachingCalendar]:
    """District and school calendars of the class's district that ``user`` may see
    (those a teacher may adapt for the class)."""
    district_id = school_class.school.district_id
    return [c for c in list_calendars(user) if c.class_id is None and c.district_id == district_id]


def classes_to_override(user: User | None, calendar: TeachingCalendar) -> list[SchoolClass]:
    """The classes ``user`` teaches that could follow their own copy of ``calendar``
    (none when it already is a class calendar)."""
    if calendar.class_id is not None:
        return []
    return [c for c in classes_of(user, "teacher") if c.school.district_id == calendar.district_id]


def assign_lessons(
    user: User | None,
    calendar_id: int,
    weeks_of: dict[int, int],
    note: str | None = None,
    kinds: dict[int, str] | None = None,
    order: dict[int, int] | None = None,
) -> TeachingCalendar:
    """Save a new version where each lesson ``node_id`` is taught in week
    ``weeks_of[node_id]`` (lessons left out leave the plan), and week ``n`` is of kind
    ``kinds[n]`` (teaching, review, exam; weeks left out keep theirs).  Within a week
    lessons follow ``order[node_id]`` when given (the editor's drag and drop), else
    their planned order; lessons new to the week follow, by id."""
    calendar = get_calendar(user, calendar_id, edit=True)
    plan = calendar_plan(calendar)
    known_weeks = {p["week"] for p in plan}
    unknown = sorted((set(weeks_of.values()) | set(kinds or {})) - known_weeks)
    if unknown:
        raise Invalid(
            "No such week.",
            fields={"weeks": [f"Week {w} is not in this calendar." for w in unknown]},
        )
    bad_kinds = {w: k for w, k in (kinds or {}).items() if k not in WEEK_KINDS}
    if bad_kinds:
        raise Invalid(
            "The calendar is not valid.",
            fields={
                "kinds": [
                    f"Week {w}: unknown kind {k!r} (teaching, review or exam)."
                    for w, k in bad_kinds.items()
                ]
            },
        )
    planned = {n.id: (p["week"], i) for p in plan for i, n in enumerate(p["lessons"])}
    wanted = order or {}
    by_week: dict[int, list[int]] = defaultdict(list)
    for node_id, week in weeks_of.items():
        by_week[week].append(node_id)
    week_kinds = {p["week"]: p["kind"] for p in plan} | dict(kinds or {})
    weeks = [
        {
            "week": p["week"],
            "starts_on": p["starts_on"],
            "ends_on": p["ends_on"],
            "kind": week_kinds[p["week"]],
            "lessons": sorted(
                by_week.get(p["week"], []),
                key=lambda n: (wanted.get(n, 10_000), planned.get(n, (99, n))),
            ),
        }
        for p in plan
    ]
    return save_calendar(user, calendar.id, {"weeks": weeks, "note": note})
