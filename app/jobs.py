"""Background work.

``enqueue("app.media.services:make_derivatives", media_id)`` runs a function later, away
from the request, on one of three paths chosen by configuration:

- ``REDIS_URL`` set: an RQ queue (``flask jobs worker`` runs beside gunicorn).  One
  Redis client per application holds a connection pool, so enqueueing reuses
  connections.  When Redis is configured but unreachable, :func:`enqueue` raises
  :class:`JobsUnavailable` (a 503) instead of dropping the job.
- no ``REDIS_URL``: worker threads inside the web process (one machine, no worker to
  run; ``JOBS_THREADS``, default 2), started on the first job and kept for the life of
  the process, taking jobs in the order they were queued.  Each job gets its own
  application context and database session.  A job that fails is queued again after
  ``JOBS_RETRY_INTERVALS`` seconds (10, 60, 300: the same schedule as RQ's retries),
  at most ``JOBS_RETRIES`` times.  :func:`drain` waits for every queued job, retries
  included (tests); at interpreter exit (a gunicorn worker stopping) the queue is
  drained for up to ``JOBS_SHUTDOWN_SECONDS`` (20 s), and retries not yet due are run
  at once, one last time, so a graceful stop loses nothing.  :func:`settle` is the
  wait of a command run once (``flask content load``): it waits for jobs queued or
  running, but for retries in back-off only ``JOBS_CLI_RETRY_WAIT_SECONDS`` in all, and
  names the jobs it leaves.
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

import atexit
import collections
import contextlib
import importlib
import logging
import queue as queue_module
import threading
import time
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
    pool: _Pool | None = None


@dataclass
class _Item:
    path: str
    args: tuple
    kwargs: dict
    request_id: str | None
    attempt: int = 0


class _Pool:
    """The in-process queue: worker threads that outlive requests, FIFO, with retries.

    ``unfinished`` counts every job not done yet: queued, running, or waiting for its
    retry; :meth:`wait` returns once it is 0."""

    def __init__(self, app: Flask, threads: int):
        self.app = app
        self.items: queue_module.SimpleQueue = queue_module.SimpleQueue()
        self.changed = threading.Condition()
        self.unfinished = 0
        # Dotted paths of the unfinished jobs (a retry keeps its job's entry).
        self.paths: collections.Counter[str] = collections.Counter()
        self.timers: dict[threading.Timer, _Item] = {}
        self.closing = False
        self.threads = [
            threading.Thread(target=self._work, name=f"shuyuan-job-{n}", daemon=True)
            for n in range(max(1, threads))
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, item: _Item) -> None:
        with self.changed:
            self.unfinished += 1
            self.paths[item.path] += 1
        self.items.put(item)

    def _work(self) -> None:
        while True:
            item = self.items.get()
            if item is None:
                return
            try:
                with request_id.bound(item.request_id):
                    _run_in_own_context(self.app, item.path, item.args, item.kwargs)
            except Exception:  # logged by the runner with its traceback
                if self._retry_later(item):
                    continue  # still unfinished: the retry will finish it
            except BaseException:  # noqa: BLE001 - a pool thread must never die
                log.exception("job %s ended abnormally", item.path)
            with self.changed:
                self.unfinished -= 1
                self.paths[item.path] -= 1
                if self.paths[item.path] <= 0:
                    del self.paths[item.path]
                self.changed.notify_all()

    def _retry_later(self, item: _Item) -> bool:
        retries = self.app.config.get("JOBS_RETRIES", 3)
        if item.attempt >= retries:
            log.error("job %s gave up after %d attempts", item.path, item.attempt + 1)
            return False
        intervals = self.app.config.get("JOBS_RETRY_INTERVALS") or (0,)
        delay = float(intervals[min(item.attempt, len(intervals) - 1)])
        again = _Item(item.path, item.args, item.kwargs, item.request_id, item.attempt + 1)
        log.warning("job %s failed; attempt %d in %.0f s", item.path, again.attempt + 1, delay)
        with self.changed:
            if self.closing or delay <= 0:
                self.items.put(again)
                return True
            timer = threading.Timer(delay, self._due, args=(again,))
            timer.daemon = True
            self.timers[timer] = again
            timer.start()
            # A waiter on ``changed`` (tests/test_jobs.py waits for the retry to be
            # scheduled) would otherwise sleep until its timeout: 60 s per run.
            self.changed.notify_all()
        return True

    def _due(self, item: _Item) -> None:
        with self.changed:
            for timer, waiting in list(self.timers.items()):
                if waiting is item:
                    del self.timers[timer]
                    break
            else:
                return  # already run by close()
            self.changed.notify_all()  # a waiter (settle) counts it as queued again
        self.items.put(item)

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.changed:
            while self.unfinished:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.changed.wait(remaining)
        return True

    def settle(self, retry_wait: float, progress=None) -> list[tuple[str, int]]:
        """Wait while jobs are queued or running; once every unfinished job is waiting
        for a retry's back-off, wait ``retry_wait`` seconds more in all (spread over the
        back-offs met), then give up.  ``progress(unfinished)`` is called about twice a
        second.  Returns ``(path, count)`` of the jobs left, or [] when all are done."""
        budget = retry_wait
        while True:
            with self.changed:
                if not self.unfinished:
                    left = []
                    break
                backing_off = len(self.timers) >= self.unfinished
                if backing_off and budget <= 0:
                    left = sorted(self.paths.items())
                    break
                step = min(budget, 0.5) if backing_off else 0.5
                started = time.monotonic()
                self.changed.wait(step)
                if backing_off:
                    budget -= time.monotonic() - started
                unfinished = self.unfinished
            if progress is not None:
                progress(unfinished)
        return left

    def close(self, timeout: float) -> bool:
        """Run retries that are not due yet at once, then wait for the queue to empty."""
        with self.changed:
            self.closing = True
            waiting = list(self.timers.items())
            self.timers.clear()
        for timer, item in waiting:
            timer.cancel()
            self.items.put(item)
        done = self.wait(timeout)
        if not done:
            log.error("%d background jobs were still unfinished at exit", self.unfinished)
        for _ in self.threads:
            self.items.put(None)
        return done


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
            retry=Retry(
                max=app.config.get("JOBS_RETRIES", 3),
                interval=list(app.config.get("JOBS_RETRY_INTERVALS") or (10, 60, 300)),
            ),
            meta={"request_id": request_id.current()},
        )
    except RedisError as exc:
        log.error("could not enqueue %s: %s", path, exc)
        raise JobsUnavailable(_unreachable(app, exc)) from exc


def _submit_to_pool(app: Flask, path: str, args, kwargs) -> None:
    state = _state(app)
    with state.lock:
        if state.pool is None:
            state.pool = _Pool(app, app.config.get("JOBS_THREADS", 2))
            atexit.register(shutdown, app)
        pool = state.pool
    pool.submit(_Item(path, tuple(args), dict(kwargs), request_id.current()))


def drain(app: Flask | None = None, timeout: float | None = None) -> bool:
    """Wait until the in-process jobs queued so far (those they queue, and retries of
    failed ones) are done.  Returns False if some were unfinished after ``timeout``
    seconds."""
    app = app or current_app._get_current_object()
    pool = _state(app).pool
    return True if pool is None else pool.wait(timeout)


def unfinished(app: Flask | None = None) -> int:
    """How many in-process jobs are queued, running or waiting for a retry (0 on RQ and
    in eager mode, where this process holds none)."""
    app = app or current_app._get_current_object()
    pool = _state(app).pool
    return 0 if pool is None else pool.unfinished


def settle(
    app: Flask | None = None, retry_wait: float | None = None, progress=None
) -> list[tuple[str, int]]:
    """The wait of a command run once: every in-process job queued or running is waited
    for, but a job failing again and again is not waited through its back-offs (10, 60,
    300 s): once only retries in back-off are left, at most ``retry_wait`` seconds more
    (``JOBS_CLI_RETRY_WAIT_SECONDS``, enough for the first retry of a passing fault).
    Returns ``(dotted path, count)`` of the jobs left unfinished, [] when all are done;
    those left are run once more, at once, by the exit hook (:func:`shutdown`).
    ``progress(unfinished)`` is called about twice a second."""
    app = app or current_app._get_current_object()
    pool = _state(app).pool
    if pool is None:
        return []
    if retry_wait is None:
        retry_wait = app.config.get("JOBS_CLI_RETRY_WAIT_SECONDS", 15)
    return pool.settle(retry_wait, progress)


# Per job (dotted path), the command that does its work when the job is left unfinished:
# registered by each feature's cli.py beside that command (:func:`catches_up`).
CATCH_UP: dict[str, str] = {}


def catches_up(path: str, command: str) -> None:
    """``command`` (``"flask search check --repair"``) does the work of the job ``path``
    when it is left unfinished; :func:`left_message` names it."""
    CATCH_UP[path] = command


def left_message(left: list[tuple[str, int]]) -> str:
    """What :func:`settle` left, for the person at the terminal, in Chinese and in
    English (a terminal has no reader's language): each job, and what to run."""
    from flask_babel import gettext

    from app.i18n import in_both_languages

    total = sum(count for _, count in left)
    lines = [
        lambda: gettext(
            "Background jobs not finished: %(count)s. They failed and wait for a retry; "
            "they are tried once more as this command exits. If the fault lasts, fix it "
            "(the error is in the log above), then run:",
            count=total,
        )
    ]
    for path, count in left:
        command = CATCH_UP.get(path)
        if command:
            lines.append(f"  {path} × {count}: {command}")
        else:
            lines.append((f"  {path} × {count}: ", lambda: gettext("no command catches up on it.")))
    return in_both_languages(lines)


def shutdown(app: Flask, timeout: float | None = None) -> bool:
    """Drain the in-process queue before the process exits (registered with atexit on
    the first job): retries not yet due run now, then the queue is waited for."""
    state = _state(app)
    with state.lock:
        pool, state.pool = state.pool, None
    if pool is None:
        return True
    if timeout is None:
        timeout = app.config.get("JOBS_SHUTDOWN_SECONDS", 20)
    return pool.close(timeout)


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
