"""Registrations: platforms (issuer + client id) and their deployments, each belonging to
a school or a district and counting only once approved."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from sqlalchemy import select

from app.accounts.models import District, School, User
from app.common.models import utcnow
from app.errors import Forbidden, Invalid, NotFound
from app.extensions import db
from app.lti.models import LtiDeployment, LtiIdentity, LtiPlatform
from app.lti.services.permissions import can_manage, require_platform_admin


def check_url(value: str | None, name: str, errors: dict, required: bool = True) -> None:
    if not value:
        if required:
            errors[name] = ["Required."]
        return
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        errors[name] = ["An http(s) URL."]


def resolve_org(
    school_code: str | None = None,
    district_code: str | None = None,
    school_id: int | None = None,
    district_id: int | None = None,
):
    school = district = None
    if school_id:
        school = db.session.get(School, school_id)
    elif school_code:
        school = db.session.execute(select(School).filter_by(code=school_code)).scalar_one_or_none()
    if (school_code or school_id) and school is None:
        raise Invalid("Unknown school.", fields={"school": ["No such school."]})
    if school is not None:
        return school, school.district
    if district_id:
        district = db.session.get(District, district_id)
    elif district_code:
        district = db.session.execute(
            select(District).filter_by(code=district_code)
        ).scalar_one_or_none()
    if (district_code or district_id) and district is None:
        raise Invalid("Unknown district.", fields={"district": ["No such district."]})
    return None, district


def add_platform(actor: User | None, data: dict, *, system: bool = False) -> LtiDeployment:
    """Register (issuer, client_id) and a deployment of it.  ``data`` keys: issuer,
    client_id, deployment_id, auth_login_url, auth_token_url, key_set_url, auth_audience,
    name, school (code) / school_id, district (code) / district_id, approved."""
    if not system:
        require_platform_admin(actor)
    errors: dict = {}
    for name in ("issuer", "client_id", "deployment_id"):
        if not (data.get(name) or "").strip():
            errors[name] = ["Required."]
    for name in ("auth_login_url", "auth_token_url", "key_set_url"):
        check_url(data.get(name), name, errors)
    check_url(data.get("auth_audience"), "auth_audience", errors, required=False)
    if errors:
        raise Invalid("The registration is not complete.", fields=errors)
    school, district = resolve_org(
        data.get("school"), data.get("district"), data.get("school_id"), data.get("district_id")
    )
    if school is None and district is None:
        raise Invalid(
            "A deployment belongs to a school or a district.",
            fields={"school": ["Give a school or a district."]},
        )
    issuer, client_id = data["issuer"].strip(), data["client_id"].strip()
    platform = db.session.execute(
        select(LtiPlatform).filter_by(issuer=issuer, client_id=client_id)
    ).scalar_one_or_none()
    if platform is None:
        platform = LtiPlatform(issuer=issuer, client_id=client_id)
        db.session.add(platform)
    platform.name = (data.get("name") or platform.name or urlparse(issuer).netloc or issuer)[:200]
    platform.auth_login_url = data["auth_login_url"].strip()
    platform.auth_token_url = data["auth_token_url"].strip()
    platform.key_set_url = data["key_set_url"].strip()
    platform.auth_audience = (data.get("auth_audience") or "").strip() or None
    platform.source = data.get("source") or platform.source or "manual"
    platform.product = data.get("product") or platform.product
    platform.active = True
    db.session.flush()
    deployment_id = str(data["deployment_id"]).strip()
    deployment = db.session.execute(
        select(LtiDeployment).filter_by(platform_id=platform.id, deployment_id=deployment_id)
    ).scalar_one_or_none()
    if deployment is None:
        deployment = LtiDeployment(platform_id=platform.id, deployment_id=deployment_id)
        db.session.add(deployment)
    deployment.school_id = school.id if school else None
    deployment.district_id = school.district_id if school else district.id
    approved = data.get("approved", True)
    if approved and not deployment.approved:
        deployment.approved, deployment.approved_at = True, utcnow()
    elif not approved:
        deployment.approved = False
    db.session.flush()
    return deployment


@dataclass(frozen=True)
class PlatformListing:
    """A platform as one administrator sees it: only the deployments she manages (one
    LMS registration may be shared by several districts)."""

    platform: LtiPlatform
    deployments: list[LtiDeployment]

    # The platform's own columns, for pages and the API schema.
    id = property(lambda self: self.platform.id)
    name = property(lambda self: self.platform.name)
    issuer = property(lambda self: self.platform.issuer)
    client_id = property(lambda self: self.platform.client_id)
    auth_login_url = property(lambda self: self.platform.auth_login_url)
    auth_token_url = property(lambda self: self.platform.auth_token_url)
    key_set_url = property(lambda self: self.platform.key_set_url)
    auth_audience = property(lambda self: self.platform.auth_audience)
    source = property(lambda self: self.platform.source)
    active = property(lambda self: self.platform.active)


def list_platforms(actor: User | None) -> list[PlatformListing]:
    if actor is None or not (actor.is_platform_admin or actor.is_district_admin()):
        raise Forbidden("Only administrators see LTI registrations.")
    platforms = list(db.session.execute(select(LtiPlatform).order_by(LtiPlatform.id)).scalars())
    if actor.is_platform_admin:
        return [PlatformListing(p, list(p.deployments)) for p in platforms]
    districts = set(actor.admin_district_ids())
    listings = []
    for platform in platforms:
        mine = [d for d in platform.deployments if d.district_id in districts]
        if mine:
            listings.append(PlatformListing(platform, mine))
    return listings


def get_deployment(deployment_pk: int) -> LtiDeployment:
    deployment = db.session.get(LtiDeployment, deployment_pk)
    if deployment is None:
        raise NotFound("Deployment not found.")
    return deployment


def set_deployment_approval(
    actor: User | None,
    deployment_pk: int,
    approved: bool,
    *,
    school_code: str | None = None,
    school_id: int | None = None,
    district_id: int | None = None,
    system: bool = False,
) -> LtiDeployment:
    """Approve or suspend a deployment, optionally assigning it to a school first.
    ``system`` is the CLI (no acting user)."""
    deployment = get_deployment(deployment_pk)
    # An unassigned deployment (made before registration links existed) is a platform
    # administrator's to assign: a district admin must not claim another's LMS.
    if not system and not can_manage(actor, deployment):
        raise Forbidden("You cannot approve this deployment.")
    if school_code or school_id or district_id:
        school, district = resolve_org(school_code, None, school_id, district_id)
        target = school.district_id if school else district.id
        if not system and not (actor.is_platform_admin or actor.is_district_admin(target)):
            raise Forbidden("You cannot assign a deployment to this organisation.")
        deployment.school_id = school.id if school else None
        deployment.district_id = target
    if not system and not can_manage(actor, deployment):
        raise Forbidden("You cannot approve this deployment.")
    if approved and deployment.district_id is None:
        raise Invalid(
            "Assign the deployment to a school or district before approving it.",
            fields={"school": ["Required before approval."]},
        )
    deployment.approved = approved
    deployment.approved_at = utcnow() if approved else None
    db.session.flush()
    return deployment


def remove_platform(actor: User | None, platform_id: int) -> None:
    require_platform_admin(actor)
    platform = db.session.get(LtiPlatform, platform_id)
    if platform is None:
        raise NotFound("Platform not found.")
    platform.active = False
    for deployment in platform.deployments:
        deployment.approved = False
    db.session.flush()


@dataclass(frozen=True)
class RecentLaunch:
    """The last launch of one LMS user (issuer + sub) through a platform."""

    at: object  # datetime (naive UTC)
    user_name: str
    platform_name: str
    school: object  # School | None


def recent_launches(actor: User | None, limit: int = 20) -> list[RecentLaunch]:
    """The latest launches the administrator may see: every one for a platform admin,
    those of users of her districts' schools for a district admin.  Built from each
    identity's last launch (no launch log is kept: the xAPI ``launched`` statements
    are the history)."""
    if actor is None or not (actor.is_platform_admin or actor.is_district_admin()):
        raise Forbidden("Only administrators see LTI registrations.")
    statement = (
        select(LtiIdentity.last_launch_at, User.name, LtiPlatform.name, School)
        .join(User, User.id == LtiIdentity.user_id)
        .join(LtiPlatform, LtiPlatform.id == LtiIdentity.platform_id)
        .outerjoin(School, School.id == User.school_id)
        .where(LtiIdentity.last_launch_at.is_not(None))
    )
    if not actor.is_platform_admin:
        statement = statement.where(School.district_id.in_(sorted(actor.admin_district_ids())))
    rows = db.session.execute(
        statement.order_by(LtiIdentity.last_launch_at.desc(), LtiIdentity.id.desc()).limit(limit)
    ).all()
    return [RecentLaunch(at, name, platform, school) for at, name, platform, school in rows]
