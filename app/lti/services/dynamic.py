"""Dynamic registration (LTI DR 1.0) through one-time registration links.

An administrator makes a link for her district (or one of its schools); the LMS admin
pastes it into the LMS, which opens it with its ``openid_configuration`` URL and a
``registration_token``.  Without a valid, unused, unexpired link nothing is fetched.
The platform's URLs are fetched through :func:`app.lti.services.http.guarded_json`
(public addresses only unless allowed by config, no redirects, short timeouts), and the
deployment lands in the link's organisation: pending approval, or approved at once when
``LTI_AUTO_APPROVE`` is set — the link, made by that district's administrator, is the
authority for that, so auto-approval never places an LMS anywhere else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlparse

from flask import current_app
from sqlalchemy import select, update

from app.accounts.models import District, School, User
from app.common.models import utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
from app.lti.models import LtiDeployment, LtiRegistrationLink
from app.lti.services.http import guarded_json
from app.lti.services.permissions import can_manage_district, require_admin
from app.lti.services.registrations import add_platform, check_url
from app.lti.tool import find_platform

log = logging.getLogger(__name__)

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MAX_LINK_HOURS = 24 * 30


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewLink:
    """A link just made: ``token`` is shown once (only its digest is stored)."""

    link: LtiRegistrationLink
    token: str

    def url(self, base_url: str) -> str:
        return f"{base_url}/lti/register/{self.token}"


def create_registration_link(
    actor: User | None,
    *,
    district_id: int | None = None,
    school_id: int | None = None,
    hours: int = 72,
    note: str = "",
    system: bool = False,
) -> NewLink:
    """A one-time link registering one LMS deployment in a district (or school).
    ``system`` is the CLI (no acting user)."""
    school = db.session.get(School, school_id) if school_id else None
    if school_id and school is None:
        raise Invalid("Unknown school.", fields={"school": ["No such school."]})
    if school is not None:
        district_id = school.district_id
    district = db.session.get(District, district_id) if district_id else None
    if district is None:
        raise Invalid(
            "A registration link belongs to a district or a school.",
            fields={"district": ["No such district."]},
        )
    if not system:
        require_admin(actor)
        if not can_manage_district(actor, district.id):
            raise Forbidden("You cannot make registration links for this district.")
    if not 1 <= hours <= MAX_LINK_HOURS:
        raise Invalid("Invalid lifetime.", fields={"hours": [f"1 to {MAX_LINK_HOURS}."]})
    token = secrets.token_urlsafe(32)
    link = LtiRegistrationLink(
        token_hash=_digest(token),
        district_id=district.id,
        school_id=school.id if school else None,
        created_by_id=actor.id if actor is not None else None,
        note=(note or "")[:200],
        expires_at=utcnow() + timedelta(hours=hours),
    )
    db.session.add(link)
    db.session.flush()
    return NewLink(link, token)


def list_registration_links(actor: User | None) -> list[LtiRegistrationLink]:
    require_admin(actor)
    statement = select(LtiRegistrationLink).order_by(LtiRegistrationLink.id.desc()).limit(100)
    if not actor.is_platform_admin:
        statement = statement.where(
            LtiRegistrationLink.district_id.in_(actor.admin_district_ids() or [-1])
        )
    return list(db.session.execute(statement).scalars())


def revoke_registration_link(actor: User | None, link_id: int) -> None:
    link = db.session.get(LtiRegistrationLink, link_id)
    if link is None or not can_manage_district(actor, link.district_id):
        raise NotFound("Registration link not found.")
    if link.used_at is None:
        link.expires_at = utcnow()
    db.session.flush()


def open_registration_link(token: str) -> LtiRegistrationLink:
    """The link for ``token`` if it can still be used; one message for every failure
    (unknown, used, expired), so a stranger learns nothing from trying."""
    link = None
    if token and len(token) <= 100:
        link = db.session.execute(
            select(LtiRegistrationLink).filter_by(token_hash=_digest(token))
        ).scalar_one_or_none()
    if link is None or link.used_at is not None or link.expires_at <= utcnow():
        raise NotFound(
            "This registration link is unknown, expired or already used: "
            "ask a Shuyuan administrator for a new one."
        )
    return link


def tool_configuration(base_url: str, name: str) -> dict:
    host = urlparse(base_url).netloc
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": base_url + "/lti/login",
        "redirect_uris": [base_url + "/lti/launch"],
        "client_name": name,
        "jwks_uri": base_url + "/lti/jwks.json",
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(
            [
                SCOPE_SCORE,
                SCOPE_LINEITEM,
                "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                SCOPE_NRPS,
            ]
        ),
        TOOL_CONFIGURATION: {
            "domain": host.split(":")[0] if host else "",
            "target_link_uri": base_url + "/lti/launch",
            "description": "Shuyuan course and resource commons",
            "claims": ["iss", "sub", "name", "given_name", "family_name", "email"],
            "messages": [
                {"type": "LtiResourceLinkRequest", "target_link_uri": base_url + "/lti/launch"},
                {
                    "type": "LtiDeepLinkingRequest",
                    "target_link_uri": base_url + "/lti/launch",
                    "label": "Shuyuan",
                    "placements": ["ContentArea", "RichTextEditor"],
                    "supported_types": ["ltiResourceLink"],
                },
            ],
        },
    }


_REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


def _read_configuration(openid_configuration: str) -> dict:
    status, config = guarded_json(
        "GET",
        openid_configuration,
        "The platform's configuration could not be read.",
        "openid_configuration",
        headers={"Accept": "application/json"},
    )
    if status != 200 or config is None:
        raise Invalid(
            "The platform's configuration could not be read.",
            fields={"openid_configuration": [f"HTTP {status}"]},
        )
    errors: dict = {}
    for name in (*_REQUIRED, "registration_endpoint"):
        value = config.get(name)
        if not isinstance(value, str) or not value or len(value) > 1000:
            errors[name] = ["Missing."]
    if errors:
        raise Invalid("The platform's configuration is incomplete.", fields=errors)
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        check_url(config[name], name, errors)
    if errors:
        raise Invalid("The platform's configuration is incomplete.", fields=errors)
    if urlparse(config["issuer"]).netloc != urlparse(openid_configuration).netloc:
        raise Invalid(
            "The configuration's issuer does not match where it was served from.",
            fields={"issuer": ["Another host."]},
        )
    return config


def _check_not_elsewhere(issuer: str, client_id: str, deployment_id: str, district_id: int):
    """A link may add a deployment to its own district, never change a registration that
    serves another district (its key set URL would then be the link holder's to choose)."""
    platform = find_platform(issuer, client_id)
    if platform is None:
        return
    for deployment in platform.deployments:
        if deployment.district_id != district_id:
            raise Conflict(
                "This platform registration belongs to another district.",
                fields={"client_id": ["Registered elsewhere."]},
            )


def register_dynamically(
    token: str,
    openid_configuration: str,
    registration_token: str | None,
    base_url: str,
    tool_name: str,
) -> LtiDeployment:
    """LTI Dynamic Registration 1.0 through the one-time link ``token``: read the
    platform's configuration, register the tool, store the deployment in the link's
    organisation (approved only when LTI_AUTO_APPROVE is set) and spend the link."""
    link = open_registration_link(token)
    errors: dict = {}
    check_url(openid_configuration, "openid_configuration", errors)
    if registration_token is not None and len(registration_token) > 4096:
        errors["registration_token"] = ["Too long."]
    if errors:
        raise Invalid(
            "The registration request has no valid openid_configuration URL.", fields=errors
        )
    config = _read_configuration(openid_configuration)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = "Bearer " + registration_token
    status, registered = guarded_json(
        "POST",
        config["registration_endpoint"],
        "The platform refused the registration.",
        "registration_endpoint",
        data=json.dumps(tool_configuration(base_url, tool_name)),
        headers=headers,
    )
    client_id = registered.get("client_id") if registered else None
    if status not in (200, 201) or not isinstance(client_id, str) or not client_id:
        raise Invalid(
            "The platform refused the registration.",
            fields={"registration_endpoint": [f"HTTP {status}"]},
        )
    tool_conf = registered.get(TOOL_CONFIGURATION)
    deployment_id = tool_conf.get("deployment_id") if isinstance(tool_conf, dict) else None
    if isinstance(deployment_id, int) and not isinstance(deployment_id, bool):
        deployment_id = str(deployment_id)
    if not isinstance(deployment_id, str) or not deployment_id.strip():
        deployment_id = "1"
    platform_conf = config.get(PLATFORM_CONFIGURATION)
    product = platform_conf.get("product_family_code") if isinstance(platform_conf, dict) else None
    product = product[:100] if isinstance(product, str) else None
    audience = config.get("authorization_server")
    issuer = config["issuer"]
    _check_not_elsewhere(issuer, client_id, deployment_id, link.district_id)
    deployment = add_platform(
        None,
        {
            "issuer": issuer,
            "client_id": client_id,
            "deployment_id": deployment_id,
            "auth_login_url": config["authorization_endpoint"],
            "auth_token_url": config["token_endpoint"],
            "key_set_url": config["jwks_uri"],
            "auth_audience": audience
            if isinstance(audience, str) and audience.startswith("http")
            else None,
            "name": product or urlparse(issuer).netloc,
            "product": product,
            "source": "dynamic",
            "school_id": link.school_id,
            "district_id": link.district_id,
            "approved": bool(current_app.config.get("LTI_AUTO_APPROVE")),
        },
        system=True,
    )
    # Spent only now (a failed attempt may be retried with the same link), and by one
    # conditional UPDATE: of two requests racing with the same link, one wins.
    spent = db.session.execute(
        update(LtiRegistrationLink)
        .where(LtiRegistrationLink.id == link.id, LtiRegistrationLink.used_at.is_(None))
        .values(used_at=utcnow(), deployment_id=deployment.id)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        raise Conflict("This registration link was used by another request.")
    db.session.flush()
    return deployment
