"""``flask curriculum ...``: import and export CASE packages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app.common import statistics
from app.common.events import commit
from app.curriculum import case, services
from app.errors import AppError

curriculum_cli = click.Group("curriculum", help="Curriculum frameworks (CASE).")


@curriculum_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--district", help="Code of the owning district (default: region-wide).")
@with_appcontext
@statistics.after_bulk_import
def import_command(path: Path, district: str | None):
    """Import (or update in place) a CASE 1.0 CFPackage JSON file, all or nothing."""
    from app.accounts.models import District
    from app.extensions import db

    district_id = None
    if district:
        district_id = db.session.execute(select(District.id).filter_by(code=district)).scalar()
        if district_id is None:
            raise click.ClickException(f"unknown district {district}")
    try:
        package = json.loads(path.read_text(encoding="utf-8"))
        report = case.import_package(package, district_id=district_id)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"not JSON: {exc}") from None
    except AppError as exc:
        click.echo(exc.message, err=True)
        for where, messages in exc.fields.items():
            for message in messages:
                click.echo(f"  {where}: {message}", err=True)
        sys.exit(1)
    commit()
    click.echo(json.dumps(report.as_dict(), ensure_ascii=False))


@curriculum_cli.command("export")
@click.argument("framework_id", type=int)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def export_command(framework_id: int, output: Path | None):
    """Write a framework as a CASE 1.0 CFPackage JSON file (stdout by default)."""
    body = json.dumps(services.export_case(framework_id), ensure_ascii=False, indent=1)
    if output:
        output.write_text(body + "\n", encoding="utf-8")
    else:
        click.echo(body)


@curriculum_cli.group("cache")
def cache_cli():
    """The cached week structures of "this week" (on Redis)."""


@cache_cli.command("clear")
@with_appcontext
def cache_clear_command():
    """Drop the cached week structures and their resources in every worker: run it
    after writing calendars, progress, nodes, associations, alignments, resources or
    subscriptions behind the app's back (psql, COPY, a restore)."""
    from flask_babel import gettext

    from app.curriculum.services import week_cache
    from app.i18n import in_both_languages

    try:
        cleared = week_cache.clear()
    except RuntimeError:
        raise click.ClickException(
            in_both_languages(
                [
                    lambda: gettext(
                        "The cache on Redis could not be cleared (the error is in the log); "
                        "run the command again once Redis answers."
                    )
                ]
            )
        ) from None
    if cleared:

        def message() -> str:
            return gettext(
                "The cached week structures are cleared: every worker reads them from the "
                "database again."
            )
    else:

        def message() -> str:
            return gettext("Without Redis the week structures are not cached: nothing to clear.")

    click.echo(in_both_languages([message]))
