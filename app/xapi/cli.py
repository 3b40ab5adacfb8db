"""``flask xapi ...``: LRS clients, forwarding."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app import jobs
from app.accounts.models import District, School
from app.common.events import commit
from app.extensions import db
from app.xapi import services
from app.xapi.models import LrsClient

xapi_cli = click.Group("xapi", help="xAPI Learning Record Store: clients and forwarding.")


def _district(code: str) -> District:
    district = db.session.execute(select(District).filter_by(code=code)).scalar_one_or_none()
    if district is None:
        raise click.BadParameter(f"no district with code {code}", param_hint="--district")
    return district


@xapi_cli.command("create-client")
@click.option("--name", required=True, help="Who uses these credentials.")
@click.option(
    "--district", "district_code", required=True, help="Code of the district (the tenant)."
)
@click.option("--school", "school_code", help="Limit the client to one school of the district.")
@click.option(
    "--scopes",
    default="all",
    show_default=True,
    help=f"Comma-separated; any of {', '.join(services.SCOPES)}.",
)
@with_appcontext
def create_client(name, district_code, school_code, scopes):
    """Create LRS credentials and print the key and secret (the secret is shown once)."""
    district = _district(district_code)
    school = None
    if school_code:
        school = db.session.execute(select(School).filter_by(code=school_code)).scalar_one_or_none()
        if school is None:
            raise click.BadParameter(f"no school with code {school_code}", param_hint="--school")
    from app.errors import AppError

    try:
        client, secret = services.create_client(
            name, district, [s.strip() for s in scopes.split(",") if s.strip()], school=school
        )
    except AppError as exc:
        raise click.BadParameter(exc.message) from None
    commit()
    click.echo(f"key: {client.key}")
    click.echo(f"secret: {secret}")


@xapi_cli.command("list-clients")
@with_appcontext
def list_clients():
    """List LRS clients (never their secrets)."""
    for client in db.session.execute(select(LrsClient).order_by(LrsClient.id)).scalars():
        state = "revoked" if client.revoked_at else "active"
        click.echo(
            f"{client.key}\t{client.name}\tdistrict={client.district_id}\t"
            f"school={client.school_id or '-'}\t"
            f"{','.join(client.scopes)}\t{state}"
        )


@xapi_cli.command("revoke-client")
@click.argument("key")
@with_appcontext
def revoke_client(key):
    client = db.session.execute(select(LrsClient).filter_by(key=key)).scalar_one_or_none()
    if client is None:
        raise click.BadParameter("no such client key")
    services.revoke_client(client)
    commit()
    click.echo(f"revoked {key}")


@xapi_cli.command("set-forwarding")
@click.option("--district", "district_code", required=True)
@click.option(
    "--endpoint", required=True, help="Base URL of the external LRS, e.g. https://lrs.example/xapi/"
)
@click.option("--username", default="")
@click.option("--password", default="")
@click.option("--version", "xapi_version", default="1.0.3", show_default=True)
@click.option("--disable", is_flag=True, help="Stop forwarding (the outbox is kept).")
@with_appcontext
def set_forwarding(district_code, endpoint, username, password, xapi_version, disable):
    """Forward this district's statements to an external LRS."""
    target = services.set_forward_target(
        _district(district_code), endpoint, username, password, xapi_version, active=not disable
    )
    commit()
    click.echo(f"forwarding {'disabled' if disable else 'enabled'} to {target.endpoint}")


# A forwarding job left unfinished (app/jobs.py: left_message): what to run.
jobs.catches_up("app.xapi.services.forwarding:forward_job", "flask xapi forward")


@xapi_cli.command("forward")
@click.option("--loop", is_flag=True, help="Keep running, every --interval seconds.")
@click.option("--interval", default=30, show_default=True)
@with_appcontext
def forward(loop, interval):
    """Send due outbox statements to the districts' external LRSs (retried with backoff)."""
    import time

    while True:
        result = services.forward_due()
        commit()
        click.echo(
            f"sent {result['sent']}, failed {result['failed']}, waiting {services.outbox_size()}"
        )
        if not loop:
            break
        time.sleep(interval)
