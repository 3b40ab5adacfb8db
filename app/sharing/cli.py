"""``flask sharing ...``: keys, releases, remote subscriptions, sync (with progress)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app import jobs
from app.common import statistics
from app.common.events import commit
from app.extensions import db
from app.sharing.models import Subscription, SubscriptionStatus
from app.sharing.services import catalogs, federation, keys
from app.sharing.services.keys import FederationRefused

sharing_cli = click.Group("sharing", help="Shared catalogs, federation keys and sync.")


@sharing_cli.command("keys")
@click.option("--rotate", is_flag=True, help="Create a new signing key (old ones stay published).")
@with_appcontext
def keys_command(rotate):
    """Show (or create) this instance's Ed25519 signing keys."""
    if rotate or not keys.published_keys()["keys"]:
        keys.create_key()
        commit()
    data = keys.published_keys()
    click.echo(f"origin: {data['origin']}")
    for key in data["keys"]:
        click.echo(f"kid {key['kid']}")


@sharing_cli.command("release")
@click.argument("catalog_id", type=int)
@click.option("--notes", default="")
@click.option("--skip-refused", is_flag=True, help="Leave out items that cannot be shared.")
@with_appcontext
def release_command(catalog_id, notes, skip_refused):
    """Publish the next release of a catalog (as the system, for scripts)."""
    catalog = catalogs.get_catalog(catalog_id)
    found = catalogs._preview(catalog)
    for refusal in found.refused:
        click.echo(
            f"refused {refusal.item_type} {refusal.content_id} {refusal.title}: {refusal.message}",
            err=True,
        )
    if found.refused and not skip_refused:
        raise click.ClickException("some items cannot be shared (use --skip-refused)")
    release, _ = catalogs.publish_release(None, catalog, notes, allow_refusals=True)
    commit()
    click.echo(f"release {release.number}: {release.item_count} items")


@sharing_cli.command("subscribe-remote")
@click.option("--district", "district_code", required=True)
@click.option("--origin", required=True, help="An origin listed in SHUYUAN_SHARING_PEERS.")
@click.option("--catalog", "catalog_uid", required=True)
@click.option("--auto-accept", is_flag=True)
@with_appcontext
def subscribe_remote(district_code, origin, catalog_uid, auto_accept):
    """Ask a remote instance for one of its catalogs (its admin approves)."""
    from app.accounts.models import District, User

    district = db.session.execute(
        select(District).filter_by(code=district_code)
    ).scalar_one_or_none()
    if district is None:
        raise click.BadParameter("no such district", param_hint="--district")
    admin = next(
        (u for u in db.session.execute(select(User)).scalars() if u.is_platform_admin), None
    )
    if admin is None:
        raise click.ClickException("no platform admin to act as")
    sub = federation.request_remote(admin, district.id, origin, catalog_uid, None, auto_accept)
    sub_id = sub.id
    commit()  # queues the delivery job (the request goes out after this commit)
    # In-process jobs: wait for the delivery before the command exits, but not through
    # the back-offs of a delivery that keeps failing (app/jobs.py: settle).
    left = jobs.settle()
    if left:
        click.echo(jobs.left_message(left), err=True)
    log = federation.sync_log(db.session.get(Subscription, sub_id), limit=1)
    click.echo(f"subscription {sub_id}: {log[0].message if log else 'request queued'}")


@sharing_cli.command("report-usage")
@click.option("--days", type=click.IntRange(1, 62), default=7, show_default=True)
@with_appcontext
def report_usage_command(days):
    """Send the daily usage counts of remote subscriptions to their publishers now."""
    from app.sharing.services import usage

    outcome = usage.report_upstream(days)
    commit()
    for sub_id, message in sorted(outcome.items()):
        click.echo(f"  {sub_id}: {message}")


# A request delivery left unfinished (app/jobs.py: left_message): a sync sends again the
# requests never delivered.
jobs.catches_up("app.sharing.services.federation:deliver_request", "flask sharing sync")


@sharing_cli.command("sync")
@click.option("--subscription", "subscription_id", type=int, help="Only this one.")
@with_appcontext
@statistics.after_bulk_import
def sync_command(subscription_id):
    """Fetch new releases of remote catalogs now."""
    statement = select(Subscription).where(
        Subscription.remote_origin.is_not(None),
        Subscription.status.in_([SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING]),
    )
    if subscription_id:
        statement = statement.where(Subscription.id == subscription_id)
    subs = list(db.session.execute(statement).scalars())
    failed = 0
    with click.progressbar(subs, label="sync", show_pos=True) as bar:
        for sub in bar:
            try:
                result = federation.sync(sub)
                click.echo(f"  {sub.id}: {result.status} {result.release_number or ''}")
            except FederationRefused as exc:
                failed += 1
                click.echo(f"  {sub.id}: refused: {exc.reason}", err=True)
            commit()  # one unit per subscription: a refusal keeps only its log entry
    if failed:
        raise SystemExit(1)


@sharing_cli.command("export")
@click.argument("catalog_id", type=int)
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@click.option("--release", "number", type=int, help="Release number (default: newest).")
@with_appcontext
def export_command(catalog_id, path, number):
    """Write an offline package (manifest + media by hash) of a catalog release."""
    from app.sharing.services import packages

    catalog = catalogs.get_catalog(catalog_id)
    with open(path, "wb") as out:
        packages.export_release(None, catalog, number, out)
    click.echo(f"wrote {path}")


@sharing_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--district", "district_code", required=True)
@with_appcontext
@statistics.after_bulk_import
def import_command(path, district_code):
    """Import an offline package for a district (its items then wait for acceptance)."""
    from app.accounts.models import District
    from app.errors import AppError
    from app.sharing.services import packages

    district = db.session.execute(
        select(District).filter_by(code=district_code)
    ).scalar_one_or_none()
    if district is None:
        raise click.BadParameter("no such district", param_hint="--district")
    with click.progressbar(length=1, label="checking media", show_pos=True) as bar:

        def progress(done, total):
            bar.length = total
            bar.update(1)

        try:
            result = packages.import_package(None, district.id, path, progress=progress)
        except AppError as exc:
            raise click.ClickException(exc.message) from None
    commit()
    click.echo(
        f"subscription {result.subscription.id}: release {result.release_number}, "
        f"{result.items} items, media {result.media_new} new / {result.media_reused} reused"
    )


@sharing_cli.group("cartridge")
def cartridge_cli():
    """Common Cartridge 1.3 (Thin) exports, made as a platform admin."""


def _platform_admin():
    from app.accounts.models import User

    admin = next(
        (u for u in db.session.execute(select(User)).scalars() if u.is_platform_admin), None
    )
    if admin is None:
        raise click.ClickException("no platform admin to act as")
    return admin


def _write_cartridge(make, path):
    from app.errors import AppError

    try:
        body = make()
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    with open(path, "wb") as out:
        out.write(body)
    click.echo(f"wrote {path} ({len(body)} bytes)")


@cartridge_cli.command("course")
@click.argument("content_id")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def cartridge_course_command(content_id, path):
    """Write the cartridge of a course."""
    from app.sharing.services import cartridge

    _write_cartridge(lambda: cartridge.export_course(_platform_admin(), content_id), path)


@cartridge_cli.command("week")
@click.argument("calendar_id", type=int)
@click.argument("week", type=int)
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def cartridge_week_command(calendar_id, week, path):
    """Write the cartridge of one week of a teaching calendar."""
    from app.sharing.services import cartridge

    _write_cartridge(lambda: cartridge.export_week(_platform_admin(), calendar_id, week).body, path)


@sharing_cli.command("mirror")
@click.option("--force", is_flag=True, help="Run outside the configured mirror window too.")
@click.option("--no-forward", is_flag=True, help="Do not forward xAPI statements upstream.")
@with_appcontext
@statistics.after_bulk_import
def mirror_command(force, no_forward):
    """Edge node: sync subscribed catalogs, fetch their media (resumable, within the
    bandwidth limit) and forward xAPI statements upstream."""
    from tqdm import tqdm

    from app.sharing.services import mirror

    bar = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1024, desc="media")

    def progress(done, total):
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    from app.sharing.services.edge import BadWindow

    try:
        report = mirror.mirror(force=force, progress=progress, forward=not no_forward)
    except BadWindow as exc:
        raise click.ClickException(f"{exc} (SHUYUAN_EDGE_MIRROR_WINDOW)") from None
    finally:
        bar.close()
    if not report.ran:
        click.echo(f"not run: {report.reason}")
        return
    stats = report.media
    click.echo(
        f"synced {len(report.synced)} subscription(s); media {stats.fetched} fetched "
        f"({stats.resumed} resumed), {stats.reused} already here, {stats.bytes} bytes; "
        f"statements forwarded {report.forwarded.get('sent', 0)}"
    )
    for error in report.errors:
        click.echo(f"  {error}", err=True)
    if report.errors:
        raise SystemExit(1)
