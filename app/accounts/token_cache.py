"""Bearer-token lookups cached in the shared cache (app/common/cache.py).

Every API request that sends a token would otherwise pay one statement for the token,
its user and the user's roles.  The cache keeps, per token hash, the token's id and
expiry and the user with its roles as loaded then (merged back into the request's
session without SQL, ``merge(load=False)``).

Revocation must reach every process, so an entry is never trusted past a change:

- Any flush that revokes, deletes or re-dates a token, changes a user row, or adds,
  changes or removes a role assignment writes a *tombstone* over the tokens concerned,
  at the flush and again after the commit (so a rolled-back change costs only misses).
- A reader that missed stores its entry with ``add`` (set-if-absent): a reader that read
  the token just before a revocation committed finds the tombstone and stores nothing,
  and a tombstone written after its entry overwrites it.  Expiry is checked on every hit.
- Only on Redis (``REDIS_URL``; every worker and host shares it), where a revocation is
  therefore refused everywhere at once.  Without Redis every request reads the token
  from the database: a per-process cache would let another worker accept a revoked
  token for seconds.  ``SHUYUAN_CACHE_TYPE=NullCache`` turns the cache off.

Two entries may exist per token, under the same rules: ``token:<hash>`` (the ORM user,
for ``current_user``) and ``principal:<hash>`` (the light
:class:`~app.accounts.principal.Principal` of hot read paths: a small tuple, unpickled
without touching the session).  A tombstone overwrites both.

Entries live at most ``TOKEN_CACHE_SECONDS`` (60 s) even on Redis, because the token's
``last_used_at`` is written on a miss (at most once a minute): it is then at most about
two minutes old.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app, has_app_context
from sqlalchemy import event, inspect, select

from app.accounts.models import ApiToken, RoleAssignment, User
from app.accounts.principal import Principal
from app.common import cache
from app.common.unit_of_work import CommitNote
from app.extensions import db

TOKEN_CACHE_SECONDS = 60
_TOMBSTONE = "revoked"
# Token columns whose change must reach every process (last_used_at is bookkeeping).
_TOKEN_STATE = ("revoked_at", "expires_at", "user_id", "token_hash")
# User columns that change on every log-in and say nothing about what the user may do: an
# LTI launch or a password log-in must not cost a query for the user's tokens.
_USER_BOOKKEEPING = frozenset({"last_login_at", "updated_at"})


def _name(token_hash: str) -> str:
    return f"token:{token_hash}"


def _principal_name(token_hash: str) -> str:
    return f"principal:{token_hash}"


def _timeout() -> int | None:
    """Seconds an entry lives, or None when token lookups are not cached.

    Only a cache every process shares (Redis) may hold them: with a per-process
    SimpleCache a token revoked through one gunicorn worker was still accepted by the
    other for up to ``CACHE_LOCAL_SECONDS`` (measured: 9.4 s with ``gunicorn -w 2``), and
    revocation must be immediate everywhere."""
    if current_app.config.get("CACHE_TYPE") == "RedisCache":
        return TOKEN_CACHE_SECONDS
    return None


def cached_user(token_hash: str, now: datetime) -> User | None:
    """The token's user from the cache, merged into this request's session, or None
    (a miss, a tombstone, or an entry whose token has expired since it was stored)."""
    if _timeout() is None:
        return None
    try:
        entry = cache.get(_name(token_hash))
    except Exception:  # pickled by another version of the models (a deployment): a miss
        return None
    if not isinstance(entry, dict):
        return None
    expires_at = entry.get("expires_at")
    if expires_at is not None and expires_at < now:
        return None
    try:
        return db.session.merge(entry["user"], load=False)
    except Exception:  # an entry from an older model (after a deployment): read the database
        cache.delete(_name(token_hash))
        return None


def remember(token: ApiToken, user: User) -> None:
    """Store a valid token's lookup unless a tombstone (or another reader) is there."""
    timeout = _timeout()
    if timeout is None:
        return
    cache.add(
        _name(token.token_hash),
        {"token_id": token.id, "expires_at": token.expires_at, "user": user},
        timeout,
    )


def cached_principal(token_hash: str, now: datetime) -> Principal | None:
    """The token's principal from the cache, or None (a miss, a tombstone, an entry from
    another version of the code, or a token that has expired since it was stored)."""
    if _timeout() is None:
        return None
    try:
        entry = cache.get(_principal_name(token_hash))
    except Exception:  # pickled by another version of the code (a deployment): a miss
        return None
    if not isinstance(entry, tuple) or len(entry) != 2:
        return None
    expires_at, principal = entry
    if not isinstance(principal, Principal) or (expires_at is not None and expires_at < now):
        return None
    return principal


def remember_principal(token_hash: str, expires_at: datetime | None, principal: Principal) -> None:
    """Store a valid token's principal unless a tombstone (or another reader) is there."""
    timeout = _timeout()
    if timeout is None:
        return
    cache.add(_principal_name(token_hash), (expires_at, principal), timeout)


def _tombstone(hashes) -> None:
    timeout = _timeout()
    if timeout is None:
        return
    for token_hash in hashes:
        # Outlives any entry a reader could still add from what it read before the change.
        cache.set(_name(token_hash), _TOMBSTONE, timeout * 2)
        cache.set(_principal_name(token_hash), _TOMBSTONE, timeout * 2)


def _changed(obj, columns=None, ignored=frozenset()) -> bool:
    state = inspect(obj)
    for attr in state.attrs:
        if (columns is not None and attr.key not in columns) or attr.key in ignored:
            continue
        if attr.history.has_changes():
            return True
    return False


def _after_flush(session, flush_context) -> None:
    if not has_app_context() or _timeout() is None:
        return
    hashes: set[str] = set()
    user_ids: set[int] = set()
    for obj in session.deleted:
        if isinstance(obj, ApiToken):
            hashes.add(obj.token_hash)
        elif isinstance(obj, User):
            user_ids.add(obj.id)
        elif isinstance(obj, RoleAssignment):
            user_ids.add(obj.user_id)
    for obj in session.dirty:
        if isinstance(obj, ApiToken) and _changed(obj, _TOKEN_STATE):
            hashes.add(obj.token_hash)
            hashes.update(inspect(obj).attrs.token_hash.history.deleted or ())
        elif isinstance(obj, User) and _changed(obj, ignored=_USER_BOOKKEEPING):
            user_ids.add(obj.id)
        elif isinstance(obj, RoleAssignment):
            user_ids.add(obj.user_id)
            user_ids.update(inspect(obj).attrs.user_id.history.deleted or ())
    for obj in session.new:
        if isinstance(obj, RoleAssignment):
            user_ids.add(obj.user_id)
    user_ids.discard(None)
    if user_ids:
        hashes.update(
            session.connection()
            .execute(select(ApiToken.token_hash).where(ApiToken.user_id.in_(user_ids)))
            .scalars()
        )
    if hashes:
        _tombstone(hashes)
        _tombstone_after_commit.mark(session, hashes)


# Token hashes tombstoned again once the flush's unit of work commits.  On a rollback the
# tombstones written at the flush stay (they only cost misses) and the note is forgotten.
_tombstone_after_commit = CommitNote("api-tokens", _tombstone, collects=True)


def install() -> None:
    if not event.contains(db.session, "after_flush", _after_flush):
        event.listen(db.session, "after_flush", _after_flush)
    _tombstone_after_commit.install()
