"""``flask ops ...``: the scheduler process and a look at its timetable."""

from __future__ import annotations

import contextlib

import click
from flask import current_app
from flask.cli import with_appcontext

from app.ops import scheduler as periodic


@click.group("ops", help="Operations: scheduler and periodic jobs.")
def ops_cli():
    """Operations: scheduler and periodic jobs."""


@ops_cli.command("jobs")
@with_appcontext
def list_jobs():
    """Print the periodic jobs and their intervals."""
    for job in periodic.periodic_jobs(current_app.config):
        click.echo(f"{job.name:20} every {job.seconds:>6} s  {job.path}")


@ops_cli.command("scheduler")
@with_appcontext
def run_scheduler():
    """Run the scheduler (one leader across all hosts enqueues the periodic jobs)."""
    app = current_app._get_current_object()
    try:
        lock = periodic.LeaderLock(app)
    except Exception as exc:  # Redis configured but unreachable
        raise click.ClickException(
            f"Redis at REDIS_URL is unreachable ({type(exc).__name__}); the scheduler needs it "
            "to elect one leader. / "
            "无法连接 REDIS_URL 指定的 Redis，调度器需要它来选出唯一的主进程。"
        ) from exc
    scheduler = periodic.build_scheduler(app, lock)
    click.echo(f"scheduler {lock.identity} started; {len(scheduler.get_jobs()) - 1} periodic jobs")
    # Ctrl-C or systemd's stop ends the loop; the lock is released for a standby.
    try:
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            scheduler.start()
    finally:
        lock.release()
