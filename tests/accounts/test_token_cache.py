"""Bearer-token lookups in the shared cache (app/accounts/token_cache.py).

Two apps on the same database and the same Redis stand for two workers (or hosts): what
one of them revokes or changes must be refused by the other on its very next request,
although the other has the token's lookup cached.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from app.accounts import services, token_cache
from app.accounts.models import ApiToken, RoleAssignment, User
from app.common import cache
from app.common.models import utcnow
from app.extensions import db
from tests.conftest import make_app, redis_cached_apps


@pytest.fixture
def workers(database_url, tmp_path, ctx):
    with redis_cached_apps(database_url, tmp_path) as apps:
        yield apps


def _bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


def _token_statements(application):
    """Statements on api_tokens run by ``application`` (appended to the returned list)."""
    seen: list[str] = []
    with application.app_context():
        engine = db.engine

    def record(conn, cursor, statement, parameters, context, executemany):
        if "api_tokens" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return seen


def test_a_cached_token_is_not_looked_up_again(workers, make_user):
    user = make_user("teacher")
    _, raw = services.issue_token(user)
    db.session.commit()
    first = workers[0].test_client()
    statements = _token_statements(workers[0])
    assert first.get("/api/v1/me", headers=_bearer(raw)).status_code == 200
    looked_up = len(statements)
    assert looked_up >= 1
    answer = first.get("/api/v1/me", headers=_bearer(raw))
    assert answer.status_code == 200 and answer.get_json()["email"] == user.email
    assert len(statements) == looked_up


def _teacher_on_two_workers(apps, make_user):
    """A teacher's new token (committed) and a test client of each app; the first client
    has used the token once, successfully."""
    token, raw = services.issue_token(make_user("teacher"))
    db.session.commit()
    first, second = (application.test_client() for application in apps)
    assert first.get("/api/v1/me", headers=_bearer(raw)).status_code == 200
    return token, raw, first, second


def test_revocation_on_one_worker_is_refused_by_the_other_at_once(workers, make_user):
    token, raw, first, second = _teacher_on_two_workers(workers, make_user)
    token_id = token.id
    with workers[0].app_context():
        assert isinstance(cache.get(f"token:{token.token_hash}"), dict)  # cached
    revoked = second.delete(f"/api/v1/auth/tokens/{token_id}", headers=_bearer(raw))
    assert revoked.status_code in (200, 204)
    assert first.get("/api/v1/me", headers=_bearer(raw)).status_code == 401
    assert second.get("/api/v1/me", headers=_bearer(raw)).status_code == 401


def test_account_changes_elsewhere_are_seen_at_once(workers, make_user):
    removed, deleted = make_user("teacher"), make_user("teacher")
    _, removed_raw = services.issue_token(removed)
    _, deleted_raw = services.issue_token(deleted)
    db.session.commit()
    first = workers[0].test_client()
    for raw in (removed_raw, deleted_raw):
        assert first.get("/api/v1/me", headers=_bearer(raw)).status_code == 200
    me = first.get("/api/v1/me", headers=_bearer(removed_raw)).get_json()
    assert [r["role"] for r in me["roles"]] == ["teacher"] and me["school"]["id"]
    with workers[1].app_context():
        for assignment in db.session.execute(
            select(RoleAssignment).filter_by(user_id=removed.id)
        ).scalars():
            db.session.delete(assignment)
        db.session.get(User, deleted.id).deleted_at = utcnow()
        db.session.commit()
    assert first.get("/api/v1/me", headers=_bearer(removed_raw)).get_json()["roles"] == []
    assert first.get("/api/v1/me", headers=_bearer(deleted_raw)).status_code == 401


def test_a_lookup_read_before_a_revocation_is_not_stored_after_it(workers, make_user):
    """A worker that read the token just before another revoked it must not put its
    stale lookup into the cache afterwards (the revocation's marker wins)."""
    user = make_user("teacher")
    token, raw = services.issue_token(user)
    db.session.commit()
    token_id = token.id
    with workers[0].app_context():
        stale = db.session.get(ApiToken, token_id)
        stale_user = stale.user
        assert stale_user.roles  # loaded, as the real lookup does
        with workers[1].app_context():
            services.revoke_token(db.session.get(User, user.id), token_id)
            db.session.commit()
        token_cache.remember(stale, stale_user)
        assert not isinstance(cache.get(f"token:{stale.token_hash}"), dict)
        db.session.rollback()
    assert workers[0].test_client().get("/api/v1/me", headers=_bearer(raw)).status_code == 401


def test_a_token_that_expires_while_cached_is_refused(workers, make_user):
    user = make_user("teacher")
    token, raw = services.issue_token(user)
    db.session.commit()
    first = workers[0].test_client()
    assert first.get("/api/v1/me", headers=_bearer(raw)).status_code == 200
    # Time passes: the expiry (in the row and in the cached entry) is now in the past.
    # The row is changed behind the ORM's back, so nothing marks the entry stale: only
    # the expiry check of a cache hit can refuse the token.
    past = utcnow().replace(year=2000)
    with workers[0].app_context():
        db.session.execute(
            ApiToken.__table__.update().where(ApiToken.id == token.id).values(expires_at=past)
        )
        db.session.commit()
        name = f"token:{token.token_hash}"
        entry = cache.get(name)
        assert isinstance(entry, dict)
        entry["expires_at"] = past
        cache.set(name, entry, 60)
    assert first.get("/api/v1/me", headers=_bearer(raw)).status_code == 401


def test_a_log_in_elsewhere_keeps_the_cached_lookup(workers, make_user):
    """The log-in time changes on every password log-in and LTI launch; it says nothing
    about what the token may do, so it costs no query for the user's tokens and keeps
    the cached lookup (a change that matters is tested above)."""
    user = make_user("teacher")
    token, raw = services.issue_token(user)
    db.session.commit()
    name, user_id = f"token:{token.token_hash}", user.id
    first = workers[0].test_client()
    assert first.get("/api/v1/me", headers=_bearer(raw)).status_code == 200
    statements = _token_statements(workers[1])
    with workers[1].app_context():
        db.session.get(User, user_id).last_login_at = utcnow()
        db.session.commit()
        assert isinstance(cache.get(name), dict)
    assert statements == []


def test_without_a_shared_cache_a_revocation_reaches_every_worker_at_once(
    database_url, tmp_path, ctx, make_user
):
    """Two workers with per-process caches (no Redis): token lookups are not cached,
    so the worker that did not revoke refuses the token on its very next request."""
    apps = [
        make_app(database_url, str(tmp_path / f"local{i}"), CACHE_TYPE="SimpleCache")
        for i in range(2)
    ]
    token, raw, first, second = _teacher_on_two_workers(apps, make_user)
    token_id = token.id
    assert first.get("/api/v1/me", headers=_bearer(raw)).status_code == 200
    revoked = second.delete(f"/api/v1/auth/tokens/{token_id}", headers=_bearer(raw))
    assert revoked.status_code in (200, 204)
    assert first.get("/api/v1/me", headers=_bearer(raw)).status_code == 401
    for application in apps:
        with application.app_context():
            db.engine.dispose()
