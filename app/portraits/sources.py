"""Everything portraits reads from other features, in one place (the adapter to adapt
when they change).  Only their public functions, tables read-only, and documented
vocabulary are used here."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import select

from app.common.cache import BuiltFor
from app.errors import AppError
from app.extensions import db

# --- xAPI (the LRS) -------------------------------------------------------------------------


def statements_after(position: int, limit: int) -> list[tuple[int, dict]]:
    """Stored, non-voided statements with primary key > ``position``, oldest first."""
    from app.xapi.models import Statement

    rows = db.session.execute(
        select(Statement.id, Statement.full)
        .where(Statement.id > position, Statement.voided.is_(False))
        .order_by(Statement.id)
        .limit(limit)
    ).all()
    return [(pk, full) for pk, full in rows]


def last_statement_position() -> int:
    from sqlalchemy import func

    from app.xapi.models import Statement

    return db.session.execute(select(func.max(Statement.id))).scalar() or 0


def knowledge_points_extension() -> str:
    from app.xapi.emit import vocab

    return vocab("extensions", "knowledge-points")


def via_extension() -> str:
    from app.xapi.emit import vocab

    return vocab("extensions", "via")


def resource_activity_prefix() -> str:
    from app.xapi.emit import base_url

    return f"{base_url()}/resources/"


def course_activity_prefix() -> str:
    from app.xapi.emit import base_url

    return f"{base_url()}/courses/"


def video_time_extensions() -> tuple[str, str]:
    from app.xapi.emit import VIDEO_TIME_FROM, VIDEO_TIME_TO

    return VIDEO_TIME_FROM, VIDEO_TIME_TO


# --- accounts -------------------------------------------------------------------------------


def user_ids_by_public_id(public_ids: set[str]) -> dict[str, int]:
    from app.accounts.models import User

    if not public_ids:
        return {}
    rows = db.session.execute(
        select(User.public_id, User.id).where(User.public_id.in_(public_ids))
    ).all()
    return dict(rows)


def get_user(user_id: int):
    from app.accounts.models import User

    return db.session.get(User, user_id)


def user_by_email_or_public_id(value: str):
    from app.accounts.models import User

    return db.session.execute(
        select(User).where((User.email == value) | (User.public_id == value))
    ).scalar_one_or_none()


# --- curriculum -----------------------------------------------------------------------------


def canonical_skills(identifiers: set[str]) -> dict[str, str]:
    """Each knowledge point → the one identifier of its exactMatchOf group (the smallest),
    so equivalent knowledge points of different editions share one mastery variable."""
    from app.curriculum.services import equivalents

    if not identifiers:
        return {}
    return {i: min(group) for i, group in equivalents(set(identifiers)).items()}


def equivalent_identifiers(identifiers: set[str]) -> dict[str, set[str]]:
    from app.curriculum.services import equivalents

    return equivalents(set(identifiers)) if identifiers else {}


def knowledge_points_of_resources(content_ids: set[str]) -> dict[str, list[str]]:
    """Knowledge points a resource is aligned to: directly, or through an aligned lesson."""
    from app.curriculum import services
    from app.curriculum.models import Level, Node

    out: dict[str, list[str]] = {}
    for content_id in content_ids:
        points: list[str] = []
        lesson_ids = []
        for alignment in services.alignments_for_resource(content_id):
            if alignment.level == Level.KNOWLEDGE_POINT.value:
                points.append(alignment.identifier)
            elif alignment.level == Level.LESSON.value and alignment.alignment_type != "requires":
                lesson_ids.append(alignment.node_id)
        if lesson_ids:
            lessons = list(
                db.session.execute(select(Node).where(Node.id.in_(lesson_ids))).scalars()
            )
            for kps in services.knowledge_points_of(lessons).values():
                points += [kp.identifier for kp in kps]
        out[content_id] = list(dict.fromkeys(points))
    return out


def nodes_by_identifier(identifiers: set[str]) -> dict:
    from app.curriculum.models import Node

    if not identifiers:
        return {}
    return {
        n.identifier: n
        for n in db.session.execute(select(Node).where(Node.identifier.in_(identifiers))).scalars()
    }


def volume_map(volume_identifier: str) -> list[dict]:
    """Units → lessons → knowledge points of one textbook volume, in teaching order."""
    from app.curriculum import services

    volume = services.node_by_identifier(volume_identifier)
    if volume is None:
        return []
    lessons = services.lessons_of_volume(volume)
    kps = services.knowledge_points_of(lessons)
    units = []
    by_unit: dict[str, list] = defaultdict(list)
    for lesson in lessons:
        by_unit[lesson.unit_identifier or ""].append(lesson)
    for unit in services.units_of_volume(volume):
        units.append(
            {
                "unit": unit,
                "lessons": [
                    {"lesson": lesson, "knowledge_points": kps.get(lesson.identifier, [])}
                    for lesson in by_unit.get(unit.identifier, [])
                ],
            }
        )
    return units


def calendar_volume(calendar) -> str | None:
    """Identifier of the textbook volume a teaching calendar plans."""
    from app.curriculum.models import Node

    node = db.session.get(Node, calendar.volume_id) if calendar.volume_id else None
    return node.identifier if node is not None else None


def today() -> date:
    """Today for portraits (``PORTRAITS_TODAY``, an ISO date, pins it for tests and demos)."""
    from flask import current_app

    from app.curriculum.services import today as curriculum_today

    pinned = current_app.config.get("PORTRAITS_TODAY")
    return date.fromisoformat(pinned) if pinned else curriculum_today()


def weeks_of(user, offset: int, on: date | None = None) -> list:
    """The user's classes' teaching weeks (``WeekView``: class, calendar, week number,
    lessons with their knowledge points and the resources the user may see)."""
    from app.curriculum.services import this_week

    try:
        return this_week(user, on=on or today(), offset=offset)
    except AppError:  # no class, no calendar: nothing to recommend from the syllabus
        # A refusal of the read-only week, not a failed statement: the request's unit of
        # work is intact and stays the framework's to commit (a database error passes).
        return []


def classes_of(user, role: str | None = None) -> list:
    from app.curriculum.services import classes_of as curriculum_classes_of

    return curriculum_classes_of(user, role)


def followed_calendars(user, on: date) -> list:
    """``curriculum.FollowedCalendar`` rows: the calendar each of the user's classes
    follows on ``on`` for each of its subjects (class id, subject, calendar id, term
    start), by class name and subject."""
    from app.curriculum.services import followed_calendars as curriculum_followed

    return curriculum_followed(user, on)


def class_ids_of(user, role: str):
    """The ids of the classes ``user`` belongs to as ``role``, as a select to use inside
    another statement (no class entities loaded)."""
    from app.curriculum.models import ClassMember

    return select(ClassMember.class_id).where(
        ClassMember.user_id == user.id, ClassMember.role == role
    )


def class_ids_of_user_id(role: str):
    """:func:`class_ids_of` for the user whose id is the bind parameter ``user_id``: a
    select to build once into a statement kept per process."""
    from sqlalchemy import bindparam

    from app.curriculum.models import ClassMember

    return select(ClassMember.class_id).where(
        ClassMember.user_id == bindparam("user_id"), ClassMember.role == role
    )


def class_students(school_class) -> list:
    from app.curriculum.services import class_members

    return class_members(school_class)["student"]


def get_class(class_id: int):
    from app.curriculum.models import SchoolClass

    return db.session.get(SchoolClass, class_id)


def teaches_class(user, school_class) -> bool:
    return any(c.id == school_class.id for c in classes_of(user, "teacher"))


def class_weeks(user, class_id: int, offset: int = 0, on: date | None = None) -> list:
    from app.curriculum.services import this_week

    return this_week(user, class_id=class_id, on=on or today(), offset=offset)


# --- catalog --------------------------------------------------------------------------------


def visible_resources(user, content_ids: list[str]) -> dict:
    from app.catalog.services import resolve_resources

    return resolve_resources(user, content_ids)


def course_categories(content_ids: set[str]) -> dict[str, str]:
    from app.catalog.models import Course, State

    if not content_ids:
        return {}
    rows = db.session.execute(
        select(Course.content_id, Course.category).where(
            Course.content_id.in_(content_ids),
            Course.state == State.PUBLISHED,
            Course.category.isnot(None),
        )
    ).all()
    return dict(rows)


def resource_kinds(content_ids: set[str]) -> dict[str, str]:
    from app.catalog.models import Resource

    if not content_ids:
        return {}
    return dict(
        db.session.execute(
            select(Resource.content_id, Resource.kind).where(Resource.content_id.in_(content_ids))
        ).all()
    )


def extended_courses(user, categories, limit: int = 5, not_enrolled: bool = False) -> list:
    """Published extended courses ``user`` may see in ``categories`` (a list, or a select
    of category names to use inside the statement), newest first; with
    ``not_enrolled``, only those she is not enrolled in (an enrolment not ``left``, as
    ``catalog.services.my_enrolments`` lists them) and at most ``limit`` of them, in the
    same statement (issue 14, fifth round: they were three more statements).

    A select of categories may use the bind parameter ``user_id`` (given ``user``'s
    id).  With one, the statement is built once per process for that select object and
    the reader's visibility condition (issue 14, seventh round: building it was a fifth
    of a warm recommendation's client time), so pass a select built once."""
    from app.catalog.models import Course
    from app.catalog.services import visibility_condition

    if isinstance(categories, list | tuple | set):
        if not categories:
            return []
        statement = _extended_statement(
            visibility_condition(user, Course), list(categories), limit, not_enrolled
        )
    else:
        statement = _kept_extended_statement(
            visibility_condition(user, Course), categories, limit, not_enrolled
        )
    return list(db.session.execute(statement, {"user_id": user.id}).scalars())


# Per (visibility clause, categories select) objects, limit and not_enrolled: a
# statement per reader (the catalog keeps one clause per reader key; see ``walk``).
_EXTENDED = BuiltFor(64)


def _kept_extended_statement(visible, categories, limit: int, not_enrolled: bool):
    return _EXTENDED.get(
        (visible, categories),
        lambda: _extended_statement(visible, categories, limit, not_enrolled),
        extra=(limit, not_enrolled),
    )


def _extended_statement(visible, categories, limit: int, not_enrolled: bool):
    """:func:`extended_courses`' statement; the reader's id is the bind parameter
    ``user_id``."""
    from sqlalchemy import bindparam, exists

    from app.catalog.models import Course, Enrolment, EnrolmentStatus, State

    statement = select(Course).where(
        Course.state == State.PUBLISHED,
        Course.kind == "extended",
        Course.category.in_(categories),
        visible,
    )
    if not_enrolled:
        statement = statement.where(
            ~exists().where(
                Enrolment.student_id == bindparam("user_id"),
                Enrolment.course_content_id == Course.content_id,
                Enrolment.status != EnrolmentStatus.LEFT,
            )
        )
    return statement.order_by(Course.published_at.desc()).limit(
        limit if not_enrolled else limit * 3
    )


def school_names(school_ids: set[int]) -> dict[int, str]:
    from app.accounts.models import School

    if not school_ids:
        return {}
    return dict(
        db.session.execute(select(School.id, School.name).where(School.id.in_(school_ids))).all()
    )


def users_of_district(district_id: int) -> dict[int, int]:
    """Student user id → school id, for the students of a district's schools."""
    from app.accounts.models import School, User

    rows = db.session.execute(
        select(User.id, User.school_id)
        .join(School, School.id == User.school_id)
        .where(School.district_id == district_id)
    ).all()
    return dict(rows)


# --- demo simulation ----------------------------------------------------------------------------


def find_class(name: str):
    from app.curriculum.models import SchoolClass

    return db.session.execute(select(SchoolClass).where(SchoolClass.name == name)).scalars().first()


def class_calendar(school_class, subject: str, on: date):
    from app.curriculum.services import effective_calendar

    return effective_calendar(school_class, subject, on)


def last_class_calendar(school_class, subject: str, on: date):
    """The calendar of the class's latest term that ended before ``on``."""
    from app.curriculum.services import last_ended_calendar

    return last_ended_calendar(school_class, subject, on)


def calendar_weeks(calendar) -> list[dict]:
    """[{week, starts_on, ends_on, lessons: [Node]}] of a teaching calendar."""
    from app.curriculum.services import calendar_plan, knowledge_points_of

    plan = calendar_plan(calendar)
    kps = knowledge_points_of([n for w in plan for n in w["lessons"]])
    for week in plan:
        week["knowledge_points"] = {
            n.identifier: kps.get(n.identifier, []) for n in week["lessons"]
        }
    return plan


def ensure_student(email: str, name: str, school_class):
    """A demo student (no password: cannot log in) in ``school_class``."""
    from app.accounts import services as accounts
    from app.accounts.models import Role
    from app.curriculum.services import add_class_member

    user = accounts.get_user_by_email(email)
    if user is None:
        user = accounts.create_user(email, name, None, school=school_class.school)
        accounts.assign_role(user, Role.STUDENT, school=school_class.school)
    if not any(s.id == user.id for s in class_students(school_class)):
        add_class_member(school_class, user, "student")
    return user


def resources_aligned_to(user, lessons: list) -> dict[int, list]:
    from app.curriculum.services import aligned_resources

    return aligned_resources(user, lessons)


def store_statements(user, statements: list[dict]) -> list[str]:
    """Store statements for ``user`` through the LRS (the platform as authority)."""
    from app.xapi import services

    district_id = services.user_district_id(user)
    principal = services.platform_principal(district_id, user.school_id)
    return services.store_statements(principal, statements, "2.0.0")


def actor_for(user) -> dict:
    from app.xapi.services import actor_for as xapi_actor

    return xapi_actor(user)
