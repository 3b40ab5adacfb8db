"""``flask portraits ...``: rebuild, catch up, export and forget, simulate the demo term."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import with_appcontext

from app import jobs
from app.common import statistics
from app.extensions import db


@click.group("portraits", help="Digital portraits: rebuild, export, forget.")
def portraits_cli():
    """Digital portraits."""


# A queued rebuild job left unfinished (app/jobs.py: left_message): what to run.
jobs.catches_up("app.portraits.services.updates:rebuild_job", "flask portraits rebuild")


@portraits_cli.command("rebuild")
@click.option("--reingest", is_flag=True, help="Read the whole LRS again before fitting.")
@click.option("--queue", is_flag=True, help="One background job per knowledge point.")
@with_appcontext
@statistics.after_bulk_import
def rebuild_command(reingest, queue):
    """Refit every knowledge point into a new generation and switch to it when complete
    (an interrupted rebuild leaves the previous portraits served)."""
    from app.portraits.models import Generation
    from app.portraits.services import updates

    if queue:
        generation = updates.rebuild(reingest=reingest, queue=True)
        click.echo(f"generation {generation.id}: {generation.skills_total} jobs queued")
        return
    generation, jobs = updates.start_rebuild(reingest)
    from app.portraits.services import model

    with click.progressbar(jobs, label="Fitting knowledge points", file=sys.stderr) as bar:
        for skill, method in bar:
            try:
                model.run_rebuild_job(generation.id, skill, method)
                db.session.commit()
            except Exception:
                db.session.rollback()
                db.session.get(Generation, generation.id).state = "failed"
                db.session.commit()
                raise
    generation = db.session.get(Generation, generation.id)
    click.echo(f"generation {generation.id}: {generation.state}, {len(jobs) - 1} knowledge points")


# An ingest job left unfinished (app/jobs.py: left_message): what to run.
jobs.catches_up("app.portraits.services.updates:ingest_job", "flask portraits ingest")


@portraits_cli.command("ingest")
@with_appcontext
@statistics.after_bulk_import
def ingest_command():
    """Read new statements from the LRS now (normally a background job does it)."""
    from app.portraits.services import updates

    click.echo(json.dumps(updates.ingest_job(max_batches=10_000)))


def _student(value: str):
    from app.portraits import sources

    user = sources.user_by_email_or_public_id(value)
    if user is None:
        raise click.UsageError(f"No user {value!r}.")
    return user


@portraits_cli.command("export")
@click.option("--student", required=True, help="Email or public id.")
@click.option("--output", type=click.File("w", encoding="utf-8"), default="-")
@with_appcontext
def export_command(student, output):
    """Everything stored about a student's learning, as JSON."""
    from app.portraits.services import privacy

    json.dump(privacy.export(_student(student)), output, ensure_ascii=False, indent=2)
    output.write("\n")


@portraits_cli.command("forget")
@click.option("--student", required=True, help="Email or public id.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def forget_command(student, yes):
    """Erase a student's portraits, evidence and exercise attempts."""
    from app.portraits.services import privacy

    user = _student(student)
    if not yes:
        click.confirm(f"Erase the learning data of {user.name}?", abort=True)
    counts = privacy.forget(user)
    db.session.commit()
    click.echo(json.dumps(counts))


@portraits_cli.command("simulate")
@click.option("--seed", default=7, show_default=True)
@with_appcontext
@statistics.after_bulk_import
def simulate_command(seed):
    """Give the demo class a term of simulated answers (see app/portraits/demo.py)."""
    from app.portraits import demo

    report = demo.simulate_term(seed=seed)
    db.session.commit()
    click.echo(json.dumps(report))
