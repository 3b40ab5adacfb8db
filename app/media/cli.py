"""``flask media ...``: garbage collection, quotas, usage."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select


@click.group("media", help="Media storage: garbage collection and quotas.")
def media_cli():
    """Media storage: garbage collection and quotas."""


@media_cli.command("gc")
@click.option("--apply", is_flag=True, help="Really delete (default: only print what would go).")
@with_appcontext
def gc(apply):
    """Abort abandoned uploads and remove objects no resource version references."""
    from app.common.events import commit
    from app.media import services

    report = services.collect_garbage(apply=apply)
    commit()
    # Bytes go only after the rows are gone for good.
    services.delete_collected_bytes(report)
    verb = "Deleted" if apply else "Would delete"
    for line in report.aborted_uploads:
        click.echo(f"{'Aborted' if apply else 'Would abort'} upload: {line}")
    for key in report.deleted_objects:
        click.echo(f"{verb} object: {key}")
    for prefix in report.deleted_prefixes:
        click.echo(f"{verb} unpacked package: {prefix}")
    click.echo(
        f"{len(report.aborted_uploads)} uploads, {len(report.deleted_objects)} objects; "
        f"{report.kept} objects still referenced and kept."
        + ("" if apply else " Dry run: nothing was deleted (use --apply).")
    )


def _district(code: str):
    from app.accounts.models import District
    from app.extensions import db

    district = db.session.execute(select(District).filter_by(code=code)).scalar_one_or_none()
    if district is None:
        raise click.BadParameter(f"No district with code {code!r}.")
    return district


@media_cli.command("quota")
@click.argument("district_code")
@click.argument("size", required=False)
@click.option(
    "--default", "use_default", is_flag=True, help="Go back to MEDIA_DISTRICT_QUOTA_BYTES."
)
@with_appcontext
def quota(district_code, size, use_default):
    """Show or set a district's storage quota (SIZE like 500G, 20000M or bytes)."""
    from app.common.events import commit
    from app.media import services

    district = _district(district_code)
    if use_default:
        services.set_district_quota(district.id, None)
    elif size:
        services.set_district_quota(district.id, parse_size(size))
    commit()
    click.echo(
        f"{district.code}: {services.district_usage(district.id)} of "
        f"{services.district_quota(district.id)} bytes used"
    )


def parse_size(text: str) -> int:
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    text = text.strip().upper().rstrip("B")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise click.BadParameter(f"Not a size: {text!r}") from None


@media_cli.command("usage")
@with_appcontext
def usage():
    """Storage used per district."""
    from app.accounts.models import District
    from app.extensions import db
    from app.media import services

    for district_id, used, limit in services.usage_by_district():
        district = db.session.get(District, district_id)
        click.echo(f"{district.code}\t{used}\t{limit}")
