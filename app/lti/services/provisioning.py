"""Provisioning: an LMS person (issuer + sub) → one local user in the deployment's school,
LMS roles → student or teacher, an LMS context → a class of the curriculum feature."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import aliased, contains_eager

from app.accounts import services as accounts
from app.accounts.models import Role, User
from app.common.models import utcnow
from app.curriculum import services as curriculum
from app.extensions import db
from app.i18n import N_
from app.lti.claims import MAX_ID_CHARS, LaunchClaims
from app.lti.errors import LaunchRefused
from app.lti.models import LtiContext, LtiContextMember, LtiDeployment, LtiIdentity, LtiPlatform

TEACHER_ROLE_WORDS = (
    "instructor",
    "administrator",
    "contentdeveloper",
    "teachingassistant",
    "mentor",
)


@dataclass(frozen=True)
class Person:
    """Who the LMS says a user is (from a launch or a roster entry), type-checked."""

    sub: str
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None

    @classmethod
    def from_claims(cls, claims: LaunchClaims) -> Person:
        return cls(claims.sub, claims.name, claims.given_name, claims.family_name, claims.email)

    @property
    def display_name(self) -> str:
        name = (
            self.name or " ".join(part for part in (self.given_name, self.family_name) if part)
        ).strip()
        return (name or self.email or "LMS user")[:200]


def map_role(roles: list[str]) -> Role:
    for role in roles:
        tail = role.rsplit("#", 1)[-1].rsplit("/", 1)[-1].lower()
        if tail in TEACHER_ROLE_WORDS or any(
            word in role.lower() for word in ("#instructor", "#administrator")
        ):
            return Role.TEACHER
    return Role.STUDENT


def provision_user(
    platform: LtiPlatform,
    deployment: LtiDeployment,
    person: Person,
    role: Role,
    *,
    launched: bool = True,
) -> User:
    """issuer + sub → one local user in the deployment's school (created or updated).
    ``launched``: she is launching now (her identity's last launch and her last login
    are recorded); a roster sync provisions without recording either."""
    sub = person.sub.strip()
    if not sub or len(sub) > MAX_ID_CHARS:
        raise LaunchRefused(
            N_("The launch has no user (sub): anonymous launches are not supported."), "lti_no_user"
        )
    now = utcnow() if launched else None
    user = _returning_user(platform.issuer, sub, now)
    school = deployment.school
    district = deployment.district
    if user is None:
        email = person.email
        if email and accounts.get_user_by_email(email) is not None:
            email = None  # never attach an LMS identity to an existing account by email
        user = accounts.create_user(email, person.display_name, school=school, district=district)
        if now is not None:
            user.last_login_at = now
        db.session.add(
            LtiIdentity(
                issuer=platform.issuer,
                sub=sub,
                platform_id=platform.id,
                user_id=user.id,
                last_launch_at=now,
            )
        )
    else:
        name = person.display_name
        if name != "LMS user" and user.name != name:
            user.name = name
        if user.school_id is None and school is not None:
            user.school, user.district = school, school.district
    if not user.is_active:
        raise LaunchRefused(N_("This account is disabled."), "lti_user_disabled", 403)
    if school is not None:
        accounts.assign_role(user, role, school=school)
    else:
        accounts.assign_role(user, role, district=district)
    db.session.flush()  # nothing for a returning user whose name, school and role hold
    return user


def _returning_user(issuer: str, sub: str, now: datetime | None) -> User | None:
    """The user of ``issuer`` + ``sub`` with her roles (``assign_role`` reads them), her
    launch at ``now`` recorded (``lti_identities.last_launch_at``,
    ``users.last_login_at``; nothing written when ``now`` is None); None for a new
    identity.

    On PostgreSQL one statement: both UPDATEs in data-modifying CTEs, the updated user
    row joined to her roles.  Elsewhere (SQLite) the two UPDATEs as Core statements and
    the user read with her roles: three.  Either way no ORM unit of work (issue 14: the
    read and the flush of the two ORM updates were a third of the launch's provisioning).
    On a refused launch the savepoint or the request's rollback undoes both UPDATEs."""
    identities, users = LtiIdentity.__table__, User.__table__
    if now is None:
        return (
            db.session.execute(
                select(User)
                .join(LtiIdentity, LtiIdentity.user_id == User.id)
                .outerjoin(User.roles)
                .options(contains_eager(User.roles))
                .where(LtiIdentity.issuer == issuer, LtiIdentity.sub == sub)
            )
            .unique()
            .scalar_one_or_none()
        )
    launched = (
        update(identities)
        .where(identities.c.issuer == issuer, identities.c.sub == sub)
        .values(last_launch_at=now, updated_at=now)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        identity = launched.returning(identities.c.user_id).cte("launched_identity")
        touched = (
            update(users)
            .where(users.c.id == identity.c.user_id)
            .values(last_login_at=now, updated_at=now)
            .returning(*users.c)
            .cte("launched_user")
        )
        row = aliased(User, touched, name="launched")
        statement = select(row).outerjoin(row.roles).options(contains_eager(row.roles))
    else:
        user_id = db.session.execute(launched.returning(identities.c.user_id)).scalar()
        if user_id is None:
            return None
        db.session.execute(
            update(users).where(users.c.id == user_id).values(last_login_at=now, updated_at=now)
        )
        statement = (
            select(User)
            .outerjoin(User.roles)
            .options(contains_eager(User.roles))
            .where(User.id == user_id)
        )
    return (
        db.session.execute(statement.execution_options(populate_existing=True))
        .unique()
        .scalar_one_or_none()
    )


def map_context(
    platform: LtiPlatform,
    deployment: LtiDeployment,
    claims: LaunchClaims,
    user: User,
    role: Role,
) -> LtiContext | None:
    context = claims.context
    if context is None:
        return None
    # The context and the user's membership of it in one statement (a launch's).
    found = db.session.execute(
        select(LtiContext, LtiContextMember)
        .outerjoin(
            LtiContextMember,
            (LtiContextMember.context_id == LtiContext.id) & (LtiContextMember.user_id == user.id),
        )
        .where(LtiContext.platform_id == platform.id, LtiContext.context_id == context.id)
    ).first()
    row, member = found if found is not None else (None, None)
    if row is None:
        row = LtiContext(
            platform_id=platform.id, deployment_id=deployment.id, context_id=context.id
        )
        db.session.add(row)
    # Assigned only when they differ: an assignment of the same value still makes the row
    # dirty, and the flush then compares every attribute to write nothing (issue 14).
    _assign(row, "title", (context.title or context.label or context.id)[:255])
    _assign(row, "label", context.label or None)
    if claims.nrps is not None:
        _assign(row, "memberships_url", claims.nrps.context_memberships_url[:1000])
    db.session.flush()
    add_member(row, user, role, member=member)
    return row


def _assign(row, name: str, value) -> None:
    if getattr(row, name) != value:
        setattr(row, name, value)


def _class_for(row: LtiContext):
    school = row.deployment.school
    if school is None:
        return None
    school_class = curriculum.get_or_create_class(
        school, row.title, external_ref=f"lti:{row.platform_id}:{row.context_id}"
    )
    if row.class_id != school_class.id:
        row.class_id = school_class.id
    return school_class


_LOOK_UP = object()


def add_member(
    row: LtiContext, user: User, role: Role, active: bool = True, member=_LOOK_UP
) -> None:
    """Make ``user`` a member of the context's class; ``member`` is her membership row
    (None: she has none) when the caller has already read it."""
    if member is _LOOK_UP:
        member = db.session.execute(
            select(LtiContextMember).filter_by(context_id=row.id, user_id=user.id)
        ).scalar_one_or_none()
    if member is not None and member.role == str(role) and member.active == active and row.class_id:
        return  # a returning member: already in the class
    if member is None:
        member = LtiContextMember(context_id=row.id, user_id=user.id, role=str(role))
        db.session.add(member)
    member.role, member.active = str(role), active
    school_class = _class_for(row)
    if school_class is not None and active:
        curriculum.add_class_member(school_class, user, str(role))
    db.session.flush()
