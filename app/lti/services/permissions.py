"""Who may manage which LTI registrations, deployments and scores."""

from __future__ import annotations

from app.accounts.models import User
from app.errors import Forbidden
from app.lti.models import LtiDeployment


def require_platform_admin(actor: User | None) -> User:
    if actor is None or not actor.is_platform_admin:
        raise Forbidden("Only platform administrators manage LTI registrations.")
    return actor


def require_admin(actor: User | None) -> User:
    """A platform administrator or the administrator of some district."""
    if actor is None or not (actor.is_platform_admin or actor.is_district_admin()):
        raise Forbidden("Only administrators manage LTI.")
    return actor


def can_manage(actor: User | None, deployment: LtiDeployment | None = None) -> bool:
    """Platform admins manage every deployment; district admins those of their district."""
    if actor is None:
        return False
    if actor.is_platform_admin:
        return True
    if deployment is not None and deployment.district_id:
        return actor.is_district_admin(deployment.district_id)
    return False


def can_manage_district(actor: User | None, district_id: int) -> bool:
    return actor is not None and (actor.is_platform_admin or actor.is_district_admin(district_id))
