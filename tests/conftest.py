"""Test fixtures.

Every test that uses ``app`` runs twice: on SQLite (a file in a temp folder) and on
PostgreSQL (a throwaway database created on the server at ``TEST_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``, and dropped at the end).  When PostgreSQL
is unreachable its half is skipped with the reason shown in the summary.

Test-client requests always run in an application context of their own, as on a real
server, even while the test holds one (``ctx``): see :class:`IsolatedClient`.  Browser
tests use the ``browser`` and ``live_server`` fixtures (:mod:`tests.browser`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import socket
import uuid
from collections.abc import Iterator

import pytest
from flask import has_app_context
from flask.globals import _cv_app
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from app.accounts import services as accounts
from app.accounts.models import Role
from app.common.events import commit
from app.extensions import cache, db
from tests.browser import launch_chromium, serve

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_admin_engine():
    url = (
        ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        if ADMIN_URL.startswith("postgresql://")
        else ADMIN_URL
    )
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def create_postgres_database() -> tuple[str, callable]:
    """Create a uniquely named database; returns its URL and a function dropping it."""
    admin = _postgres_admin_engine()
    name = f"shuyuan_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable server, no permission...
        admin.dispose()
        pytest.skip(
            f"PostgreSQL not reachable at {ADMIN_URL}: {type(exc).__name__}: {exc}".splitlines()[0]
        )
    url = make_url(admin.url).set(database=name).render_as_string(hide_password=False)

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


# What a user's password costs in production (werkzeug's default, scrypt at n=2**15): kept
# for tests/accounts/test_password_hashing.py, which checks that production still uses it.
PRODUCTION_PASSWORD_HASH = accounts.generate_password_hash
PRODUCTION_DUMMY_HASH = accounts._DUMMY_HASH
# A hash method of the same kind (werkzeug's salted KDF, checked by check_password_hash the
# normal way) at a cost fit for tests.
TEST_PASSWORD_METHOD = "pbkdf2:sha256:1000"


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes():
    """scrypt takes 0.1-1 s of a core per hash on a loaded 2-core machine, and almost every
    test makes users with passwords (``make_user``, seeded sites, the demo content of the
    fuzz server) and logs them in: that was a third of the suite's time.  Tests hash at a
    cheap cost instead; logins still check the stored hash (and an unknown email is still
    checked against the dummy hash, at the same cost).  Session-scoped so that session
    fixtures (the fuzz server's demo users) are seeded cheaply too."""
    from functools import partial

    with pytest.MonkeyPatch.context() as patch:
        cheap = partial(PRODUCTION_PASSWORD_HASH, method=TEST_PASSWORD_METHOD)
        patch.setattr(accounts, "generate_password_hash", cheap)
        patch.setattr(accounts, "_DUMMY_HASH", cheap("timing-equaliser"))
        yield


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def database_url(backend, tmp_path_factory) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
        return
    url, drop = create_postgres_database()
    yield url
    drop()


def free_port() -> int:
    """A TCP port nobody listens on right now (for servers a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class IsolatedClient(FlaskClient):
    """A test client whose every request gets a fresh application context.

    Flask reuses the current application context for a request when the test already
    holds one (``ctx``), so ``g`` (Flask-Login's cached user, the locale) and the
    database session would be shared by the test and all its requests.  Here the
    request runs in a copy of the test's context variables with no application context,
    so Flask pushes a new one: a fresh ``g`` and a session of its own, as in production.

    The test's session is committed first: what the test prepared is what a real
    client would find stored, and its objects are expired so they are read afresh
    after the request.
    """

    def run_wsgi_app(self, environ, buffered=False):
        if not has_app_context():
            return super().run_wsgi_app(environ, buffered=buffered)
        session = db.session()
        if session.in_transaction():
            if session.get_transaction().is_active:
                commit()  # and deliver its after-commit signals, as a request would
            else:  # a failed flush the test provoked: nothing of it can be stored
                session.rollback()
        return contextvars.copy_context().run(self._run_without_app_context, environ, buffered)

    def _run_without_app_context(self, environ, buffered):
        _cv_app.set(None)
        return super().run_wsgi_app(environ, buffered=buffered)


def make_app(database_url: str, instance: str, **overrides):
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_PATH": instance,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "STORAGE_URL": f"file://{instance}/media",
        "SEARCH_INDEX_DIR": f"{instance}/search-index",
        "REDIS_URL": None,
        "PLUGINS": None,
        "WTF_CSRF_ENABLED": True,
        "JOBS_EAGER": True,
        # One app serves the whole session from one address: its counters would carry
        # from test to test.  tests/accounts/test_ratelimit.py builds apps with limits on.
        "RATELIMIT_ENABLED": False,
    }
    config.update(overrides)
    application = create_app(config)
    application.test_client_class = IsolatedClient
    return application


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    instance = str(tmp_path_factory.mktemp("instance"))
    application = make_app(database_url, instance)
    with application.app_context():
        db.create_all()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def _clear_tables() -> None:
    db.session.rollback()
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(autouse=True)
def _clean_database(request):
    """Each test starts from empty tables, on whichever backend it runs."""
    if "app" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    yield
    with application.app_context():
        _clear_tables()
        # Cached pages and counts (app/common/cache.py) describe rows just deleted
        # behind the app's back, without the signals that would invalidate them.
        cache.clear()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def chromium():
    """Headless Debian Chromium driven by Playwright, one per test session."""
    with launch_chromium() as browser:
        yield browser


@pytest.fixture(scope="session")
def browser(chromium):
    """The session's Chromium (``chromium`` under the name most tests use; a package
    that needs ``browser`` for something else, like tests/lti, asks for ``chromium``)."""
    return chromium


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """``app`` served over real HTTP on a free port; yields the base URL."""
    with serve(app) as base_url:
        yield base_url


class Orgs:
    """Region with two districts (Xihu without review, Shangcheng with) and schools."""

    def __init__(self):
        self.region = accounts.ensure_region("r", "测试市", "Test City")
        self.district = accounts.ensure_district(self.region, "d1", "西湖区", "Xihu")
        self.review_district = accounts.ensure_district(
            self.region, "d2", "上城区", "Shangcheng", requires_review=True
        )
        self.school = accounts.ensure_school(self.district, "s1", "求是中学", "Qiushi")
        self.other_school = accounts.ensure_school(self.district, "s2", "西湖小学", "Xihu Primary")
        self.review_school = accounts.ensure_school(
            self.review_district, "s3", "凤起中学", "Fengqi"
        )


@pytest.fixture
def orgs(ctx):
    result = Orgs()
    db.session.commit()
    return result


@pytest.fixture
def make_user(ctx, orgs):
    """``make_user("teacher", school=orgs.school)`` → a committed user with that role."""
    counter = {"n": 0}

    def make(role: str = "teacher", school=None, district=None, email=None, password="password123"):
        counter["n"] += 1
        school = (
            school
            if school is not None
            else (orgs.school if role in ("teacher", "student") else None)
        )
        if role == "district_admin" and district is None:
            district = orgs.district
        user = accounts.create_user(
            email or f"{role}{counter['n']}@example.test",
            f"{role} {counter['n']}",
            password,
            school=school,
            district=district,
        )
        scope = {}
        if role in ("teacher", "student"):
            scope = {"school": school}
        elif role == "district_admin":
            scope = {"district": district}
        accounts.assign_role(user, Role(role), **scope)
        db.session.commit()
        return user

    return make


@pytest.fixture
def token_for(ctx):
    def issue(user) -> dict:
        _, raw = accounts.issue_token(user, "test")
        db.session.commit()
        return {"Authorization": f"Bearer {raw}"}

    return issue


@pytest.fixture
def login(client):
    """Log a user in through the real form (session cookie + CSRF token)."""
    import re

    def do(user, password="password123"):
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(
            1
        )
        response = client.post(
            "/login", data={"email": user.email, "password": password, "csrf_token": token}
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return client

    return do


def csrf_token_from(client, path="/login") -> str:
    import re

    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


# --- Redis-backed jobs --------------------------------------------------------------------

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def queued_jobs_app(app, tmp_path, redis_url: str | None = None, **config):
    """An app on ``app``'s database whose jobs are queued (``JOBS_EAGER=False``), on
    ``redis_url`` or, without it, in the in-process pool; ``config`` adds settings."""
    return make_app(
        app.config["SQLALCHEMY_DATABASE_URI"],
        str(tmp_path),
        JOBS_EAGER=False,
        REDIS_URL=redis_url,
        **config,
    )


@contextlib.contextmanager
def redis_cached_apps(database_url: str, folder, count: int = 2, **overrides) -> Iterator[list]:
    """``count`` apps on one database sharing their cache on Redis (``TEST_REDIS_URL``)
    under a key prefix of their own: two gunicorn workers, or two hosts.  Skips the test
    when Redis does not answer; the prefix's keys are deleted afterwards."""
    from redis import Redis

    connection = Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1)
    try:
        connection.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis not reachable at {TEST_REDIS_URL}: {exc}")
    prefix = f"shuyuan-test-cache-{uuid.uuid4().hex[:8]}:"
    apps = [
        make_app(
            database_url,
            f"{folder}/worker{i}",
            CACHE_TYPE="RedisCache",
            CACHE_REDIS_URL=TEST_REDIS_URL,
            CACHE_KEY_PREFIX=prefix,
            **overrides,
        )
        for i in range(count)
    ]
    try:
        yield apps
    finally:
        for key in connection.scan_iter(f"{prefix}*"):
            connection.delete(key)
        for application in apps:
            with application.app_context():
                db.engine.dispose()
        connection.close()


@pytest.fixture
def redis_app(app, tmp_path):
    """An app on the test database whose jobs go to a queue of its own on Redis (deleted
    afterwards): ``(application, probe connection, queue name)``."""
    from redis import Redis
    from redis.exceptions import RedisError
    from rq import Queue

    from app import jobs

    probe = Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        probe.ping()
    except RedisError as exc:
        pytest.skip(f"Redis not reachable at {TEST_REDIS_URL}: {exc}")
    name = f"shuyuan-test-{uuid.uuid4().hex[:10]}"
    application = queued_jobs_app(
        app, tmp_path, TEST_REDIS_URL, JOBS_QUEUE=name, JOBS_REDIS_CLIENT_NAME=name
    )
    yield application, probe, name
    Queue(name, connection=probe).delete(delete_jobs=True)
    with application.app_context():
        db.engine.dispose()
    jobs.redis_client(application).close()
    probe.close()
