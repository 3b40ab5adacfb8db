"""The job layer: eager mode keeps the caller's session, the in-process pool runs jobs in
their own sessions, Redis is reached through one pooled client and an unreachable Redis
is an error, never a lost job."""

from __future__ import annotations

import logging
import threading
import uuid

import pytest
from sqlalchemy import inspect, select

from app import jobs
from app.accounts import services as accounts
from app.accounts.models import Region
from app.extensions import db
from tests.conftest import free_port, queued_jobs_app

# --- job functions, referenced by dotted path like real jobs ----------------------------

_gate = threading.Event()


def add_region(code: str) -> str:
    accounts.ensure_region(code, f"区域 {code}", f"Region {code}")
    return code


def add_region_then_queue_another(code: str) -> None:
    add_region(code)
    jobs.enqueue("tests.test_jobs:add_region", code + "-next")


def add_region_and_fail(code: str) -> None:
    add_region(code)
    raise RuntimeError("the job broke")


_failures: dict[str, int] = {}


def add_region_failing_first(code: str, failures: int) -> None:
    """Fails ``failures`` times (after writing, so a retry must not see that write)."""
    add_region(code)
    if _failures.get(code, 0) < failures:
        _failures[code] = _failures.get(code, 0) + 1
        raise RuntimeError(f"attempt {_failures[code]} broke")


def wait_for_gate_then_add(code: str) -> None:
    if not _gate.wait(timeout=60):
        raise TimeoutError("the test never opened the gate")
    add_region(code)


def _region_codes() -> set[str]:
    """What is committed, read on a connection of its own (not the test's session)."""
    with db.engine.connect() as conn:
        return set(conn.execute(select(Region.code)).scalars())


# --- eager mode (tests) ------------------------------------------------------------------


def test_eager_job_commits_and_keeps_the_callers_session(app, ctx, orgs):
    region = orgs.region
    jobs.enqueue("tests.test_jobs:add_region", "eager")
    assert "eager" in _region_codes()
    # The caller's objects are still attached to the caller's session, not torn down.
    assert inspect(region).session is db.session()
    assert region.name == "测试市"


def test_eager_job_failure_is_logged_and_leaves_the_caller_working(app, ctx, orgs, caplog):
    region = orgs.region
    with caplog.at_level(logging.ERROR, logger="app.jobs"):
        jobs.enqueue("tests.test_jobs:add_region_and_fail", "broken")
    assert "job tests.test_jobs:add_region_and_fail failed" in caplog.text
    assert "broken" not in _region_codes()  # the job's own work was rolled back
    assert region.name == "测试市"  # and the caller carries on in its session


def test_a_request_keeps_its_user_after_an_eager_job(app, make_user):
    """A request that runs an eager job still has its logged-in user afterwards (the
    media upload used to lose it: the job tore the request's session down)."""
    teacher = make_user("teacher")
    with app.test_request_context("/"):
        from flask_login import current_user, login_user

        login_user(teacher)
        name = current_user.name
        jobs.enqueue("tests.test_jobs:add_region", "in-request")
        assert current_user.name == name
        assert inspect(current_user._get_current_object()).session is db.session()


# --- the in-process pool (no Redis) ------------------------------------------------------


@pytest.fixture
def pool_app(app, tmp_path):
    # Retries at once: no test waits for a backoff.
    application = queued_jobs_app(app, tmp_path, JOBS_THREADS=2, JOBS_RETRY_INTERVALS=(0,))
    yield application
    assert jobs.drain(application, timeout=60)
    with application.app_context():
        db.engine.dispose()


def test_pool_runs_jobs_in_their_own_session(pool_app, ctx):
    with pool_app.app_context():
        jobs.enqueue("tests.test_jobs:add_region_then_queue_another", "pooled")
        # Pending work of the enqueuing session is not the job's: it must not commit it.
        db.session.add(Region(code="uncommitted", name="未提交"))
        assert jobs.drain(pool_app, timeout=60)
        db.session.rollback()
    codes = _region_codes()
    assert {"pooled", "pooled-next"} <= codes
    assert "uncommitted" not in codes


def test_pool_survives_a_failing_job(pool_app, ctx, caplog):
    with pool_app.app_context(), caplog.at_level(logging.ERROR, logger="app.jobs"):
        jobs.enqueue("tests.test_jobs:add_region_and_fail", "pool-broken")
        jobs.enqueue("tests.test_jobs:add_region", "pool-after")
        assert jobs.drain(pool_app, timeout=60)
    assert "job tests.test_jobs:add_region_and_fail failed" in caplog.text
    codes = _region_codes()
    assert "pool-after" in codes and "pool-broken" not in codes


def test_pool_retries_a_failed_job_until_it_succeeds(pool_app, ctx, caplog):
    with pool_app.app_context(), caplog.at_level(logging.WARNING, logger="app.jobs"):
        code = "flaky-" + uuid.uuid4().hex[:8]  # _failures outlives the backend's run
        jobs.enqueue("tests.test_jobs:add_region_failing_first", code, 2)
        assert jobs.drain(pool_app, timeout=60)
    assert _failures[code] == 2
    assert code in _region_codes()  # the third attempt committed, once
    assert "attempt 3 in 0 s" in caplog.text


def test_pool_gives_up_after_the_configured_retries(pool_app, ctx, caplog):
    pool_app.config["JOBS_RETRIES"] = 1
    with pool_app.app_context(), caplog.at_level(logging.WARNING, logger="app.jobs"):
        code = "hopeless-" + uuid.uuid4().hex[:8]
        jobs.enqueue("tests.test_jobs:add_region_failing_first", code, 5)
        assert jobs.drain(pool_app, timeout=60)
    assert _failures[code] == 2
    assert "gave up after 2 attempts" in caplog.text
    assert code not in _region_codes()


def test_shutdown_runs_retries_that_are_not_due_yet(app, ctx, tmp_path):
    """A process that stops (gunicorn worker exit) does not wait an hour for a backoff,
    nor drop the job: the retry runs at once, and shutdown waits for it."""
    application = queued_jobs_app(app, tmp_path, JOBS_RETRY_INTERVALS=(3600,))
    code = "at-exit-" + uuid.uuid4().hex[:8]
    with application.app_context():
        jobs.enqueue("tests.test_jobs:add_region_failing_first", code, 1)
    # The first attempt has failed once its retry is scheduled (a timer, not a thread).
    pool = jobs._state(application).pool
    with pool.changed:
        assert pool.changed.wait_for(lambda: pool.timers, timeout=60)
    assert jobs.drain(application, timeout=0.01) is False
    assert jobs.shutdown(application, timeout=60) is True
    assert code in _region_codes()
    with application.app_context():
        db.engine.dispose()


def test_drain_reports_jobs_still_running(pool_app, ctx):
    _gate.clear()
    with pool_app.app_context():
        jobs.enqueue("tests.test_jobs:wait_for_gate_then_add", "gated")
        assert jobs.drain(pool_app, timeout=0.05) is False
        _gate.set()
        assert jobs.drain(pool_app, timeout=60) is True
    assert "gated" in _region_codes()


def always_fail(code: str) -> None:
    raise RuntimeError(f"{code} always breaks")


def test_settle_does_not_wait_through_a_failing_jobs_back_off(app, ctx, tmp_path):
    """A job that keeps failing holds a command run once (``flask content load``) only
    for the configured bound, not through its back-offs; the job is named as left."""
    application = queued_jobs_app(
        app, tmp_path, JOBS_RETRY_INTERVALS=(3600,), JOBS_CLI_RETRY_WAIT_SECONDS=0
    )
    with application.app_context():
        jobs.enqueue("tests.test_jobs:always_fail", "settle")
        jobs.enqueue("tests.test_jobs:add_region", "settle-ok")
        left = []
        waiter = threading.Thread(target=lambda: left.extend(jobs.settle(application)))
        waiter.start()
        waiter.join(timeout=60)  # the old wait (drain) sat here for the hour's back-off
        assert not waiter.is_alive()
        assert left == [("tests.test_jobs:always_fail", 1)]
        assert jobs.unfinished() == 1  # still waiting for its retry
    assert "settle-ok" in _region_codes()
    assert jobs.shutdown(application, timeout=60) is True
    with application.app_context():
        db.engine.dispose()


def test_settle_waits_for_running_jobs_and_for_a_retry_within_the_bound(app, ctx, tmp_path):
    _gate.clear()
    application = queued_jobs_app(
        app, tmp_path, JOBS_RETRY_INTERVALS=(0.2,), JOBS_CLI_RETRY_WAIT_SECONDS=0
    )
    code = "settle-flaky-" + uuid.uuid4().hex[:8]
    with application.app_context():
        jobs.enqueue("tests.test_jobs:wait_for_gate_then_add", "settle-gated")
        left = ["not returned"]
        waiter = threading.Thread(target=lambda: left.__setitem__(0, jobs.settle(application)))
        waiter.start()
        # A running job is waited for whatever the retry bound.
        _gate.set()
        waiter.join(timeout=60)
        assert left == [[]]
        # A retry due within the bound is waited for.
        jobs.enqueue("tests.test_jobs:add_region_failing_first", code, 1)
        assert jobs.settle(application, retry_wait=60) == []
    assert {"settle-gated", code} <= _region_codes()
    assert jobs.shutdown(application, timeout=60) is True
    with application.app_context():
        db.engine.dispose()


# --- Redis -------------------------------------------------------------------------------


def test_enqueue_reuses_one_pooled_redis_connection(redis_app, ctx):
    from rq import Queue, SimpleWorker

    application, probe, name = redis_app
    with application.app_context():
        for n in range(20):
            jobs.enqueue("tests.test_jobs:add_region", f"redis-{n}")
    connected = [c for c in probe.client_list() if c.get("name") == name]
    assert len(connected) == 1, connected
    queue = Queue(name, connection=probe)
    assert queue.count == 20
    with application.app_context():
        SimpleWorker([queue], connection=probe).work(burst=True)
    assert {f"redis-{n}" for n in range(20)} <= _region_codes()
    assert queue.count == 0


def test_unreachable_redis_is_a_clear_error_not_a_lost_job(app, tmp_path):
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    application = queued_jobs_app(app, tmp_path, url, JOBS_REDIS_CONNECT_TIMEOUT=1)
    with application.app_context(), pytest.raises(jobs.JobsUnavailable) as raised:
        jobs.enqueue("tests.test_jobs:add_region", "lost?")
    message = raised.value.message
    assert "unreachable" in message and "nothing was queued" in message
    assert "127.0.0.1" in message and "s3cret" not in message
    assert raised.value.status == 503

    result = application.test_cli_runner().invoke(args=["jobs", "worker", "--burst"])
    assert result.exit_code == 1
    assert "is unreachable" in result.output and "s3cret" not in result.output
    with application.app_context():
        db.engine.dispose()
