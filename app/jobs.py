"""Background work.

``enqueue("app.media.services:make_derivatives", media_id)`` runs a function later, away
from the request:

- with ``REDIS_URL`` set, on an RQ queue (run ``flask jobs worker`` beside gunicorn);
- without it, on a small thread pool inside the web process (fine for one machine);
- with ``JOBS_EAGER`` (tests), immediately and synchronously, so tests see the result.

Jobs are referenced by dotted path and take only JSON-like arguments, so they run the
same in any process.  Each job runs inside an application context and commits its own
work.  Retrying with backoff is the caller's business (outbox tables), because only it
knows what is safe to repeat.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from concurrent.futures import ThreadPoolExecutor

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

log = logging.getLogger(__name__)
_pool: ThreadPoolExecutor | None = None


def _resolve(path: str):
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def run_job(path: str, *args, **kwargs):
    """Entry point of every job, in whatever process runs it."""
    from flask import has_app_context

    if has_app_context():
        return _run(path, args, kwargs)
    from app import create_app

    with create_app().app_context():
        return _run(path, args, kwargs)


def _run(path, args, kwargs):
    from app.common.events import deliver_ready
    from app.extensions import db

    try:
        result = _resolve(path)(*args, **kwargs)
        db.session.commit()
        deliver_ready()
        return result
    except Exception:
        db.session.rollback()
        log.exception("job %s failed", path)
        raise
    finally:
        db.session.remove()


def enqueue(path: str, *args, **kwargs) -> None:
    app = current_app._get_current_object()
    if app.config.get("JOBS_EAGER"):
        run_job(path, *args, **kwargs)
        return
    redis_url = app.config.get("REDIS_URL")
    if redis_url:
        from redis import Redis
        from rq import Queue, Retry

        # Retry: a job whose worker died mid-way (kill -9, OOM, host lost) is put back on
        # the queue by the next worker's registry clean-up instead of being lost.
        Queue(
            app.config.get("JOBS_QUEUE", "shuyuan"), connection=Redis.from_url(redis_url)
        ).enqueue(
            run_job,
            path,
            *args,
            **kwargs,
            job_timeout=app.config.get("JOBS_TIMEOUT", 3600),
            retry=Retry(max=app.config.get("JOBS_RETRIES", 3), interval=[10, 60, 300]),
        )
        return
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shuyuan-job")

    def in_context():
        # _run already logged a failure; a pool thread has no one to raise to.
        with app.app_context(), contextlib.suppress(Exception):
            _run(path, args, kwargs)

    _pool.submit(in_context)


@click.group("jobs", help="Background jobs.")
def jobs_cli():
    """Background jobs."""


@jobs_cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@with_appcontext
def worker(burst):
    """Run an RQ worker for REDIS_URL's queue."""
    from redis import Redis
    from rq import Queue, Worker

    redis_url = current_app.config.get("REDIS_URL")
    if not redis_url:
        raise click.UsageError("REDIS_URL is not set: jobs run inside the web process.")
    connection = Redis.from_url(redis_url)
    Worker(
        [Queue(current_app.config.get("JOBS_QUEUE", "shuyuan"), connection=connection)],
        connection=connection,
        # How soon a job abandoned by a dead worker is found and retried.
        maintenance_interval=current_app.config.get("JOBS_MAINTENANCE_SECONDS", 60),
        job_monitoring_interval=10,
    ).work(burst=burst, with_scheduler=True)


def init_app(app: Flask) -> None:
    app.cli.add_command(jobs_cli)
