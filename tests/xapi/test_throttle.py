"""Failed Basic authentication on the LRS counted per address (app/xapi/throttle.py):
one storage read per window for a request, one hit per window for a 401, 429 with
Retry-After when a window is full, shared between workers through Redis, and never a
refusal or a 500 when the counter store is down."""

from __future__ import annotations

import uuid

import pytest
import redis

from app.common.ratelimit import get_limiter
from tests.conftest import TEST_REDIS_URL, make_app
from tests.xapi.conftest import Lrs, statement

BAD = "Basic " + "bm9ib2R5Om5vdGhpbmc="  # nobody:nothing


@pytest.fixture
def limited(app, database_url, tmp_path, orgs):
    """``limited(**config)`` -> (Lrs of a fresh app with rate limits on, that app)."""
    from app.common.events import commit
    from app.xapi import services

    with app.app_context():
        lrs_client, secret = services.create_client("throttle", orgs.district, ["all"])
        key = lrs_client.key
        commit()

    def build(**overrides):
        config = {
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_XAPI_AUTH_FAILURES": "1000 per minute",
            "RATELIMIT_KEY_PREFIX": f"t{uuid.uuid4().hex[:8]}",
            **overrides,
        }
        application = make_app(database_url, str(tmp_path / uuid.uuid4().hex[:6]), **config)
        return Lrs(application.test_client(), key, secret), application

    return build


def _bad(lrs: Lrs):
    return lrs.client.get(
        "/xapi/statements", headers={"Authorization": BAD, "X-Experience-API-Version": "2.0.0"}
    )


def test_a_request_reads_each_window_once_and_a_failure_hits_each_once(limited, monkeypatch):
    lrs, application = limited(RATELIMIT_XAPI_AUTH_FAILURES="20 per minute;200 per hour")
    with application.app_context():
        storage = get_limiter(application).storage
    calls: list[str] = []
    for name in ("get_moving_window", "acquire_entry", "incr", "get"):
        if hasattr(storage, name):
            original = getattr(storage, name)

            def counted(*args, _name=name, _original=original, **kwargs):
                calls.append(_name)
                return _original(*args, **kwargs)

            monkeypatch.setattr(storage, name, counted)
    assert lrs.post(statement()).status_code == 200
    assert calls == ["get_moving_window", "get_moving_window"]  # one read per window
    calls.clear()
    assert _bad(lrs).status_code == 401
    assert sorted(calls) == ["acquire_entry"] * 2 + ["get_moving_window"] * 2


def test_failures_only_are_counted_then_every_request_is_refused(limited):
    lrs, _application = limited(RATELIMIT_XAPI_AUTH_FAILURES="3 per minute")
    for _ in range(5):  # successful requests are not counted
        assert lrs.post(statement()).status_code == 200
    assert [_bad(lrs).status_code for _ in range(4)] == [401, 401, 401, 429]
    refused = lrs.post(statement())  # good credentials too, while the window is full
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["error"]["code"] == "too_many_requests"
    assert refused.headers["X-Experience-API-Version"]  # still an LRS answer
    zh = lrs.client.get("/xapi/about", headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 429 and "请求过于频繁" in zh.get_json()["error"]["message"]


def test_counts_are_shared_through_redis(limited):
    url = TEST_REDIS_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable: {exc}")
    settings = {"REDIS_URL": url, "RATELIMIT_KEY_PREFIX": f"t{uuid.uuid4().hex[:8]}"}
    first, _ = limited(RATELIMIT_XAPI_AUTH_FAILURES="2 per minute", **settings)
    second, _ = limited(RATELIMIT_XAPI_AUTH_FAILURES="2 per minute", **settings)
    assert _bad(first).status_code == 401
    assert _bad(second).status_code == 401
    assert first.post(statement()).status_code == 429


def test_unreachable_counter_store_counts_in_memory(limited, caplog):
    """Redis down: no 500 and no refusal for it, and guessing is still limited (in this
    process's memory, as Flask-Limiter's fallback did)."""
    lrs, _application = limited(
        REDIS_URL="redis://127.0.0.1:1/0",
        RATELIMIT_XAPI_AUTH_FAILURES="2 per minute",
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.2},
    )
    assert lrs.post(statement()).status_code == 200
    assert "counter unavailable" in caplog.text
    assert [_bad(lrs).status_code for _ in range(3)] == [401, 401, 429]


def test_limits_switched_off(limited):
    lrs, _application = limited(RATELIMIT_ENABLED=False, RATELIMIT_XAPI_AUTH_FAILURES="1/minute")
    assert [_bad(lrs).status_code for _ in range(3)] == [401, 401, 401]
