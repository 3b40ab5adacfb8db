"""Brute-force protection (issue 10, item 9): per-address limits on the login form, the
token endpoint, failed xAPI Basic auth and LTI registration, and per-account lockouts
after repeated failed logins.  Each test builds its own app with limits switched on
(the shared test app has them off) on the same database as the shared one."""

from __future__ import annotations

import re
import uuid

import pytest
import redis

from tests.conftest import make_app

LOW = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_LOGIN": "1000 per minute",
    "RATELIMIT_TOKENS": "1000 per minute",
    "RATELIMIT_XAPI_AUTH_FAILURES": "1000 per minute",
    "RATELIMIT_LTI_REGISTER": "1000 per minute",
    "LOGIN_FAILURE_LIMITS": "1000 per minute",
}


@pytest.fixture
def limited(app, database_url, tmp_path):
    """``limited(**config)`` → a test client of a fresh app with rate limits on."""

    def build(**overrides):
        config = {**LOW, **overrides}
        config.setdefault("RATELIMIT_KEY_PREFIX", f"t{uuid.uuid4().hex[:8]}")
        return make_app(database_url, str(tmp_path / uuid.uuid4().hex[:6]), **config)

    return build


def _csrf(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _login(client, email, password, **headers):
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": _csrf(client)},
        headers=headers,
    )


def _token(client, email, password, **headers):
    return client.post(
        "/api/v1/auth/tokens", json={"email": email, "password": password}, headers=headers
    )


def test_login_form_is_limited_per_address_with_retry_after(limited, make_user):
    user = make_user("teacher")
    client = limited(RATELIMIT_LOGIN="3 per minute").test_client()
    statuses = [_login(client, user.email, "wrong-password").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    refused = _login(client, user.email, "password123", **{"Accept-Language": "en"})
    assert refused.status_code == 429
    # The window is a minute; the library rounds the wait up, so 61 s can be announced.
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert "Too many requests" in refused.get_data(as_text=True)
    # Reading the form is not an attempt.
    assert client.get("/login").status_code == 200
    # Another address is counted apart.
    other = client.post(
        "/login",
        data={"email": user.email, "password": "password123"},
        environ_overrides={"REMOTE_ADDR": "127.0.0.9"},
    )
    assert other.status_code != 429


def test_429_message_is_translated(limited, make_user):
    user = make_user("teacher")
    client = limited(RATELIMIT_TOKENS="1 per minute").test_client()
    _token(client, user.email, "wrong-password")
    chinese = _token(client, user.email, "wrong-password", **{"Accept-Language": "zh-CN"})
    assert chinese.status_code == 429
    assert chinese.json["error"]["code"] == "too_many_requests"
    assert "请求过于频繁" in chinese.json["error"]["message"]
    assert int(chinese.headers["Retry-After"]) >= 1


def test_token_endpoint_is_limited_but_reading_tokens_is_not(limited, make_user, token_for):
    user = make_user("teacher")
    client = limited(RATELIMIT_TOKENS="2 per minute").test_client()
    assert _token(client, user.email, "password123").status_code == 201
    assert _token(client, user.email, "password123").status_code == 201
    refused = _token(client, user.email, "password123", **{"Accept-Language": "en"})
    assert refused.status_code == 429
    assert refused.json["error"]["message"].startswith("Too many requests. Try again in ")
    assert "Retry-After" in refused.headers
    headers = token_for(user)
    for _ in range(4):
        assert client.get("/api/v1/auth/tokens", headers=headers).status_code == 200


def test_failed_logins_lock_the_account_progressively(limited, make_user):
    victim = make_user("teacher")
    bystander = make_user("teacher")
    app = limited(LOGIN_FAILURE_LIMITS="3 per 15 minutes;5 per hour")
    client = app.test_client()
    for _ in range(3):
        assert _login(client, victim.email, "guess").status_code == 401
    # Locked: even the right password is refused, and the wait is the window's.
    locked = _login(client, victim.email, "password123", **{"Accept-Language": "en"})
    assert locked.status_code == 429
    assert 60 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed logins for this account" in locked.get_data(as_text=True)
    # The same email in another case and with spaces, through the API, is the same account.
    api_client = app.test_client()  # no session cookie: no CSRF token needed
    assert _token(api_client, f"  {victim.email.upper()} ", "password123").status_code == 429
    # Another account on the same address is not affected.
    assert _login(client, bystander.email, "password123").status_code == 302


def test_success_clears_the_failure_count(limited, make_user):
    user = make_user("teacher")
    client = limited(LOGIN_FAILURE_LIMITS="3 per 15 minutes").test_client()
    for _ in range(2):
        assert _token(client, user.email, "guess").status_code == 401
    assert _token(client, user.email, "password123").status_code == 201
    for _ in range(2):
        assert _token(client, user.email, "guess").status_code == 401
    assert _token(client, user.email, "password123").status_code == 201


def test_unknown_accounts_are_counted_too(limited):
    """The answer must not reveal whether an address has an account."""
    client = limited(LOGIN_FAILURE_LIMITS="2 per 15 minutes").test_client()
    email = f"nobody-{uuid.uuid4().hex[:6]}@example.test"
    assert [_token(client, email, "x").status_code for _ in range(3)] == [401, 401, 429]


def test_xapi_counts_only_failed_basic_auth(limited):
    client = limited(RATELIMIT_XAPI_AUTH_FAILURES="3 per minute").test_client()
    for _ in range(6):  # successful (unauthenticated) reads are not counted
        assert client.get("/xapi/about").status_code == 200
    bad = {"Authorization": "Basic bm9ib2R5Om5vdGhpbmc=", "X-Experience-API-Version": "1.0.3"}
    statuses = [client.get("/xapi/statements", headers=bad).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    refused = client.get("/xapi/statements", headers=bad)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json["error"]["code"] == "too_many_requests"


def test_lti_registration_is_limited(limited):
    client = limited(RATELIMIT_LTI_REGISTER="2 per minute").test_client()
    statuses = [client.get("/lti/register").status_code for _ in range(3)]
    assert statuses[:2] != [429, 429] and statuses[2] == 429


def test_limits_off_switch(limited, make_user):
    user = make_user("teacher")
    client = limited(
        RATELIMIT_ENABLED=False, RATELIMIT_LOGIN="1 per minute", LOGIN_FAILURE_LIMITS="1 per hour"
    ).test_client()
    assert [_login(client, user.email, "guess").status_code for _ in range(3)] == [401] * 3


def _redis_url() -> str:
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable: {exc}")
    return url


def test_counters_are_shared_through_redis(limited, make_user):
    """Two workers (two apps) on one Redis count together, for addresses and accounts."""
    url = _redis_url()
    user = make_user("teacher")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    settings = {"REDIS_URL": url, "RATELIMIT_KEY_PREFIX": prefix}
    first = limited(RATELIMIT_TOKENS="3 per minute", **settings).test_client()
    second = limited(RATELIMIT_TOKENS="3 per minute", **settings).test_client()
    assert _token(first, user.email, "password123").status_code == 201
    assert _token(second, user.email, "password123").status_code == 201
    assert _token(first, user.email, "password123").status_code == 201
    assert _token(second, user.email, "password123").status_code == 429

    locking = {**settings, "RATELIMIT_KEY_PREFIX": prefix + "b"}
    a = limited(LOGIN_FAILURE_LIMITS="2 per 15 minutes", **locking).test_client()
    b = limited(LOGIN_FAILURE_LIMITS="2 per 15 minutes", **locking).test_client()
    assert _token(a, user.email, "guess").status_code == 401
    assert _token(b, user.email, "guess").status_code == 401
    assert _token(a, user.email, "password123").status_code == 429
    keys = redis.Redis.from_url(url).keys(f"*{prefix}*")
    assert keys and not any(user.email.encode() in key for key in keys)


def test_unreachable_redis_degrades_to_memory(limited, make_user, caplog):
    user = make_user("teacher")
    client = limited(
        REDIS_URL="redis://127.0.0.1:1/0",
        RATELIMIT_TOKENS="2 per minute",
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.5},
    ).test_client()
    statuses = [_token(client, user.email, "password123").status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    assert "falling back to in-memory" in caplog.text or "unavailable" in caplog.text


def test_endpoints_without_a_limit_are_not_evaluated_by_the_limiter(
    limited, make_user, monkeypatch
):
    """The limits in app/common/ratelimit.py are all there is: a request to any other
    endpoint (every API read, the presigned-URL route) skips the limiter's resolution
    of its (empty) limits; a limited door is still evaluated and still refuses."""
    user = make_user("teacher")
    application = limited(RATELIMIT_LOGIN="2 per minute")
    limiter = application.extensions["shuyuan_limiter"]
    evaluated: list[str] = []
    resolve = limiter.limit_manager.resolve_limits

    def counting(app, endpoint, *args, **kwargs):
        evaluated.append(endpoint)
        return resolve(app, endpoint, *args, **kwargs)

    monkeypatch.setattr(limiter.limit_manager, "resolve_limits", counting)
    client = application.test_client()
    for _ in range(3):
        assert client.get("/api/v1/media/nope/url").status_code == 404
    assert evaluated == []
    statuses = [_login(client, user.email, "wrong-password").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    assert "accounts.login" in evaluated


def test_the_limiters_request_hooks_run_only_for_limited_endpoints(limited, make_user):
    """Issue 14 (sixth pass): an endpoint without a limit (an LTI login or launch, any API
    read) does not even enter the limiter's hooks — no per-request limiter context is
    made — while a limited door still counts and refuses."""
    from flask.globals import request_ctx

    user = make_user("teacher")
    application = limited(RATELIMIT_LOGIN="2 per minute")
    client = application.test_client()
    with client:
        assert client.get("/api/v1/media/nope/url").status_code == 404
        assert not hasattr(request_ctx._get_current_object(), "_limiter_request_context")
    with client:
        assert _login(client, user.email, "wrong-password").status_code == 401
        assert hasattr(request_ctx._get_current_object(), "_limiter_request_context")
    statuses = [_login(client, user.email, "wrong-password").status_code for _ in range(2)]
    assert statuses == [401, 429]
