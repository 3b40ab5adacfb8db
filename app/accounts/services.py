"""Accounts: organisations, users, roles, password login and API tokens."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from app.accounts import principal, throttle, token_cache
from app.accounts.models import ApiToken, District, Region, Role, RoleAssignment, School, User
from app.accounts.principal import Principal
from app.common.models import utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from app.extensions import db

TOKEN_PREFIX = "sy_"  # noqa: S105  (a public prefix, not a secret)
MIN_PASSWORD_LENGTH = 8
# Compared against when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = generate_password_hash("timing-equaliser")


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


# --- organisations -------------------------------------------------------------------


def ensure_region(code: str, name: str, name_en: str | None = None) -> Region:
    region = db.session.execute(select(Region).filter_by(code=code)).scalar_one_or_none()
    if region is None:
        region = Region(code=code)
        db.session.add(region)
    region.name, region.name_en = name, name_en
    db.session.flush()
    return region


def ensure_district(
    region: Region, code: str, name: str, name_en: str | None = None, requires_review: bool = False
) -> District:
    district = db.session.execute(select(District).filter_by(code=code)).scalar_one_or_none()
    if district is None:
        district = District(code=code)
        db.session.add(district)
    district.region = region
    district.name, district.name_en, district.requires_review = name, name_en, requires_review
    db.session.flush()
    return district


def ensure_school(district: District, code: str, name: str, name_en: str | None = None) -> School:
    school = db.session.execute(select(School).filter_by(code=code)).scalar_one_or_none()
    if school is None:
        school = School(code=code)
        db.session.add(school)
    school.district = district
    school.name, school.name_en = name, name_en
    db.session.flush()
    return school


def list_districts() -> list[District]:
    return list(db.session.execute(select(District).order_by(District.id)).scalars())


def list_schools(district_id: int | None = None) -> list[School]:
    statement = select(School).order_by(School.id)
    if district_id is not None:
        statement = statement.filter_by(district_id=district_id)
    return list(db.session.execute(statement).scalars())


def get_district(district_id: int) -> District:
    district = db.session.get(District, district_id)
    if district is None:
        raise NotFound("District not found.")
    return district


def set_district_review(actor: User, district_id: int, requires_review: bool) -> District:
    district = get_district(district_id)
    if not (actor.is_platform_admin or actor.is_district_admin(district.id)):
        raise Forbidden("Only the district's admins can change its review policy.")
    district.requires_review = requires_review
    db.session.flush()
    return district


# --- users ----------------------------------------------------------------------------


def normalise_email(email: str) -> str:
    return email.strip().lower()


def get_user_by_email(email: str) -> User | None:
    return db.session.execute(
        select(User).filter_by(email=normalise_email(email))
    ).scalar_one_or_none()


def get_user_by_public_id(public_id: str) -> User | None:
    return db.session.execute(select(User).filter_by(public_id=public_id)).scalar_one_or_none()


def create_user(
    email: str | None,
    name: str,
    password: str | None = None,
    *,
    school: School | None = None,
    district: District | None = None,
    locale: str | None = None,
) -> User:
    if email and get_user_by_email(email) is not None:
        raise Conflict(
            "A user with this email already exists.", fields={"email": ["Already registered."]}
        )
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            "Password too short.",
            fields={"password": [f"At least {MIN_PASSWORD_LENGTH} characters."]},
        )
    user = User(email=normalise_email(email) if email else None, name=name, locale=locale)
    if password is not None:
        user.password_hash = generate_password_hash(password)
    if school is not None:
        user.school = school
        user.district = school.district
    elif district is not None:
        user.district = district
    db.session.add(user)
    db.session.flush()
    return user


def assign_role(
    user: User, role: Role, *, district: District | None = None, school: School | None = None
) -> RoleAssignment:
    if school is not None and district is None:
        district = school.district
    for existing in user.roles:
        if (
            existing.role == role
            and existing.district_id == (district.id if district else None)
            and existing.school_id == (school.id if school else None)
        ):
            return existing
    assignment = RoleAssignment(role=role)
    assignment.district_id = district.id if district else None
    assignment.school_id = school.id if school else None
    user.roles.append(assignment)
    db.session.flush()
    return assignment


def set_password(user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            "Password too short.",
            fields={"password": [f"At least {MIN_PASSWORD_LENGTH} characters."]},
        )
    user.password_hash = generate_password_hash(password)
    db.session.flush()


def authenticate(email: str, password: str) -> User:
    """Return the user for a correct email and password, else raise Unauthorized.

    Raises TooManyRequests while the address is locked out after repeated failures
    (see :mod:`app.accounts.throttle`); the password is then not even checked."""
    throttle.check(email or "")
    try:
        user = _check_password(email, password)
    except Unauthorized:
        throttle.record_failure(email or "")
        raise
    throttle.record_success(email or "")
    user.last_login_at = utcnow()
    db.session.flush()
    return user


def _check_password(email: str, password: str) -> User:
    user = get_user_by_email(email) if email else None
    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password or "")
        raise Unauthorized("Wrong email or password.")
    if not check_password_hash(user.password_hash, password or ""):
        raise Unauthorized("Wrong email or password.")
    if not user.is_active:
        raise Unauthorized("This account is disabled.")
    return user


def delete_user(actor: User, user: User) -> None:
    """Soft-delete: the account can no longer log in and its tokens stop working, but
    what it authored stays (owned by its school)."""
    if not (
        actor.is_platform_admin
        or actor.id == user.id
        or (user.district_id and actor.is_district_admin(user.district_id))
    ):
        raise Forbidden("You cannot delete this user.")
    user.deleted_at = utcnow()
    for token in db.session.execute(
        select(ApiToken).filter_by(user_id=user.id, revoked_at=None)
    ).scalars():
        token.revoked_at = user.deleted_at
    db.session.flush()


# --- API tokens -----------------------------------------------------------------------


def issue_token(user: User, name: str = "api", ttl_days: int | None = 90) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the raw token, which is never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=_hash_token(raw), prefix=raw[:10])
    if ttl_days:
        token.expires_at = utcnow() + timedelta(days=ttl_days)
    db.session.add(token)
    db.session.flush()
    return token, raw


def list_tokens(user: User) -> list[ApiToken]:
    return list(
        db.session.execute(
            select(ApiToken).filter_by(user_id=user.id).order_by(ApiToken.id)
        ).scalars()
    )


def revoke_token(actor: User, token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    # Someone else's token looks exactly like a missing one.
    if token is None or (token.user_id != actor.id and not actor.is_platform_admin):
        raise NotFound("Token not found.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.flush()
    return token


@functools.cache
def _token_statement():
    # One statement for the token, its user and the user's roles; built once (every
    # bearer request without a cache hit runs it, and building it cost as much as
    # compiling it from SQLAlchemy's cache).
    return (
        select(ApiToken)
        .where(ApiToken.token_hash == bindparam("token_hash"))
        .options(joinedload(ApiToken.user).joinedload(User.roles))
    )


def _hash_of_wellformed(raw: str) -> str | None:
    """The hash to look ``raw`` up by, or None for what cannot be one of our tokens."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    return _hash_token(raw)


def _usable(revoked_at, expires_at, now) -> bool:
    """Not revoked and not expired: the checks every token look-up makes."""
    return revoked_at is None and (expires_at is None or expires_at >= now)


def user_for_token(raw: str) -> User | None:
    token_hash = _hash_of_wellformed(raw)
    if token_hash is None:
        return None
    now = utcnow()
    # The shared cache first: revocations and account changes overwrite its entries
    # (app/accounts/token_cache.py says how they reach every process).
    user = token_cache.cached_user(token_hash, now)
    if user is not None:
        return user
    token = (
        db.session.execute(_token_statement(), {"token_hash": token_hash})
        .unique()
        .scalar_one_or_none()
    )
    if token is None or not _usable(token.revoked_at, token.expires_at, now):
        return None
    user = token.user
    if user is None or not user.is_active:
        return None
    token_cache.remember(token, user)
    # Write at most once a minute so token-authenticated reads stay read-only.
    if _last_use_is_stale(token.last_used_at, now):
        token.last_used_at = now
    return user


def _last_use_is_stale(last_used_at, now) -> bool:
    return last_used_at is None or (now - last_used_at).total_seconds() > 60


def principal_for_token(raw: str) -> Principal | None:
    """:func:`user_for_token` for hot read paths: the same checks (revoked, expired,
    inactive or deleted account: None), the same shared cache and tombstones, the same
    ``last_used_at`` bookkeeping, but a :class:`Principal` read with one Core statement
    instead of an ORM user (app/accounts/principal.py says why and when)."""
    token_hash = _hash_of_wellformed(raw)
    if token_hash is None:
        return None
    now = utcnow()
    found = token_cache.cached_principal(token_hash, now)
    if found is not None:
        return found
    # Core, on the request's own connection (and transaction): no ORM loading.
    connection = db.session.connection()
    rows = connection.execute(principal.token_statement(), {"token_hash": token_hash}).all()
    if not rows:
        return None
    first = rows[0]
    if not _usable(first.revoked_at, first.expires_at, now):
        return None
    if not first.is_active_account or first.deleted_at is not None:
        return None
    found = principal.from_rows(rows)
    token_cache.remember_principal(token_hash, first.expires_at, found)
    _note_last_use(connection, first, now)
    return found


def principal_for_token_with(raw: str, companion, params: dict) -> tuple[Principal | None, Any]:
    """:func:`principal_for_token` and the row of ``companion`` (a Core SELECT of at most
    one row, with ``params``) read in **one** statement (``principal.token_statement_with``):
    (principal, row or None), or (None, None) for a token that is refused.

    The shared cache is not read: the statement that must run anyway for the companion
    checks the token in the database too, which costs less than a cache round trip and
    sees a revocation at once on every worker without tombstones."""
    token_hash = _hash_of_wellformed(raw)
    if token_hash is None:
        return None, None
    now = utcnow()
    merged, start, width, row_type = principal.token_statement_with(companion)
    connection = db.session.connection()
    rows = connection.execute(merged, {**params, "token_hash": token_hash}).all()
    if not rows:
        return None, None
    first = rows[0]
    if not _usable(first.revoked_at, first.expires_at, now):
        return None, None
    if not first.is_active_account or first.deleted_at is not None:
        return None, None
    found = principal.from_rows(rows)
    _note_last_use(connection, first, now)
    return found, principal.companion_row(first, start, width, row_type)


def _note_last_use(connection, token_row, now) -> None:
    if _last_use_is_stale(token_row.last_used_at, now):
        # Committed with the request's unit of work (rolled back with an error), like
        # user_for_token's; on a read-only request it opens the transaction.
        connection.execute(
            update(ApiToken).where(ApiToken.id == token_row.token_id).values(last_used_at=now)
        )
