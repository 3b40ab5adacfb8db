"""Background work.

``enqueue("app.media.services:make_derivatives", media_id)`` runs a function later, away
from the request, on one of three paths chosen by configuration:

- ``REDIS_URL`` set: an RQ queue (``flask jobs worker`` runs beside gunicorn).  One
  Redis client per application holds a connection pool, so enqueueing reuses
  connections.  When Redis is configured but unreachable, :func:`enqueue` raises
  :class:`JobsUnavailable` (a 503) instead of dropping the job.
- no ``REDIS_URL``: a small thread pool inside the web process (one machine, no
  worker to run).  Each job gets its own application context and database session;
  :func:`drain` waits for the queued jobs (tests, shutdown).
- ``JOBS_EAGER`` (tests): the job runs at once, in the caller's application context
  and database session, and the caller carries on with that same session afterwards.

Jobs are referenced by dotted path and take only JSON-like arguments, so they run the
same in any process.  A job is its own unit of work: it commits once at the end (then
its after-commit signals are delivered) or rolls back on error.  Enqueue a job after
the commit that stored what it reads: a worker in another process only sees committed
rows.  Retrying with backoff is the caller's business (outbox tables), because only it
knows what is safe to repeat.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import click
from flask import Flask, current_app, has_app_context
from flask.cli import with_appcontext

from app.common import request_id
from app.errors import AppError

log = logging.getLogger(__name__)
_STATE = "shuyuan_jobs"


class JobsUnavailable(AppError):
    """The job queue is unreachable; nothing was queued.  Try again shortly."""

    status = 503
    code = "jobs_unavailable"


@dataclass
class _Jobs:
    """Per-application job machinery, created on first use."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    redis: object | None = None  # redis.Redis, holding its own connection pool
    queue: object | None = None  # rq.Queue bound to that client
    pool: ThreadPoolExecutor | None = None
    pending: set[Future] = field(default_factory=set)


def _state(app: Flask) -> _Jobs:
    return app.extensions[_STATE]


def _resolve(path: str):
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _redacted(url: str) -> str:
    """The Redis URL without its password, for messages and logs."""
    from redis.connection import parse_url

    options = parse_url(url)
    host = options.get("host") or options.get("path") or "?"
    port = f":{options['port']}" if options.get("port") else ""
    return f"redis://{host}{port}/{options.get('db', 0)}"


def redis_client(app: Flask | None = None):
    """The application's one Redis client for jobs (None without ``REDIS_URL``)."""
    app = app or current_app._get_current_object()
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    state = _state(app)
    with state.lock:
        if state.redis is None:
            from redis import Redis

            state.redis = Redis.from_url(
                url,
                socket_connect_timeout=app.config.get("JOBS_REDIS_CONNECT_TIMEOUT", 5),
                health_check_interval=30,
                client_name=app.config.get("JOBS_REDIS_CLIENT_NAME"),
            )
    return state.redis


def _queue(app: Flask):
    state = _state(app)
    connection = redis_client(app)
    with state.lock:
        if state.queue is None:
            from rq import Queue

            state.queue = Queue(app.config.get("JOBS_QUEUE", "shuyuan"), connection=connection)
    return state.queue


def check(app: Flask | None = None) -> None:
    """Raise :class:`JobsUnavailable` when Redis is configured but does not answer."""
    app = app or current_app._get_current_object()
    client = redis_client(app)
    if client is None:
        return
    from redis.exceptions import RedisError

    try:
        client.ping()
    except RedisError as exc:
        raise JobsUnavailable(_unreachable(app, exc)) from exc


def _unreachable(app: Flask, exc: Exception) -> str:
    return (
        f"Redis for background jobs at {_redacted(app.config['REDIS_URL'])} is unreachable "
        f"({type(exc).__name__}: {exc}); nothing was queued."
    )


# --- running one job ---------------------------------------------------------------------


def _run_in_current_session(path: str, args, kwargs):
    """Run, commit and deliver after-commit signals in the current session; roll back
    and re-raise on failure.  The session stays open for whoever holds it."""
    from app.common import events
    from app.extensions import db

    try:
        result = _resolve(path)(*args, **kwargs)
        events.commit()
        return result
    except Exception:
        db.session.rollback()
        log.exception("job %s failed", path)
        raise


def _run_in_own_context(app: Flask, path: str, args, kwargs):
    """A fresh application context is a fresh database session, removed afterwards."""
    with app.app_context():
        return _run_in_current_session(path, args, kwargs)


def run_job(path: str, *args, **kwargs):
    """Entry point of every queued job, in whatever process runs it (an RQ work horse,
    a pool thread).  Each call is its own unit of work in its own session."""
    from rq import get_current_job

    job = get_current_job()
    if job is not None:
        # The id of the request that queued the job, for the job's log lines.
        request_id.set_current((job.meta or {}).get("request_id"))
    if has_app_context():
        return _run_in_own_context(current_app._get_current_object(), path, args, kwargs)
    from app import create_app

    return _run_in_own_context(create_app(), path, args, kwargs)


# --- enqueueing --------------------------------------------------------------------------


def enqueue(path: str, *args, **kwargs) -> None:
    """Run ``path(*args, **kwargs)`` later (see the module docstring for where)."""
    app = current_app._get_current_object()
    if app.config.get("JOBS_EAGER"):
        # Like a real worker, a failing job does not fail the caller: it is logged, its
        # own work is rolled back, and the caller's session is left usable.
        with contextlib.suppress(Exception):  # already logged with its traceback
            _run_in_current_session(path, args, kwargs)
        return
    if app.config.get("REDIS_URL"):
        _enqueue_on_redis(app, path, args, kwargs)
        return
    _submit_to_pool(app, path, args, kwargs)


def _enqueue_on_redis(app: Flask, path: str, args, kwargs) -> None:
    from redis.exceptions import RedisError

    try:
        from rq import Retry

        _queue(app).enqueue(
            run_job,
            args=(path, *args),
            kwargs=kwargs,
            job_timeout=app.config.get("JOBS_TIMEOUT", 3600),
            # A job whose worker died mid-way (kill -9, OOM, host lost) is put back on the
            # queue by the next worker's registry clean-up instead of being lost.
            retry=Retry(max=app.config.get("JOBS_RETRIES", 3), interval=[10, 60, 300]),
            meta={"request_id": request_id.current()},
        )
    except RedisError as exc:
        log.error("could not enqueue %s: %s", path, exc)
        raise JobsUnavailable(_unreachable(app, exc)) from exc


def _submit_to_pool(app: Flask, path: str, args, kwargs) -> None:
    state = _state(app)
    with state.lock:
        if state.pool is None:
            state.pool = ThreadPoolExecutor(
                max_workers=app.config.get("JOBS_THREADS", 2), thread_name_prefix="shuyuan-job"
            )
        queued_by = request_id.current()

        def run():
            with request_id.bound(queued_by):
                _run_in_own_context(app, path, args, kwargs)

        future = state.pool.submit(run)
        state.pending.add(future)
    # The failure was logged by the job runner; a pool thread has no caller to raise to.
    future.add_done_callback(lambda done: _forget(state, done))


def _forget(state: _Jobs, future: Future) -> None:
    with state.lock:
        state.pending.discard(future)


def drain(app: Flask | None = None, timeout: float | None = None) -> bool:
    """Wait until the in-process jobs queued so far (and those they queue) are done.
    Returns False if some were still running after ``timeout`` seconds."""
    app = app or current_app._get_current_object()
    state = _state(app)
    while True:
        with state.lock:
            pending = set(state.pending)
        if not pending:
            return True
        _, not_done = wait(pending, timeout=timeout)
        if not_done:
            return False


# --- the worker --------------------------------------------------------------------------


@click.group("jobs", help="Background jobs.")
def jobs_cli():
    """Background jobs."""


@jobs_cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@with_appcontext
def worker(burst):
    """Run an RQ worker for REDIS_URL's queue."""
    from rq import Worker

    from app.extensions import db

    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        raise click.UsageError("REDIS_URL is not set: jobs run inside the web process.")
    try:
        check(app)
    except JobsUnavailable as exc:
        raise click.ClickException(exc.message) from exc
    # Each job runs in a forked work horse: it must not inherit pooled database
    # connections of this process (two processes on one socket corrupt both).
    db.engine.dispose()
    queue = _queue(app)
    Worker(
        [queue],
        connection=queue.connection,
        # How soon a job abandoned by a dead worker is found and retried.
        maintenance_interval=app.config.get("JOBS_MAINTENANCE_SECONDS", 60),
        job_monitoring_interval=10,
    ).work(burst=burst, with_scheduler=True)


def init_app(app: Flask) -> None:
    app.extensions[_STATE] = _Jobs()
    app.cli.add_command(jobs_cli)
