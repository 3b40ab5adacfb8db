"""Launch state shared by every worker: issued states and nonces, pending cookie-less
launches, deep-linking selections, the platforms' JWKS cache."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import current_app
from pylti1p3.launch_data_storage.base import LaunchDataStorage
from sqlalchemy import delete, text

from app.common.models import utcnow
from app.extensions import db
from app.lti.models import LtiLaunchData


class LaunchStore:
    """Key → JSON value with expiry, shared by every worker (database, or Redis).

    ``take`` removes and returns a value atomically: a nonce or state can be consumed by
    exactly one request even when two workers receive the same id_token at once.
    """

    def __init__(self, redis_url: str | None = None):
        self._redis = None
        if redis_url:
            from redis import Redis

            self._redis = Redis.from_url(redis_url)

    @property
    def in_database(self) -> bool:
        """Whether values live in the request's database transaction (else on Redis, where
        a ``take`` is final the moment it returns, whatever the transaction does)."""
        return self._redis is None

    def put_many(self, values: dict[str, Any], ttl: int) -> None:
        """Store several fresh, random keys at once: one INSERT, or one Redis round trip
        (a pipeline, not a transaction: each SET stands alone, as ``put``'s would)."""
        if self._redis is not None:
            pipe = self._redis.pipeline(transaction=False)
            for key, value in values.items():
                pipe.set("shuyuan:lti:" + key, json.dumps(value), ex=max(int(ttl), 1))
            pipe.execute()
            return
        for key, value in values.items():
            self.put(key, value, ttl, new=True, flush=False)
        db.session.flush()

    def put(self, key: str, value: Any, ttl: int, new: bool = False, flush: bool = True) -> None:
        """Store ``value``; ``new`` says the key is fresh and random (no look-up needed);
        ``flush=False`` leaves the row to the next flush (several puts, one INSERT)."""
        if self._redis is not None:
            self._redis.set("shuyuan:lti:" + key, json.dumps(value), ex=max(int(ttl), 1))
            return
        row = None if new else db.session.get(LtiLaunchData, key)
        if row is None:
            row = LtiLaunchData(key=key)
            db.session.add(row)
        row.value = value
        row.expires_at = utcnow() + timedelta(seconds=ttl)
        if flush:
            db.session.flush()

    def relax_durability(self) -> None:
        """Let this transaction's commit return before PostgreSQL has flushed it to disk.

        Only for transactions that write nothing but short-lived launch state (the login):
        the commit is visible to every worker at once; what a database crash could lose
        is the last fraction of a second of such commits, i.e. a login the user starts
        again.  Replay protection does not depend on it (the launch that consumes a
        nonce commits durably).  Saves the WAL flush wait of every login (issue 14)."""
        if self._redis is not None:
            return
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))

    def get(self, key: str) -> Any:
        if self._redis is not None:
            raw = self._redis.get("shuyuan:lti:" + key)
            return json.loads(raw) if raw is not None else None
        row = db.session.get(LtiLaunchData, key)
        if row is None or row.expires_at < utcnow():
            return None
        return row.value

    def take(self, key: str) -> Any:
        """Remove ``key``; return its value if this call removed a live entry, else None."""
        if self._redis is not None:
            raw = self._redis.getdel("shuyuan:lti:" + key)
            return json.loads(raw) if raw is not None else None
        # One DELETE ... RETURNING: of two workers taking the same key, exactly one gets
        # the row back (PostgreSQL and SQLite >= 3.35 both support it).
        found = db.session.execute(
            delete(LtiLaunchData)
            .where(LtiLaunchData.key == key)
            .returning(LtiLaunchData.value, LtiLaunchData.expires_at),
            execution_options={"synchronize_session": False},
        ).first()
        if found is None or found.expires_at < utcnow():
            return None
        return found.value

    def purge_expired(self) -> int:
        if self._redis is not None:
            return 0
        result = db.session.execute(
            delete(LtiLaunchData).where(LtiLaunchData.expires_at < utcnow())
        )
        return result.rowcount or 0


def launch_store() -> LaunchStore:
    app = current_app._get_current_object()
    store = app.extensions.get("shuyuan_lti_store")
    if store is None:
        store = LaunchStore(app.config.get("LTI_REDIS_URL") or app.config.get("REDIS_URL"))
        app.extensions["shuyuan_lti_store"] = store
    return store


class SharedLaunchDataStorage(LaunchDataStorage):
    """pylti1p3's launch data storage on :class:`LaunchStore`.

    Keys are random (launch ids), so no per-browser session prefix is needed; launches
    therefore work without any cookie.
    """

    def get_session_cookie_name(self):
        return None

    def can_set_keys_expiration(self) -> bool:
        return True

    def get_value(self, key: str):
        return launch_store().get(self._prepare_key(key))

    def set_value(self, key: str, value, exp: int | None = None) -> None:
        launch_store().put(self._prepare_key(key), value, exp or 86400)

    def check_value(self, key: str) -> bool:
        return launch_store().get(self._prepare_key(key)) is not None
