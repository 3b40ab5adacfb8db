from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from tqdm import tqdm

from app import jobs
from app.common import statistics
from app.common.events import commit
from app.demo import services
from app.extensions import db

content_cli = click.Group("content", help="Demo and seed content.")


@content_cli.command("load")
@click.option(
    "--folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Content folder (default: the project's content/).",
)
@click.option("--if-empty", is_flag=True, help="Do nothing unless the database has no users yet.")
@with_appcontext
@statistics.after_bulk_import
def load(folder, if_empty):
    """Load organisations, demo users, courses and resources (idempotent)."""
    folder = folder or Path(current_app.config["DEMO_CONTENT_DIR"])
    if if_empty and not services.database_is_empty():
        click.echo("database already has content; nothing loaded")
        return
    try:
        with tqdm(total=services.count_entries(folder), unit="item", desc="loading content") as bar:
            report = services.load_content(folder, tick=lambda name: bar.update(1))
    except services.ContentError as exc:
        db.session.rollback()
        raise click.ClickException(f"nothing loaded: {exc}") from None
    commit()
    _wait_for_background_jobs()
    click.echo(report.summary())


def _wait_for_background_jobs() -> None:
    """Without Redis the load's follow-up work (search indexing, the portraits' term)
    runs on this process's job threads.  The exit hook waits only
    ``JOBS_SHUTDOWN_SECONDS`` for them — right for a web worker being stopped, but a
    loaded machine can need longer, and a job cut off there left a demo resource out of
    the search index.  A command run once waits for the jobs queued or running, with a
    bar; but not through the back-offs of a job that keeps failing (10 + 60 + 300 s on a
    fresh machine's `make run`): past ``JOBS_CLI_RETRY_WAIT_SECONDS`` it says which jobs
    are left and what to run once the fault is fixed."""
    total = jobs.unfinished()
    if not total:
        return
    with tqdm(total=total, unit="job", desc="background jobs") as bar:

        def progress(left: int) -> None:
            # Jobs may queue others, so the total can grow while the bar runs.
            bar.total = max(bar.total, bar.n + left)
            bar.update(max(0, bar.total - left - bar.n))

        left = jobs.settle(progress=progress)
        if not left:
            bar.update(bar.total - bar.n)
    if left:
        click.echo(jobs.left_message(left), err=True)
