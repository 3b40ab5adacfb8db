"""Rosters (NRPS): an LMS course's members mirrored into its class, at most once a day on
launch and on demand."""

from __future__ import annotations

import logging

from sqlalchemy import select

from app.accounts.models import Role, User
from app.common.models import utcnow
from app.errors import Forbidden, Invalid, NotFound
from app.extensions import db
from app.lti.claims import MAX_ID_CHARS
from app.lti.models import LtiContext, LtiContextMember, LtiDeployment
from app.lti.services.http import describe_error, http_session
from app.lti.services.permissions import can_manage
from app.lti.services.provisioning import Person, add_member, map_role, provision_user
from app.lti.tool import registration_for

log = logging.getLogger(__name__)


def _text(member: dict, name: str, limit: int) -> str | None:
    value = member.get(name)
    return value[:limit] if isinstance(value, str) else None


def _roster_entry(member) -> tuple[Person, Role, bool] | None:
    """A roster entry as (person, role, active); None for an entry of the wrong shape
    (the LMS's answer is external input like any other)."""
    if not isinstance(member, dict):
        return None
    user_id = member.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_ID_CHARS:
        return None
    roles = member.get("roles")
    roles = [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []
    email = _text(member, "email", 254)
    person = Person(
        user_id,
        _text(member, "name", 200),
        _text(member, "given_name", 100),
        _text(member, "family_name", 100),
        email.strip().lower() or None if email else None,
    )
    status = member.get("status")
    return person, map_role(roles), status in (None, "Active")


def sync_roster(context_pk: int) -> dict:
    """Fetch the context's members from the LMS and mirror them into the class."""
    from pylti1p3.names_roles import NamesRolesProvisioningService
    from pylti1p3.service_connector import ServiceConnector

    row = db.session.get(LtiContext, context_pk)
    if row is None:
        raise NotFound("Context not found.")
    if not row.memberships_url:
        raise Invalid("The LMS offers no roster for this course.")
    platform, deployment = row.platform, row.deployment
    if not deployment.approved:
        raise Forbidden("The deployment is not approved.")
    connector = ServiceConnector(registration_for(platform), http_session())
    service = NamesRolesProvisioningService(
        connector, {"context_memberships_url": row.memberships_url, "service_versions": ["2.0"]}
    )
    members = service.get_members()
    present: set[int] = set()
    added = 0
    for member in members:
        entry = _roster_entry(member)
        if entry is None:
            continue
        person, role, active = entry
        user = provision_user(platform, deployment, person, role, launched=False)
        before = db.session.execute(
            select(LtiContextMember).filter_by(context_id=row.id, user_id=user.id)
        ).scalar_one_or_none()
        added += before is None
        add_member(row, user, role, active)
        if active:
            present.add(user.id)
    removed = 0
    for member in db.session.execute(
        select(LtiContextMember).filter_by(context_id=row.id, active=True)
    ).scalars():
        if member.user_id not in present:
            member.active = False
            removed += 1
    row.last_roster_sync_at = utcnow()
    row.roster_size = len(present)
    db.session.flush()
    return {"members": len(present), "added": added, "deactivated": removed}


def sync_roster_job(context_pk: int) -> dict | None:
    try:
        return sync_roster(context_pk)
    except Exception as exc:
        log.warning("roster sync of context %s failed: %s", context_pk, describe_error(exc))
        return None


def request_roster_sync(actor: User | None, context_pk: int) -> dict:
    row = db.session.get(LtiContext, context_pk)
    if row is None:
        raise NotFound("Context not found.")
    teaches = (
        actor is not None
        and db.session.execute(
            select(LtiContextMember).filter_by(
                context_id=row.id, user_id=actor.id, role=str(Role.TEACHER), active=True
            )
        ).scalar_one_or_none()
    )
    if not (teaches or can_manage(actor, row.deployment)):
        raise Forbidden("Only the course's teachers and administrators can sync its roster.")
    try:
        return sync_roster(context_pk)
    except (Invalid, Forbidden, NotFound):
        raise
    except Exception as exc:
        log.warning("roster sync of context %s failed: %s", context_pk, describe_error(exc))
        raise Invalid("The LMS roster could not be read.") from exc


def list_contexts(actor: User | None) -> list[LtiContext]:
    if actor is None:
        raise Forbidden("Log in first.")
    statement = select(LtiContext).order_by(LtiContext.id.desc()).limit(200)
    if not actor.is_platform_admin:
        mine = select(LtiContextMember.context_id).filter_by(
            user_id=actor.id, role=str(Role.TEACHER)
        )
        districts = actor.admin_district_ids()
        statement = statement.join(
            LtiDeployment, LtiDeployment.id == LtiContext.deployment_id
        ).where(LtiContext.id.in_(mine) | LtiDeployment.district_id.in_(districts or [-1]))
    return list(db.session.execute(statement).scalars())
