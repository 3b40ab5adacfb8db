import click
from flask import current_app
from flask.cli import with_appcontext

from app.accounts import services
from app.accounts.models import Role, School
from app.common.events import commit
from app.extensions import db

accounts_cli = click.Group("accounts", help="Users, roles and API tokens.")


@accounts_cli.command("create-user")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), multiple=True)
@click.option("--school", "school_code", help="School code the user belongs to.")
@with_appcontext
def create_user(email, name, password, role, school_code):
    """Create a local user."""
    school = None
    if school_code:
        school = db.session.execute(
            db.select(School).filter_by(code=school_code)
        ).scalar_one_or_none()
        if school is None:
            raise click.BadParameter(f"no school with code {school_code}", param_hint="--school")
    user = services.create_user(email, name, password, school=school)
    for name_of_role in role:
        scope = {}
        if name_of_role in (Role.TEACHER, Role.STUDENT) and school is not None:
            scope = {"school": school}
        elif name_of_role == Role.DISTRICT_ADMIN and school is not None:
            scope = {"district": school.district}
        services.assign_role(user, Role(name_of_role), **scope)
    commit()
    click.echo(f"created {user.email} ({user.public_id})")


@accounts_cli.command("issue-token")
@click.option("--email", required=True)
@click.option("--name", default="cli")
@with_appcontext
def issue_token(email, name):
    """Print a new API token for a user."""
    user = services.get_user_by_email(email)
    if user is None:
        raise click.BadParameter("no such user", param_hint="--email")
    _, raw = services.issue_token(user, name, current_app.config.get("API_TOKEN_TTL_DAYS"))
    commit()
    click.echo(raw)
