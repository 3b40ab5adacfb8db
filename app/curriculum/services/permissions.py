"""Who may manage frameworks, classes and calendars."""

from __future__ import annotations

from sqlalchemy import select

from app.accounts.models import User
from app.curriculum.models import (
    ClassMember,
    ClassRole,
    Framework,
    SchoolClass,
    TeachingCalendar,
)
from app.errors import Unauthorized
from app.extensions import db


def require_user(user: User | None) -> User:
    if user is None:
        raise Unauthorized("Log in first.")
    return user


def can_manage_framework(user: User | None, framework: Framework | None) -> bool:
    if user is None:
        return False
    if user.is_platform_admin:
        return True
    if framework is None:
        return user.is_district_admin()
    return framework.district_id is not None and user.is_district_admin(framework.district_id)


def is_class_member(user: User, school_class: SchoolClass, role: ClassRole | None = None) -> bool:
    statement = select(ClassMember.user_id).where(
        ClassMember.class_id == school_class.id, ClassMember.user_id == user.id
    )
    if role is not None:
        statement = statement.where(ClassMember.role == role)
    return db.session.execute(statement.limit(1)).first() is not None


def can_manage_class(user: User | None, school_class: SchoolClass) -> bool:
    if user is None:
        return False
    return (
        user.is_platform_admin
        or user.is_district_admin(school_class.school.district_id)
        or is_class_member(user, school_class, ClassRole.TEACHER)
    )


def can_read_calendar(user: User | None, calendar: TeachingCalendar) -> bool:
    if user is None:
        return False
    if user.is_platform_admin or user.is_district_admin(calendar.district_id):
        return True
    if calendar.class_id:
        return calendar.school_class is not None and (
            is_class_member(user, calendar.school_class)
            or (user.is_teacher and calendar.school_class.school_id in user.member_school_ids())
        )
    if calendar.school_id:
        return calendar.school_id in user.member_school_ids()
    return calendar.district_id in user.member_district_ids()


def can_edit_calendar(user: User | None, calendar: TeachingCalendar) -> bool:
    if user is None:
        return False
    if user.is_platform_admin or user.is_district_admin(calendar.district_id):
        return True
    return bool(calendar.class_id) and is_class_member(
        user, calendar.school_class, ClassRole.TEACHER
    )
