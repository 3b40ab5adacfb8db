"""The caller of a hot read path, resolved from a bearer token without the ORM.

A bearer request normally becomes a :class:`~app.accounts.models.User` (Flask-Login's
``current_user``): one joined statement loaded into ORM objects, or an ORM user
unpickled from the shared cache and merged into the session.  On a path that only needs
to know *who may read what* — ``GET /api/v1/media/<id>/url`` is called once per file a
player opens — that costs more CPU than everything else the request does.  Such a view
is marked :func:`app.accounts.auth.principal_route`; its bearer token then resolves to a
:class:`Principal`: the user's id, organisation and role assignments, read with one Core
statement (no identity map, no object loading), cached exactly like the user lookup
(Redis only, tombstoned on revocation and on any change of the account or its roles,
app/accounts/token_cache.py), and answering every role check through the same
:class:`~app.accounts.models.RoleLookups` as ``User`` does.

A principal is read-only and detached from any session: a view that writes, or that
needs more than the checks of ``RoleLookups``, uses :func:`app.accounts.auth.actor`.
"""

from __future__ import annotations

import functools
import threading
from collections import namedtuple
from dataclasses import dataclass

from sqlalchemy import bindparam, literal_column, select, true
from sqlalchemy.sql import Select

from app.accounts.models import ApiToken, Role, RoleAssignment, RoleLookups, User


@dataclass(frozen=True, slots=True)
class Assignment:
    """One role assignment (the columns of a ``RoleAssignment`` the checks read)."""

    role: Role
    district_id: int | None
    school_id: int | None


@dataclass(frozen=True, slots=True)
class Principal(RoleLookups):
    """An active user as far as authorisation checks go (see the module docstring)."""

    id: int
    public_id: str
    school_id: int | None
    district_id: int | None
    roles: tuple[Assignment, ...]

    # What Flask-Login and the services ask of a user; a principal is only ever made
    # for an active account with a valid token.
    is_active = True
    is_authenticated = True
    is_anonymous = False


@functools.cache
def token_statement():
    """The token, its user and the user's role assignments (one row per assignment, one
    row with empty role columns when there is none), by ``token_hash``; built once."""
    return (
        select(
            ApiToken.id.label("token_id"),
            ApiToken.expires_at,
            ApiToken.revoked_at,
            ApiToken.last_used_at,
            User.id.label("user_id"),
            User.public_id,
            User.school_id,
            User.district_id,
            User.is_active_account,
            User.deleted_at,
            RoleAssignment.role,
            RoleAssignment.district_id.label("role_district_id"),
            RoleAssignment.school_id.label("role_school_id"),
        )
        .join(User, User.id == ApiToken.user_id)
        .outerjoin(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(ApiToken.token_hash == bindparam("token_hash"))
        .order_by(RoleAssignment.id)
    )


def from_rows(rows) -> Principal:
    """The principal of :func:`token_statement`'s rows (at least one)."""
    first = rows[0]
    return Principal(
        id=first.user_id,
        public_id=first.public_id,
        school_id=first.school_id,
        district_id=first.district_id,
        roles=tuple(
            Assignment(Role(row.role), row.role_district_id, row.role_school_id)
            for row in rows
            if row.role is not None
        ),
    )


# The merged statements of token_statement_with, by the companion statement (each built
# once: a companion is itself a statement built once, e.g. under functools.cache).
_MERGED: dict[int, tuple[Select, Select, int, int, type]] = {}
_MERGED_LOCK = threading.Lock()
_FOUND = "companion_found"


def token_statement_with(companion: Select) -> tuple[Select, int, int, type]:
    """:func:`token_statement` and ``companion`` (a Core SELECT of at most one row, e.g.
    the file a presigned-URL request asks for) in one statement: ``companion`` becomes a
    subquery LEFT JOINed ``ON true`` to every token row, so a request reads its caller
    and its row in one round trip.  Returns (statement, index of the companion's first
    column, number of its columns, row type with the companion's column names).

    The companion runs whatever the token is; its row is only handed out with a valid
    principal (:func:`companion_row`), so a bad token learns nothing from it."""
    built = _MERGED.get(id(companion))
    if built is not None and built[0] is companion:
        return built[1:]
    names = [column.key for column in companion.selected_columns]
    sub = companion.add_columns(literal_column("1").label(_FOUND)).subquery("companion")
    base = token_statement()
    merged = base.add_columns(
        *(sub.c[name].label(f"companion_{name}") for name in names), sub.c[_FOUND]
    ).outerjoin(sub, true())
    start = len(base.selected_columns)
    row_type = namedtuple("CompanionRow", names)
    with _MERGED_LOCK:
        _MERGED[id(companion)] = (companion, merged, start, len(names), row_type)
    return merged, start, len(names), row_type


def companion_row(row, start: int, width: int, row_type: type):
    """The companion's row out of a row of :func:`token_statement_with` (None when the
    companion found nothing)."""
    if row[start + width] is None:
        return None
    return row_type(*row[start : start + width])
