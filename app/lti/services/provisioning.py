"""Provisioning: an LMS person (issuer + sub) → one local user in the deployment's school,
LMS roles → student or teacher, an LMS context → a class of the curriculum feature."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Load, aliased, contains_eager

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


NOT_READ = object()  # a row the launch's first statement did not read (look it up)


@dataclass(frozen=True)
class LaunchKeys:
    """What a launch will look up after its user: read with her, in the statement that
    records her launch (PostgreSQL, returning users)."""

    context_id: str | None = None  # the LMS context: the row and her membership
    resource_link_id: str | None = None  # her grade link for it (an AGS launch)
    content: tuple[type, str] | None = None  # (Resource or Course, content id) it opens


@dataclass
class ReadAhead:
    """Rows read with the returning user: a row, None (there is none) or NOT_READ."""

    context: object = NOT_READ
    member: object = NOT_READ
    link: object = NOT_READ
    content: object = NOT_READ
    # (her districts as read, JSON text or None): the subscriptions the sharing usage
    # counter of her launch of ``content`` counts (app.sharing.usage_subscriptions_column)
    subscriptions: object = NOT_READ


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
    return provision_launch(platform, deployment, person, role, launched=launched)[0]


def provision_launch(
    platform: LtiPlatform,
    deployment: LtiDeployment,
    person: Person,
    role: Role,
    *,
    launched: bool = True,
    keys: LaunchKeys | None = None,
) -> tuple[User, ReadAhead]:
    """:func:`provision_user`, with the rows of ``keys`` read ahead when the database
    allows it in the same statement (what could not be read is ``NOT_READ``)."""
    sub = person.sub.strip()
    if not sub or len(sub) > MAX_ID_CHARS:
        raise LaunchRefused(
            N_("The launch has no user (sub): anonymous launches are not supported."), "lti_no_user"
        )
    now = utcnow() if launched else None
    user, ahead = _returning_user(platform, sub, now, keys or LaunchKeys())
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
    return user, ahead


def _returning_user(
    platform: LtiPlatform, sub: str, now: datetime | None, keys: LaunchKeys
) -> tuple[User | None, ReadAhead]:
    """The user of the platform's issuer + ``sub`` with her roles (``assign_role`` reads
    them), her launch at ``now`` recorded (``lti_identities.last_launch_at``,
    ``users.last_login_at``; nothing written when ``now`` is None); None for a new
    identity.

    On PostgreSQL one statement: both UPDATEs in data-modifying CTEs, the updated user
    row joined to her roles and to the rows of ``keys`` (her context and membership, her
    grade link, the content the launch opens).  Elsewhere (SQLite) the two UPDATEs as
    Core statements and the user read with her roles: three, and the rows of ``keys``
    are looked up by their own code.  Either way no ORM unit of work (issue 14: the
    read and the flush of the two ORM updates were a third of the launch's
    provisioning).  On a refused launch the savepoint or the request's rollback undoes
    both UPDATEs."""
    identities, users = LtiIdentity.__table__, User.__table__
    issuer = platform.issuer
    if now is None:
        user = (
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
        return user, ReadAhead()
    if db.session.get_bind().dialect.name == "postgresql":
        content_model, content_id = keys.content or (None, None)
        statement = _launch_statement(
            keys.context_id is not None, keys.resource_link_id is not None, content_model
        )
        rows = (
            db.session.execute(
                statement,
                {
                    "launch_issuer": issuer,
                    "launch_sub": sub,
                    "launched_at": now,
                    "launch_platform": platform.id,
                    "launch_context": keys.context_id,
                    "launch_link": keys.resource_link_id,
                    "launch_content": content_id,
                },
                execution_options={"populate_existing": True},
            )
            .unique()
            .all()
        )
        if not rows:
            return None, ReadAhead()
        return rows[0][0], _read_ahead(rows, keys)
    user_id = db.session.execute(
        update(identities)
        .where(identities.c.issuer == issuer, identities.c.sub == sub)
        .values(last_launch_at=now, updated_at=now)
        .returning(identities.c.user_id)
    ).scalar()
    if user_id is None:
        return None, ReadAhead()
    db.session.execute(
        update(users).where(users.c.id == user_id).values(last_login_at=now, updated_at=now)
    )
    user = (
        db.session.execute(
            select(User)
            .outerjoin(User.roles)
            .options(contains_eager(User.roles))
            .where(User.id == user_id),
            execution_options={"populate_existing": True},
        )
        .unique()
        .scalar_one_or_none()
    )
    return user, ReadAhead()


def _read_ahead(rows, keys: LaunchKeys) -> ReadAhead:
    """The rows of ``keys`` in the result of :func:`_launch_statement` (one row per role
    of the user; the outer-joined rows are the same in each)."""
    ahead = ReadAhead()
    position = 1
    if keys.context_id is not None:
        ahead.context, ahead.member = rows[0][position], rows[0][position + 1]
        position += 2
    if keys.resource_link_id is not None:
        ahead.link = rows[0][position]
        position += 1
    if keys.content is not None:
        found = {row[position] for row in rows}
        if len(found) == 1:  # else let the target's own look-up decide
            ahead.content = found.pop()
        # Her districts now, from the rows the subquery read in the same statement (a
        # role given later in the launch is not covered: the counter then reads itself).
        ahead.subscriptions = (frozenset(rows[0][0].member_district_ids()), rows[0][position + 1])
    return ahead


@functools.cache
def _launch_statement(context: bool, link: bool, content_model):
    """PostgreSQL: record the launch of ``:launch_issuer`` + ``:launch_sub`` at
    ``:launched_at`` and read her user with her roles — and, as asked, the platform's
    context ``:launch_context`` with her membership, her grade link of
    ``:launch_link`` and the published ``content_model`` ``:launch_content`` — in one
    statement (built once per shape: its ORM construction cost more than a statement's
    round trip).  The parameters are named after no column: an UPDATE takes a
    parameter named after a column as a value to SET."""
    from app.catalog.models import State
    from app.lti.models import LtiGradeLink

    identities, users = LtiIdentity.__table__, User.__table__
    now = bindparam("launched_at", type_=db.DateTime())
    identity = (
        update(identities)
        .where(
            identities.c.issuer == bindparam("launch_issuer"),
            identities.c.sub == bindparam("launch_sub"),
        )
        .values(last_launch_at=now, updated_at=now)
        .returning(identities.c.user_id)
        .cte("launched_identity")
    )
    touched = (
        update(users)
        .where(users.c.id == identity.c.user_id)
        .values(last_login_at=now, updated_at=now)
        .returning(*users.c)
        .cte("launched_user")
    )
    row = aliased(User, touched, name="launched")
    platform_id = bindparam("launch_platform", type_=db.Integer())
    statement = select(row).outerjoin(row.roles).options(contains_eager(row.roles))
    if context:
        statement = (
            statement.add_columns(LtiContext, LtiContextMember)
            .outerjoin(
                LtiContext,
                (LtiContext.platform_id == platform_id)
                & (LtiContext.context_id == bindparam("launch_context")),
            )
            .outerjoin(
                LtiContextMember,
                (LtiContextMember.context_id == LtiContext.id)
                & (LtiContextMember.user_id == row.id),
            )
        )
    if link:
        statement = statement.add_columns(LtiGradeLink).outerjoin(
            LtiGradeLink,
            (LtiGradeLink.platform_id == platform_id)
            & (LtiGradeLink.resource_link_id == bindparam("launch_link"))
            & (LtiGradeLink.user_id == row.id),
        )
    if content_model is not None:
        # Tags, grades and the like are not needed to open the link (launch._visible).
        statement = (
            statement.add_columns(content_model)
            .outerjoin(
                content_model,
                (content_model.content_id == bindparam("launch_content"))
                & (content_model.state == State.PUBLISHED),
            )
            .options(Load(content_model).lazyload("*"))
        )
        # SHARING HOOK (app/sharing): the subscriptions the usage counter of this launch
        # counts, read here instead of by the counter's own SELECT at the commit (issue 14).
        from app import sharing

        statement = statement.add_columns(
            sharing.usage_subscriptions_column(bindparam("launch_content"), row.id, row.district_id)
        )
    return statement


def map_context(
    platform: LtiPlatform,
    deployment: LtiDeployment,
    claims: LaunchClaims,
    user: User,
    role: Role,
    ahead: ReadAhead | None = None,
) -> LtiContext | None:
    context = claims.context
    if context is None:
        return None
    if ahead is not None and ahead.context is not NOT_READ:
        row, member = ahead.context, ahead.member  # read with the user
    else:
        # The context and the user's membership of it in one statement (a launch's).
        found = db.session.execute(
            select(LtiContext, LtiContextMember)
            .outerjoin(
                LtiContextMember,
                (LtiContextMember.context_id == LtiContext.id)
                & (LtiContextMember.user_id == user.id),
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
