"""``flask search reindex`` and ``flask search check``."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app import jobs
from app.common import statistics


@click.group("search", help="Full-text search index.")
def search_cli():
    """Full-text search index."""


@search_cli.command("reindex")
@click.option(
    "--procs",
    type=click.IntRange(1, 64),
    default=None,
    help="Analysing processes (default: one per CPU; Whoosh's multiprocess writer, or"
    " forked analysers for PostgreSQL).",
)
@with_appcontext
@statistics.after_bulk_import
def reindex_command(procs):
    """Rebuild the whole index into a new folder and swap it in atomically."""
    import os

    from tqdm import tqdm

    from app.common.events import commit
    from app.search import services

    procs = procs or os.cpu_count() or 1
    total = services.count_documents()
    with tqdm(total=total, unit="doc", desc="indexing") as bar:
        count = services.reindex(progress=bar.update, procs=procs)
    commit()  # the PostgreSQL backend wrote in this command's transaction
    click.echo(f"Indexed {count} documents into {services.get_backend().describe()}.")


# An index job left unfinished (app/jobs.py: left_message): what to run.
jobs.catches_up("app.search.services.indexing:index_content_job", "flask search check --repair")


@search_cli.command("check")
@click.option("--repair", is_flag=True, help="Index missing and stale documents, drop extra ones.")
@with_appcontext
@statistics.after_bulk_import
def check_command(repair):
    """Compare the index with the database: missing, stale and extra documents."""
    from tqdm import tqdm

    from app.common.events import commit
    from app.search import services

    with tqdm(total=services.count_documents(), unit="doc", desc="checking") as bar:
        report = services.check_index(repair=repair, progress=bar.update)
    commit()
    click.echo(f"published: {report.published}  indexed: {report.indexed}")
    for name in ("missing", "stale", "extra"):
        ids = getattr(report, name)
        click.echo(
            f"{name}: {len(ids)}"
            + (f"  ({', '.join(ids[:10])}{' …' if len(ids) > 10 else ''})" if ids else "")
        )
    if report.ok:
        click.echo("The index matches the database.")
    elif report.repaired:
        click.echo("Repaired.")
    else:
        click.echo("Run with --repair (or `flask search reindex`) to fix.")
        raise SystemExit(1)
