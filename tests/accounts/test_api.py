"""Accounts API: tokens, who am I, organisations, district review policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.accounts import services
from app.accounts.models import ApiToken, District, User
from app.common.models import utcnow
from app.extensions import db
from tests.catalog.helpers import Api, assert_error


@pytest.fixture
def api(client, token_for):
    return Api(client, token_for)


def _issue(api, email, password="password123", **extra):
    return api.post("/api/v1/auth/tokens", json={"email": email, "password": password, **extra})


def _bearer(raw):
    return {"Authorization": f"Bearer {raw}"}


def test_token_lifecycle(api, make_user):
    teacher = make_user("teacher", email="Li@Example.test")
    issued = _issue(api, " li@example.TEST ", name="laptop")
    assert issued.status_code == 201, issued.json
    raw = issued.json["token"]
    assert raw.startswith("sy_") and issued.json["name"] == "laptop"
    me = api.get("/api/v1/me", headers=_bearer(raw))
    assert me.status_code == 200
    assert me.json["id"] == teacher.public_id and me.json["roles"][0]["role"] == "teacher"
    assert "password" not in me.json and "password_hash" not in me.json

    listed = api.get("/api/v1/auth/tokens", headers=_bearer(raw)).json
    assert [t["name"] for t in listed] == ["laptop"]
    assert "token" not in listed[0] and "token_hash" not in listed[0]
    # Only a hash is stored.
    assert db.session.execute(select(ApiToken.token_hash)).scalar_one() != raw

    assert (
        api.delete(f"/api/v1/auth/tokens/{issued.json['id']}", headers=_bearer(raw)).status_code
        == 204
    )
    for path in ("/api/v1/me", "/api/v1/courses", "/api/v1/auth/tokens"):
        assert_error(api.get(path, headers=_bearer(raw)), 401, "unauthorized")


def test_wrong_credentials_are_401_on_the_same_path(api, make_user, monkeypatch):
    make_user("teacher", email="t@example.test")
    calls = []
    real = services.check_password_hash
    monkeypatch.setattr(services, "check_password_hash", lambda h, p: calls.append(h) or real(h, p))
    wrong = assert_error(_issue(api, "t@example.test", "wrong-password"), 401, "unauthorized")
    unknown = assert_error(
        _issue(api, "nobody@example.test", "wrong-password"), 401, "unauthorized"
    )
    # Same message, and a password hash is checked either way (no shortcut for unknown emails).
    assert wrong["message"] == unknown["message"]
    assert len(calls) == 2
    assert db.session.execute(select(func.count(ApiToken.id))).scalar_one() == 0


BAD_TOKEN_REQUESTS = [
    ({"password": "password123"}, "email"),
    ({"email": "t@example.test"}, "password"),
    ({"email": "not-an-email", "password": "x"}, "email"),
    ({"email": "t@example.test", "password": "x", "admin": True}, "admin"),
    ({"email": "t@example.test", "password": "x" * 201}, "password"),
    ({"email": "t@example.test", "password": 12345678}, "password"),
    ({"email": "t@example.test", "password": "password123", "name": ""}, "name"),
    ({"email": "t@example.test", "password": "password123", "name": "n\x00"}, "name"),
    ({"email": "t@example.test", "password": "password123", "name": "n" * 101}, "name"),
]


def test_token_request_validation(api, make_user):
    make_user("teacher", email="t@example.test")
    for body, field in BAD_TOKEN_REQUESTS:
        assert field in assert_error(api.post("/api/v1/auth/tokens", json=body), 422)["fields"]
    assert db.session.execute(select(func.count(ApiToken.id))).scalar_one() == 0


def test_token_request_bad_bodies(api):
    assert_error(api.post("/api/v1/auth/tokens", data="{", content_type="application/json"), 400)
    assert_error(api.post("/api/v1/auth/tokens", data="email=a&password=b"), 415)


def test_revoking_someone_elses_token_is_404(api, make_user):
    alice, bob = make_user("teacher"), make_user("teacher")
    alice_token, _ = services.issue_token(alice, "a")
    _, bob_raw = services.issue_token(bob, "b")
    db.session.commit()
    assert_error(api.delete(f"/api/v1/auth/tokens/{alice_token.id}", headers=_bearer(bob_raw)), 404)
    assert_error(api.delete("/api/v1/auth/tokens/424242", headers=_bearer(bob_raw)), 404)
    assert_error(api.delete(f"/api/v1/auth/tokens/{alice_token.id}"), 401)
    db.session.expire_all()
    assert db.session.get(ApiToken, alice_token.id).revoked_at is None


def test_expired_and_deleted_users_tokens_are_401(api, make_user):
    user = make_user("teacher")
    expired, expired_raw = services.issue_token(user, "old")
    expired.expires_at = utcnow() - timedelta(seconds=1)
    _, raw = services.issue_token(user, "current")
    db.session.commit()
    assert_error(api.get("/api/v1/me", headers=_bearer(expired_raw)), 401)
    assert api.get("/api/v1/me", headers=_bearer(raw)).status_code == 200
    # Soft delete without revoking: the user check alone must refuse the token.
    db.session.get(User, user.id).deleted_at = utcnow()
    db.session.commit()
    assert_error(api.get("/api/v1/me", headers=_bearer(raw)), 401)
    assert_error(api.get("/api/v1/courses", headers=_bearer(raw)), 401)
    assert_error(_issue(api, user.email), 401)


def test_delete_user_revokes_tokens(api, make_user):
    admin, user = make_user("platform_admin"), make_user("teacher")
    _, raw = services.issue_token(user)
    db.session.commit()
    with pytest.raises(services.Forbidden):
        services.delete_user(
            db.session.get(User, make_user("teacher").id), db.session.get(User, user.id)
        )
    services.delete_user(db.session.get(User, admin.id), db.session.get(User, user.id))
    db.session.commit()
    assert_error(api.get("/api/v1/me", headers=_bearer(raw)), 401)
    assert (
        db.session.execute(select(ApiToken).filter_by(user_id=user.id)).scalar_one().revoked_at
        is not None
    )


def test_malformed_tokens_are_401(api):
    for header in ["Bearer ", "Bearer sy_nope", "Bearer " + "x" * 5000, "bearer sy_\x01"]:
        assert_error(api.get("/api/v1/courses", headers={"Authorization": header}), 401)


def test_last_used_is_recorded(api, make_user):
    user = make_user("teacher")
    token, raw = services.issue_token(user)
    db.session.commit()
    api.get("/api/v1/vocabularies", headers=_bearer(raw))
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).last_used_at is not None


def test_me_requires_a_user(api):
    assert_error(api.get("/api/v1/me"), 401, "unauthorized")
    assert_error(api.get("/api/v1/auth/tokens"), 401)


def test_session_cookie_api_writes_need_csrf(client, login, make_user):
    teacher = make_user("teacher")
    login(teacher)
    assert client.get("/api/v1/me").json["id"] == teacher.public_id
    response = client.post("/api/v1/courses", json={"title": "x", "kind": "extended"})
    assert_error(response, 400)


def test_districts_and_schools(api, orgs):
    districts = api.get("/api/v1/districts").json
    assert [d["code"] for d in districts] == ["d1", "d2"]
    assert districts[1]["requires_review"] is True
    all_schools = api.get("/api/v1/schools").json
    assert {s["code"] for s in all_schools} == {"s1", "s2", "s3"}
    xihu = api.get(f"/api/v1/schools?district={orgs.district.id}").json
    assert {s["code"] for s in xihu} == {"s1", "s2"}
    assert api.get("/api/v1/schools?district=999").json == []
    for bad in ("abc", "0", "-1", "99999999999999999999"):
        assert_error(api.get(f"/api/v1/schools?district={bad}"), 422)


def test_district_review_toggle_authorisation(api, orgs, make_user):
    own_admin = make_user("district_admin", district=orgs.district)
    other_admin = make_user("district_admin", district=orgs.review_district)
    teacher, padmin = make_user("teacher"), make_user("platform_admin")
    path = f"/api/v1/districts/{orgs.district.id}"

    def review_flag():
        db.session.expire_all()
        return db.session.get(District, orgs.district.id).requires_review

    assert_error(api.patch(path, json={"requires_review": True}), 401)
    assert_error(api.patch(path, teacher, json={"requires_review": True}), 403)
    assert_error(api.patch(path, other_admin, json={"requires_review": True}), 403)
    for body in (
        {},
        {"requires_review": "maybe"},
        {"requires_review": True, "name": "x"},
        {"requires_review": None},
    ):
        assert_error(api.patch(path, own_admin, json=body), 422)
    assert_error(api.patch(path, own_admin, data="requires_review=1"), 415)
    assert review_flag() is False
    assert (
        api.patch(path, own_admin, json={"requires_review": True}).json["requires_review"] is True
    )
    assert review_flag() is True
    assert api.patch(path, padmin, json={"requires_review": False}).json["requires_review"] is False
    assert_error(api.patch("/api/v1/districts/4242", padmin, json={"requires_review": True}), 404)


def _create_user(runner, email: str, name: str, *more: str):
    """``flask accounts create-user`` with password "password123" and ``more`` options."""
    return runner.invoke(
        args=["accounts", "create-user", "--email", email, "--name", name]
        + ["--password", "password123", *more]
    )


def test_cli_create_user_and_issue_token(app, orgs):
    runner = app.test_cli_runner()
    result = _create_user(runner, "cli@example.test", "CLI", "--role", "teacher", "--school", "s1")
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["accounts", "issue-token", "--email", "cli@example.test"])
    assert result.exit_code == 0 and result.output.strip().startswith("sy_")
    bad = _create_user(runner, "x@example.test", "X", "--school", "nope")
    assert bad.exit_code != 0
    dup = _create_user(runner, "cli@example.test", "X")
    assert dup.exit_code != 0 and "Traceback" not in dup.output


def test_token_lifetime_comes_from_config(api, app, make_user, monkeypatch):
    make_user("teacher", email="ttl@example.test")
    monkeypatch.setitem(app.config, "API_TOKEN_TTL_DAYS", 2)
    issued = _issue(api, "ttl@example.test").json
    expires = db.session.get(ApiToken, issued["id"]).expires_at
    assert timedelta(days=1) < expires - utcnow() <= timedelta(days=2)


def test_oversized_body_is_413(api, app, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 2000)
    response = api.post(
        "/api/v1/auth/tokens", json={"email": "a@example.test", "password": "x" * 5000}
    )
    assert_error(response, 413, "too_large")
