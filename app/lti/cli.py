"""``flask lti ...``: registrations, keys, grade retries, roster sync."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from app.common import statistics
from app.common.events import commit
from app.errors import AppError
from app.extensions import db
from app.lti.models import KeyState, LtiKey, LtiPlatform
from app.lti.services import ags, dynamic, keys, nrps, registrations
from app.lti.store import launch_store

lti_cli = click.Group("lti", help="LTI 1.3 registrations, tool keys, grades and rosters.")


def _fail(exc: AppError):
    details = "; ".join(f"{k}: {v}" for k, v in (exc.fields or {}).items())
    raise click.ClickException(exc.message + (f" ({details})" if details else ""))


@lti_cli.command("add-platform")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--deployment-id", required=True)
@click.option(
    "--auth-url", required=True, help="The platform's OIDC authorization (auth login) URL."
)
@click.option("--token-url", required=True, help="The platform's OAuth2 token URL.")
@click.option("--keyset-url", required=True, help="The platform's JWKS URL.")
@click.option("--audience", default=None, help="Token audience, when the platform wants one.")
@click.option("--school", default=None, help="Code of the school the deployment belongs to.")
@click.option("--district", default=None, help="Code of the district (when not one school).")
@click.option("--name", default="")
@click.option("--pending", is_flag=True, help="Register without approving the deployment.")
@with_appcontext
def add_platform(
    issuer,
    client_id,
    deployment_id,
    auth_url,
    token_url,
    keyset_url,
    audience,
    school,
    district,
    name,
    pending,
):
    """Register a platform (issuer + client id) and one of its deployments."""
    try:
        deployment = registrations.add_platform(
            None,
            {
                "issuer": issuer,
                "client_id": client_id,
                "deployment_id": deployment_id,
                "auth_login_url": auth_url,
                "auth_token_url": token_url,
                "key_set_url": keyset_url,
                "auth_audience": audience,
                "school": school,
                "district": district,
                "name": name,
                "approved": not pending,
            },
            system=True,
        )
    except AppError as exc:
        _fail(exc)
    commit()
    click.echo(
        f"platform {deployment.platform.id} ({issuer}, client {client_id}) deployment "
        f"{deployment.deployment_id} {'approved' if deployment.approved else 'pending approval'}"
    )


@lti_cli.command("list")
@with_appcontext
def list_platforms():
    """Registered platforms and deployments."""
    platforms = list(db.session.execute(select(LtiPlatform).order_by(LtiPlatform.id)).scalars())
    if not platforms:
        click.echo("no platforms registered")
    for platform in platforms:
        click.echo(
            f"[{platform.id}] {platform.name} issuer={platform.issuer} "
            f"client_id={platform.client_id} "
            f"source={platform.source}{'' if platform.active else ' (removed)'}"
        )
        click.echo(
            f"    auth={platform.auth_login_url} token={platform.auth_token_url} "
            f"keys={platform.key_set_url}"
        )
        for d in platform.deployments:
            org = d.school.code if d.school else (d.district.code if d.district else "unassigned")
            click.echo(
                f"    deployment #{d.id} id={d.deployment_id} org={org} "
                f"{'approved' if d.approved else 'PENDING'}"
            )


@lti_cli.command("approve")
@click.argument("deployment_pk", type=int)
@click.option("--school", default=None, help="Assign the deployment to this school first.")
@click.option("--revoke", is_flag=True, help="Suspend instead of approving.")
@with_appcontext
def approve(deployment_pk, school, revoke):
    """Approve (or suspend) a deployment, e.g. one made by dynamic registration."""
    try:
        deployment = registrations.set_deployment_approval(
            None, deployment_pk, not revoke, school_code=school, system=True
        )
    except AppError as exc:
        _fail(exc)
    commit()
    click.echo(f"deployment #{deployment.id} {'approved' if deployment.approved else 'suspended'}")


@lti_cli.command("rotate-keys")
@click.option(
    "--publish-hours",
    type=float,
    default=None,
    help="How long a new key is published before it signs (default: config, 24 h).",
)
@click.option(
    "--grace-hours",
    type=float,
    default=None,
    help="How long a replaced key stays published (default: config, 7 days).",
)
@with_appcontext
def rotate_keys(publish_hours, grace_hours):
    """One step of key rotation; run daily from cron."""
    report = keys.rotate_keys(
        None if publish_hours is None else int(publish_hours * 3600),
        None if grace_hours is None else int(grace_hours * 3600),
    )
    commit()
    for kid in report.created:
        click.echo(f"published new key {kid} (signs from a later run)")
    for kid in report.activated:
        click.echo(f"key {kid} now signs")
    for kid in report.retiring:
        click.echo(f"key {kid} retiring (still published for the grace period)")
    for kid in report.retired:
        click.echo(f"key {kid} retired")
    for key in db.session.execute(
        select(LtiKey).where(LtiKey.state != KeyState.RETIRED).order_by(LtiKey.id)
    ).scalars():
        click.echo(f"  {key.kid} {key.state}")


@lti_cli.command("retry-grades")
@click.option(
    "--all", "force", is_flag=True, help="Retry every pending score now, not only the due ones."
)
@with_appcontext
def retry_grades(force):
    """Post due scores of the outbox to the LMS (run every few minutes from cron)."""
    counts = ags.deliver_due_grades(force=force)
    commit()
    click.echo(f"sent {counts['sent']}, failed {counts['failed']} (given up {counts['given_up']})")


@lti_cli.command("sync-roster")
@click.argument("context_pk", type=int)
@with_appcontext
@statistics.after_bulk_import
def sync_roster(context_pk):
    """Read an LMS course's roster (NRPS) into its class now."""
    try:
        result = nrps.sync_roster(context_pk)
    except AppError as exc:
        _fail(exc)
    commit()
    click.echo(
        f"{result['members']} members, {result['added']} added, {result['deactivated']} deactivated"
    )


@lti_cli.command("purge")
@with_appcontext
def purge():
    """Delete expired launch states and nonces."""
    count = launch_store().purge_expired()
    commit()
    click.echo(f"purged {count} expired launch entries")


@lti_cli.command("urls")
@click.option("--base-url", default=None, help="Public address of this Shuyuan.")
@with_appcontext
def urls(base_url):
    """The URLs to paste into an LMS."""
    base = (
        base_url or current_app.config.get("LTI_BASE_URL") or "https://shuyuan.example.org"
    ).rstrip("/")
    for label, path in (
        ("login (OIDC initiation)", "/lti/login"),
        ("launch / redirect", "/lti/launch"),
        ("deep linking", "/lti/launch"),
        ("public keyset (JWKS)", "/lti/jwks.json"),
    ):
        click.echo(f"{label:28} {base}{path}")
    click.echo(f"{'dynamic registration':28} flask lti registration-link --district CODE")


@lti_cli.command("registration-link")
@click.option("--district", default=None, help="Code of the district the LMS will belong to.")
@click.option("--school", default=None, help="Code of the school (instead of a district).")
@click.option("--hours", type=int, default=72, show_default=True, help="Lifetime of the link.")
@click.option("--note", default="", help="What the link is for (shown on the admin page).")
@click.option("--base-url", default=None, help="Public address of this Shuyuan.")
@with_appcontext
def registration_link(district, school, hours, note, base_url):
    """Make a one-time Dynamic Registration link for a district or school."""
    try:
        school_row, district_row = registrations.resolve_org(school, district)
        if district_row is None:
            raise click.UsageError("Give --district or --school.")
        made = dynamic.create_registration_link(
            None,
            district_id=district_row.id,
            school_id=school_row.id if school_row else None,
            hours=hours,
            note=note,
            system=True,
        )
    except AppError as exc:
        _fail(exc)
    commit()
    base = (
        base_url or current_app.config.get("LTI_BASE_URL") or "https://shuyuan.example.org"
    ).rstrip("/")
    click.echo(made.url(base))
    click.echo(f"one use, expires {made.link.expires_at:%Y-%m-%d %H:%M} UTC")
