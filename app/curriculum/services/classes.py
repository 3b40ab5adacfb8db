"""School classes: members, textbook editions, progress."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import joinedload

from app.accounts.models import School, User
from app.catalog import vocab
from app.common.models import utcnow
from app.curriculum.models import (
    ClassEdition,
    ClassMember,
    ClassProgress,
    ClassRole,
    Level,
    Node,
    SchoolClass,
)
from app.curriculum.services.nodes import get_node, lessons_of_volume, list_volumes
from app.curriculum.services.permissions import can_manage_class, is_class_member, require_user
from app.errors import Forbidden, Invalid, NotFound
from app.extensions import db


def get_or_create_class(
    school: School, name: str, *, grade: str | None = None, external_ref: str | None = None
) -> SchoolClass:
    """The class of ``school`` with this external reference (e.g. ``lti:<issuer>:<context>``)
    or, without one, this name; created when missing.  No permission check: callers
    (LTI launch, demo loader, admin services) decide who may do this."""
    if grade is not None and grade not in vocab.GRADES:
        raise Invalid("Unknown grade.", fields={"grade": [f"Unknown grade '{grade}'."]})
    if external_ref:
        found = db.session.execute(
            select(SchoolClass).filter_by(external_ref=external_ref)
        ).scalar_one_or_none()
    else:
        found = db.session.execute(
            select(SchoolClass)
            .filter_by(school_id=school.id, name=name, external_ref=None)
            .order_by(SchoolClass.id)
            .limit(1)
        ).scalar_one_or_none()
    if found is None:
        found = SchoolClass(
            school_id=school.id, name=name[:200], grade=grade, external_ref=external_ref
        )
        db.session.add(found)
    else:
        if grade and found.grade != grade:
            found.grade = grade
        if external_ref and found.name != name:
            found.name = name[:200]
    db.session.flush()
    return found


def add_class_member(school_class: SchoolClass, user: User, role: str) -> ClassMember:
    """Idempotent: add ``user`` as "student" or "teacher" of the class."""
    try:
        role = ClassRole(role)
    except ValueError:
        raise Invalid("Unknown class role.", fields={"role": ["student or teacher."]}) from None
    member = db.session.get(ClassMember, (school_class.id, user.id, role))
    if member is None:
        member = ClassMember(class_id=school_class.id, user_id=user.id, role=role)
        db.session.add(member)
        db.session.flush()
    return member


def remove_class_member(actor: User | None, class_id: int, user_id: int, role: str) -> None:
    school_class = get_class(actor, class_id, manage=True)
    db.session.execute(
        delete(ClassMember).where(
            ClassMember.class_id == school_class.id,
            ClassMember.user_id == user_id,
            ClassMember.role == role,
        )
    )
    db.session.flush()


def get_class(user: User | None, class_id: int, manage: bool = False) -> SchoolClass:
    user = require_user(user)
    school_class = db.session.get(SchoolClass, class_id)
    if school_class is None:
        raise NotFound("Class not found.")
    if can_manage_class(user, school_class):
        return school_class
    if not manage and is_class_member(user, school_class):
        return school_class
    if not manage and user.is_teacher and school_class.school_id in user.member_school_ids():
        return school_class
    if manage and is_class_member(user, school_class):
        raise Forbidden("Only the class's teachers and district admins can change it.")
    raise NotFound("Class not found.")


def classes_of(user: User | None, role: str | None = None) -> list[SchoolClass]:
    """The classes ``user`` belongs to (as ``role`` when given)."""
    if user is None:
        return []
    statement = (
        select(SchoolClass)
        .join(ClassMember, ClassMember.class_id == SchoolClass.id)
        .where(ClassMember.user_id == user.id)
    )
    if role:
        statement = statement.where(ClassMember.role == role)
    # The editions too ("this week" reads them for every class): no second statement.
    statement = statement.options(joinedload(SchoolClass.school), joinedload(SchoolClass.editions))
    return list(
        db.session.execute(statement.distinct().order_by(SchoolClass.name)).unique().scalars()
    )


def district_classes(user: User | None) -> list[SchoolClass]:
    """The classes of every school in the districts ``user`` administers (every class
    for a platform admin; none for anyone else), by school and name."""
    if user is None or not (user.is_platform_admin or user.is_district_admin()):
        return []
    statement = select(SchoolClass).join(School, School.id == SchoolClass.school_id)
    if not user.is_platform_admin:
        statement = statement.where(School.district_id.in_(sorted(user.admin_district_ids())))
    # The editions too ("this week" reads them for every class): no second statement.
    statement = statement.options(joinedload(SchoolClass.school), joinedload(SchoolClass.editions))
    return list(
        db.session.execute(statement.order_by(School.name, SchoolClass.name, SchoolClass.id))
        .unique()
        .scalars()
    )


def create_class(user: User | None, data: dict) -> SchoolClass:
    """A teacher creates a class of her school (she becomes its teacher); a district admin
    one of any school of her district."""
    user = require_user(user)
    school = (
        db.session.get(School, data["school_id"])
        if data.get("school_id")
        else (user.school if user.school_id else None)
    )
    if school is None:
        raise Invalid("Which school?", fields={"school_id": ["Required."]})
    teacher_here = user.is_teacher and school.id in user.member_school_ids()
    if not (user.is_platform_admin or user.is_district_admin(school.district_id) or teacher_here):
        raise Forbidden("Only the school's teachers and district admins create classes.")
    school_class = get_or_create_class(school, data["name"], grade=data.get("grade"))
    if teacher_here:
        add_class_member(school_class, user, "teacher")
    for subject, edition in (data.get("editions") or {}).items():
        set_class_edition(user, school_class.id, subject, edition)
    return school_class


def set_class_edition(user: User | None, class_id: int, subject: str, edition: str) -> ClassEdition:
    school_class = get_class(user, class_id, manage=True)
    errors = {}
    if subject not in vocab.SUBJECTS:
        errors["subject"] = [f"Unknown subject '{subject}'."]
    if edition not in vocab.EDITIONS:
        errors["edition"] = [f"Unknown edition '{edition}'."]
    if errors:
        raise Invalid("The submitted data is not valid.", fields=errors)
    row = db.session.get(ClassEdition, (school_class.id, subject))
    if row is None:
        row = ClassEdition(class_id=school_class.id, subject=subject, edition=edition)
        db.session.add(row)
    row.edition = edition
    db.session.flush()
    db.session.refresh(school_class)
    return row


def add_member_by_email(actor: User | None, class_id: int, email: str, role: str) -> ClassMember:
    from app.accounts.services import get_user_by_email

    school_class = get_class(actor, class_id, manage=True)
    user = get_user_by_email(email or "")
    if (
        user is None
        or user.school_id not in (school_class.school_id, None)
        and school_class.school_id not in user.member_school_ids()
    ):
        raise Invalid(
            "No user of this school has that email.", fields={"email": ["Unknown in this school."]}
        )
    return add_class_member(school_class, user, role)


def class_members(school_class: SchoolClass) -> dict[str, list[User]]:
    result = {"teacher": [], "student": []}
    for member in db.session.execute(
        select(ClassMember).where(ClassMember.class_id == school_class.id)
    ).scalars():
        result[member.role.value].append(member.user)
    for users in result.values():
        users.sort(key=lambda u: u.name)
    return result


def record_progress(user: User | None, class_id: int, node_id: int) -> ClassProgress:
    """The class is at lesson ``node_id`` (ahead of or behind the calendar)."""
    school_class = get_class(user, class_id, manage=True)
    node = get_node(node_id)
    if node.level != Level.LESSON:
        raise Invalid("Progress is recorded at a lesson.", fields={"node_id": ["Not a lesson."]})
    if not node.subject:
        raise Invalid("This lesson has no subject.", fields={"node_id": ["No subject."]})
    row = db.session.get(ClassProgress, (school_class.id, node.subject))
    if row is None:
        row = ClassProgress(class_id=school_class.id, subject=node.subject, node_id=node.id)
        db.session.add(row)
    row.node_id, row.updated_by_id, row.updated_at = node.id, user.id, utcnow()
    db.session.flush()
    return row


def progress_of(school_class: SchoolClass) -> dict[str, ClassProgress]:
    return {
        p.subject: p
        for p in db.session.execute(
            select(ClassProgress).where(ClassProgress.class_id == school_class.id)
        ).scalars()
    }


def lessons_by_subject(school_class: SchoolClass) -> dict[str, list[Node]]:
    """For each subject the class has an edition for: the lessons of that edition's
    volumes for the class's grade, in teaching order (where progress can be set)."""
    return {
        edition.subject: [
            lesson
            for volume in list_volumes(edition.subject, edition.edition, school_class.grade)
            for lesson in lessons_of_volume(volume)
        ]
        for edition in school_class.editions
    }
