"""Provisioning: an LMS person (issuer + sub) → one local user in the deployment's school,
LMS roles → student or teacher, an LMS context → a class of the curriculum feature."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import joinedload

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
    platform: LtiPlatform, deployment: LtiDeployment, person: Person, role: Role
) -> User:
    """issuer + sub → one local user in the deployment's school (created or updated)."""
    sub = person.sub.strip()
    if not sub or len(sub) > MAX_ID_CHARS:
        raise LaunchRefused(
            N_("The launch has no user (sub): anonymous launches are not supported."), "lti_no_user"
        )
    # A returning user is read with her roles in one statement (assign_role reads them).
    identity = (
        db.session.execute(
            select(LtiIdentity)
            .options(joinedload(LtiIdentity.user).joinedload(User.roles))
            .filter_by(issuer=platform.issuer, sub=sub)
        )
        .unique()
        .scalar_one_or_none()
    )
    school = deployment.school
    district = deployment.district
    if identity is None:
        email = person.email
        if email and accounts.get_user_by_email(email) is not None:
            email = None  # never attach an LMS identity to an existing account by email
        user = accounts.create_user(email, person.display_name, school=school, district=district)
        identity = LtiIdentity(
            issuer=platform.issuer, sub=sub, platform_id=platform.id, user_id=user.id
        )
        db.session.add(identity)
    else:
        user = identity.user
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
    identity.last_launch_at = utcnow()
    user.last_login_at = identity.last_launch_at
    db.session.flush()
    return user


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
    row.title = (context.title or context.label or context.id)[:255]
    row.label = context.label or None
    if claims.nrps is not None:
        row.memberships_url = claims.nrps.context_memberships_url[:1000]
    db.session.flush()
    add_member(row, user, role, member=member)
    return row


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
