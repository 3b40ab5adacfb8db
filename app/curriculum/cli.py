"""``flask curriculum ...``: import and export CASE packages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app.common.events import commit
from app.curriculum import case, services
from app.errors import AppError

curriculum_cli = click.Group("curriculum", help="Curriculum frameworks (CASE).")


@curriculum_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--district", help="Code of the owning district (default: region-wide).")
@with_appcontext
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
