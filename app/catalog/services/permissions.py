"""Who may read, edit and create catalog content (the rules in the package docstring)."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import and_, any_, exists, func, or_, select

from app import sharing
from app.accounts.models import Role, School, User
from app.catalog.models import (
    Course,
    Resource,
    State,
    Visibility,
)
from app.errors import Forbidden, Unauthorized
from app.extensions import db

ContentModel = type[Course] | type[Resource]


def visibility_condition(user: User | None, model: ContentModel):
    """SQL condition: rows of ``model`` that ``user`` may read once published.

    Used inside queries (never to filter a page afterwards) so counts stay right.

    The condition is a pure function of ``model`` and what is read of ``user`` here
    (her id, schools, districts and administered districts, all taken afresh from her
    roles at every call), so the built clause is kept per process for that key: building
    it anew (about 50 SQLAlchemy coercions) was a tenth of a "this week" call's CPU
    (docs/curriculum.md).  Only mapped classes are kept (an alias is built each time).
    """
    if user is not None and user.is_platform_admin:
        return True
    if user is None:
        key = (False, None, (), (), ())
    else:
        key = (
            True,
            user.id,
            tuple(sorted(user.member_school_ids())),
            tuple(sorted(user.member_district_ids())),
            tuple(sorted(user.admin_district_ids())),
        )
    if isinstance(model, type):
        return _visibility_condition(model, *key)
    return _build_visibility_condition(model, *key)


def beyond_region_condition(user: User, model: type[Course] | type[Resource]):
    """SQL condition (PostgreSQL): the published rows of ``model`` that signed-in ``user``
    (not a platform admin) may read *besides* those visible to the whole region, so that
    :func:`visibility_condition` is ``visibility = 'region' OR`` this.  The same clauses,
    written so that each can be one arm of a BitmapOr on its own index: together with the
    region clause, or with ``content_id IN (subquery)`` (a per-row filter), the planner has
    no index condition and reads the whole table.  A signed-in reader's list COUNT is the
    region rows' count plus this one's (queries._count_statement)."""
    return _beyond_region_condition(
        model,
        user.id,
        tuple(sorted(user.member_school_ids())),
        tuple(sorted(user.member_district_ids())),
        tuple(sorted(user.admin_district_ids())),
    )


@lru_cache(maxsize=2048)
def _beyond_region_condition(model, user_id, schools, districts, admin_of):
    clauses = []
    if schools:
        clauses.append(and_(model.visibility == Visibility.SCHOOL, model.school_id.in_(schools)))
    if districts:
        clauses.append(
            and_(model.visibility == Visibility.DISTRICT, model.district_id.in_(districts))
        )
        # = ANY(ARRAY(subquery)): PostgreSQL evaluates the subquery once and looks the ids
        # up in ix_*_content_id; IN (subquery) would test each row of the table instead.
        subscribed = func.array(sharing.subscribed_content_select(districts).scalar_subquery())
        clauses.append(
            and_(model.visibility != Visibility.PRIVATE, model.content_id == any_(subscribed))
        )
    if admin_of:
        clauses.append(model.district_id.in_(admin_of))
    clauses.append(model.author_id == user_id)
    return and_(model.visibility != Visibility.REGION, or_(*clauses))


@lru_cache(maxsize=2048)
def _visibility_condition(model, signed_in, user_id, schools, districts, admin_of):
    return _build_visibility_condition(model, signed_in, user_id, schools, districts, admin_of)


def _build_visibility_condition(model, signed_in, user_id, schools, districts, admin_of):
    clauses = [model.visibility == Visibility.REGION]
    if signed_in:
        if schools:
            clauses.append(
                and_(model.visibility == Visibility.SCHOOL, model.school_id.in_(schools))
            )
        if districts:
            clauses.append(
                and_(model.visibility == Visibility.DISTRICT, model.district_id.in_(districts))
            )
            # Items the districts receive by subscription (app/sharing).
            clauses.append(
                and_(
                    model.visibility != Visibility.PRIVATE,
                    model.content_id.in_(sharing.subscribed_content_select(districts)),
                )
            )
        if admin_of:
            clauses.append(model.district_id.in_(admin_of))
        clauses.append(model.author_id == user_id)
    return or_(*clauses)


def visibility_key(user: User | None) -> tuple:
    """What :func:`visibility_condition` depends on, as a cache key: two users with the
    same key see exactly the same rows (their own authored rows included).

    The user's id is part of the key only when she has authored catalog content: for
    everyone else the ``author_id`` clause matches nothing, so all the students of a
    school share one key and the cached counts and list pages are built once for them
    (docs/catalog.md).  Publishing bumps the catalog generation, under which the answer
    is cached, so a first published row of hers is never missing from her lists."""
    if user is None:
        return ("anonymous",)
    if user.is_platform_admin:
        return ("platform-admin",)
    return (
        "user",
        user.id if _has_authored(user) else None,
        tuple(sorted(user.member_school_ids())),
        tuple(sorted(user.member_district_ids())),
        tuple(sorted(user.admin_district_ids())),
    )


def _has_authored(user: User) -> bool:
    from app.catalog.services.queries import CACHE_SCOPE
    from app.common import cache

    def query() -> bool:
        # Any row in any state: a draft does not make her lists differ yet, but counting
        # it keeps this answer right without depending on which states a list shows.
        statement = select(
            or_(
                exists().where(Course.author_id == user.id),
                exists().where(Resource.author_id == user.id),
            )
        )
        return bool(db.session.execute(statement).scalar())

    return cache.remember(CACHE_SCOPE, ("authored", user.id), query)


def can_view(user: User | None, obj: Course | Resource) -> bool:
    if can_edit(user, obj):
        return True
    if obj.state not in (State.PUBLISHED, State.SUPERSEDED):
        return False
    if obj.visibility == Visibility.REGION:
        return True
    if user is None:
        return False
    if obj.visibility == Visibility.DISTRICT and obj.district_id in user.member_district_ids():
        return True
    if (
        obj.visibility == Visibility.SCHOOL
        and obj.school_id is not None
        and obj.school_id in user.member_school_ids()
    ):
        return True
    # Items the user's districts receive by subscription (app/sharing).  An item its
    # owner made private since the release is not shown to subscribers.
    return obj.visibility != Visibility.PRIVATE and sharing.is_subscribed(
        obj.content_id, user.member_district_ids()
    )


def visible_to_organisation(
    obj: Course | Resource, district_id: int | None, school_id: int | None
) -> bool:
    """Whether published ``obj`` is visible to the members of a school (or, without one,
    of a district) as such, whoever else they are — e.g. through an LMS deployment that
    belongs to that school, when the user also belongs elsewhere."""
    if obj.state not in (State.PUBLISHED, State.SUPERSEDED):
        return False
    if obj.visibility == Visibility.REGION:
        return True
    if obj.visibility == Visibility.DISTRICT:
        return district_id is not None and obj.district_id == district_id
    if obj.visibility == Visibility.SCHOOL:
        return school_id is not None and obj.school_id == school_id
    return False


def can_edit(user: User | None, obj: Course | Resource) -> bool:
    if user is None:
        return False
    return (
        obj.author_id == user.id
        or user.is_platform_admin
        or user.is_district_admin(obj.district_id)
    )


def require_user(user: User | None) -> User:
    if user is None:
        raise Unauthorized("Log in first.")
    return user


def require_author(user: User | None) -> User:
    user = require_user(user)
    if not (user.is_teacher or user.is_district_admin() or user.is_platform_admin):
        raise Forbidden("Only teachers and administrators can create content.")
    return user


def owning_school(user: User) -> tuple[int | None, int]:
    """The school and district new content of ``user`` belongs to."""
    for assignment in user.roles:
        if assignment.role == Role.TEACHER and assignment.school_id:
            school = db.session.get(School, assignment.school_id)
            return school.id, school.district_id
    if user.school_id:
        return user.school_id, user.school.district_id
    districts = sorted(user.admin_district_ids() or user.member_district_ids())
    if districts:
        return None, districts[0]
    raise Forbidden("Your account belongs to no school or district, so it cannot own content.")
