"""The shared launch store: database and Redis behave the same (a key is taken once)."""

from __future__ import annotations

import uuid

import pytest

from app.lti.store import LaunchStore


def _exercise(store: LaunchStore) -> None:
    key = "nonce-" + uuid.uuid4().hex
    assert store.get(key) is None and store.take(key) is None
    store.put(key, {"state": "s"}, 60, new=True)
    assert store.get(key) == {"state": "s"}
    assert store.take(key) == {"state": "s"}
    assert store.take(key) is None  # consumed once
    store.put(key, {"v": 1}, 60)
    store.put(key, {"v": 2}, 60)  # overwrite
    assert store.get(key) == {"v": 2}


def test_database_store(ctx):
    from app.extensions import db

    store = LaunchStore(None)
    _exercise(store)
    expired = "state-" + uuid.uuid4().hex
    store.put(expired, {"x": 1}, -5, new=True)
    assert store.get(expired) is None and store.take(expired) is None
    store.put(expired, {"x": 1}, -5, new=True)
    assert store.purge_expired() >= 1
    db.session.commit()


def test_redis_store():
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/15").ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at 127.0.0.1:6379: {exc}")
    _exercise(LaunchStore("redis://127.0.0.1:6379/15"))
