"""Platform and deployment rows cached on Redis (app/lti/registry_cache.py).

Two apps on the same database and the same Redis stand for two gunicorn workers (or two
hosts), each served on a port of its own: a returning launch through one of them reads
no registration row, and what the other suspends or withdraws is refused by the first on
its very next launch.
"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import event

from app.accounts.models import School
from app.common import cache
from app.common.events import commit
from app.extensions import db
from app.lti import registry_cache
from app.lti.models import LtiDeployment, LtiPlatform
from app.lti.services import registrations
from tests.browser import serve
from tests.conftest import redis_cached_apps
from tests.lti.helpers import published_resource


@pytest.fixture
def workers(database_url, tmp_path):
    """Two apps sharing a Redis cache, each on a live port: ``[(app, url), (app, url)]``."""
    with (
        redis_cached_apps(
            database_url, tmp_path, LTI_REGISTRATION_ALLOW_HOSTS=["127.0.0.1"]
        ) as apps,
        serve(apps[0]) as first,
        serve(apps[1]) as second,
    ):
        yield [(apps[0], first), (apps[1], second)]


def _registration_reads(application) -> list[str]:
    """SELECTs of platform or deployment rows run by ``application`` (appended to)."""
    seen: list[str] = []
    with application.app_context():
        engine = db.engine

    def record(conn, cursor, statement, parameters, context, executemany):
        flat = " ".join(statement.split())
        if flat.startswith("SELECT") and (
            "FROM lti_platforms" in flat or "FROM lti_deployments" in flat
        ):
            seen.append(flat[:120])

    event.listen(engine, "before_cursor_execute", record)
    return seen


def _launch(platform, base: str, content_id: str, sub: str = "stu-cache") -> requests.Response:
    hint = platform.prepare(sub=sub, custom={"resource": content_id})
    with requests.Session() as browser:
        return platform.launch(browser, base, hint)


def _in(application, change) -> None:
    """Run ``change()`` and commit in ``application`` (another worker's request)."""
    with application.app_context():
        change()
        commit()


@pytest.fixture
def registered_on_redis(workers, platform, orgs):
    """The simulator registered and approved for ``orgs.school`` through worker 2."""
    application = workers[1][0]
    with application.app_context():
        deployment = registrations.add_platform(
            None, platform.registration(orgs.school.code), system=True
        )
        commit()
        ids = deployment.platform.id, deployment.id
    return ids


def test_a_returning_launch_reads_no_registration_row(
    workers, platform, registered_on_redis, make_user
):
    (first, base), _ = workers
    content_id = published_resource(make_user("teacher"))
    assert _launch(platform, base, content_id).status_code == 302  # provisions, fills the cache
    reads = _registration_reads(first)
    assert _launch(platform, base, content_id).status_code == 302
    assert reads == []


def test_a_suspension_through_one_worker_is_refused_by_the_other_at_once(
    workers, platform, registered_on_redis, make_user
):
    (first, base), (second, _) = workers
    platform_id, deployment_pk = registered_on_redis
    content_id = published_resource(make_user("teacher"))
    assert _launch(platform, base, content_id).status_code == 302
    assert _launch(platform, base, content_id).status_code == 302  # served from the cache

    def suspend(active: bool):
        return lambda: setattr(db.session.get(LtiPlatform, platform_id), "active", active)

    _in(second, suspend(False))
    refused = _launch(platform, base, content_id)
    assert refused.status_code in (400, 403), refused.text
    assert "lti_unknown_platform" in refused.text
    _in(second, suspend(True))
    assert _launch(platform, base, content_id).status_code == 302

    def approve(approved: bool):
        return lambda: setattr(db.session.get(LtiDeployment, deployment_pk), "approved", approved)

    _in(second, approve(False))
    refused = _launch(platform, base, content_id)
    assert refused.status_code == 403, refused.text
    assert "lti_deployment_not_approved" in refused.text
    _in(second, approve(True))
    assert _launch(platform, base, content_id).status_code == 302


def test_only_real_changes_invalidate(workers, registered_on_redis, orgs, make_user):
    """A school or district written makes cached deployments stale (they are cached with
    them); a rolled-back change, or a user added to a school, does not."""
    _, (second, _) = workers
    with second.app_context():
        before = cache.generation(registry_cache.SCOPE)
    school_id = orgs.school.id

    def rename():
        db.session.get(School, school_id).name = "改名中学"

    _in(second, rename)
    with second.app_context():
        renamed = cache.generation(registry_cache.SCOPE)
        assert renamed > before
        rename()
        db.session.flush()
        db.session.rollback()
        assert cache.generation(registry_cache.SCOPE) == renamed
    make_user("student")  # a user of the school, committed by the test's own app
    with second.app_context():
        school = db.session.get(School, school_id)
        assert school is not None
        commit()
        assert cache.generation(registry_cache.SCOPE) == renamed


def test_without_redis_registrations_are_read_every_time(
    app, live, platform, registered, make_user
):
    """With a per-process cache nothing is cached: another worker could otherwise keep
    launching a suspended platform."""
    assert app.config["CACHE_TYPE"] != "RedisCache"
    content_id = published_resource(make_user("teacher"))
    assert _launch(platform, live, content_id).status_code == 302
    reads = _registration_reads(app)
    assert _launch(platform, live, content_id).status_code == 302
    assert len(reads) >= 3  # platform at the login and the launch, the deployment


def test_entries_are_decoded_once_per_process_and_never_changed(
    workers, platform, registered_on_redis, make_user
):
    """The rows' bytes are still read from Redis on every request (a suspension is seen
    at once: the tests above), but decoded once per process (issue 14, fifth pass); the
    decoded rows are shared between requests, so they must stay detached and clean: a
    request only ever works on its merged copy."""
    import ast
    from types import SimpleNamespace

    from sqlalchemy import inspect

    (first, base), _ = workers
    content_id = published_resource(make_user("teacher"))
    for _ in range(3):
        assert _launch(platform, base, content_id).status_code == 302
    rows = [
        value[1]
        for value in registry_cache._DECODED._values.values()
        if isinstance(value, tuple) and isinstance(value[-1], LtiPlatform | LtiDeployment)
    ]
    assert {type(row) for row in rows} == {LtiPlatform, LtiDeployment}
    for row in rows:
        state = inspect(row)
        assert state.detached and not state.modified, row

    # A serializer as the memo uses one (``loads`` of stored bytes; Flask-Caching's pickles).
    serializer = SimpleNamespace(
        loads=lambda raw: None if raw is None else ast.literal_eval(raw.decode()),
        dumps=lambda value: repr(value).encode(),
    )
    memo = cache.DecodedMemo(size=2)
    stored = serializer.dumps(("a" * 100,))
    assert memo.loads(serializer, stored) is memo.loads(serializer, stored)
    assert memo.loads(serializer, serializer.dumps(("b" * 100,))) == ("b" * 100,)
    assert memo.loads(serializer, serializer.dumps(7)) == 7
    assert memo.loads(serializer, None) is None
