"""LTI 1.3 business logic: registrations, tool keys, login and launch, provisioning,
deep linking, grade passback (AGS) and roster sync (NRPS).

Functions take the acting user explicitly where one exists and only flush; views, jobs
and the CLI commit.
"""

from __future__ import annotations

import importlib
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlparse

import requests
from flask import current_app
from sqlalchemy import func, select

from app.accounts import services as accounts
from app.accounts.models import District, Role, School, User
from app.catalog import services as catalog
from app.catalog.models import Course, Resource
from app.common.models import utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
from app.lti.models import (
    KeyState,
    LtiContext,
    LtiContextMember,
    LtiDeployment,
    LtiGradeLink,
    LtiGradeOutbox,
    LtiIdentity,
    LtiKey,
    LtiPlatform,
    OutboxStatus,
)
from app.lti.tool import (
    CLAIM,
    N_,
    LaunchRefused,
    ShuyuanMessageLaunch,
    find_platform,
    launch_store,
    registration_for,
)

log = logging.getLogger(__name__)

AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
GRADABLE_KINDS = {"exercise", "interactive"}
STATE_TTL = 600
TEACHER_ROLE_WORDS = (
    "instructor",
    "administrator",
    "contentdeveloper",
    "teachingassistant",
    "mentor",
)


class TimeoutSession(requests.Session):
    """requests session whose calls to the LMS never hang a worker."""

    def __init__(self, timeout: float = 10.0):
        super().__init__()
        self._timeout = timeout
        self.headers["User-Agent"] = "Shuyuan-LTI/1.0"

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


def http_session() -> TimeoutSession:
    return TimeoutSession(current_app.config.get("LTI_HTTP_TIMEOUT", 10.0))


# --- authorisation --------------------------------------------------------------------


def _require_admin(actor: User | None) -> User:
    if actor is None or not actor.is_platform_admin:
        raise Forbidden("Only platform administrators manage LTI registrations.")
    return actor


def can_manage(actor: User | None, deployment: LtiDeployment | None = None) -> bool:
    if actor is None:
        return False
    if actor.is_platform_admin:
        return True
    if deployment is not None and deployment.district_id:
        return actor.is_district_admin(deployment.district_id)
    return False


# --- registrations --------------------------------------------------------------------


def _check_url(value: str | None, name: str, errors: dict, required: bool = True) -> None:
    if not value:
        if required:
            errors[name] = ["Required."]
        return
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        errors[name] = ["An http(s) URL."]


def _resolve_org(
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
        _require_admin(actor)
    errors: dict = {}
    for name in ("issuer", "client_id", "deployment_id"):
        if not (data.get(name) or "").strip():
            errors[name] = ["Required."]
    for name in ("auth_login_url", "auth_token_url", "key_set_url"):
        _check_url(data.get(name), name, errors)
    _check_url(data.get("auth_audience"), "auth_audience", errors, required=False)
    if errors:
        raise Invalid("The registration is not complete.", fields=errors)
    school, district = _resolve_org(
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


def list_platforms(actor: User | None) -> list[LtiPlatform]:
    if actor is None or not (actor.is_platform_admin or actor.is_district_admin()):
        raise Forbidden("Only administrators see LTI registrations.")
    platforms = list(db.session.execute(select(LtiPlatform).order_by(LtiPlatform.id)).scalars())
    if actor.is_platform_admin:
        return platforms
    districts = actor.admin_district_ids()
    return [p for p in platforms if any(d.district_id in districts for d in p.deployments)]


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
    if (
        not system
        and not can_manage(actor, deployment)
        and not (actor is not None and deployment.district_id is None and actor.is_district_admin())
    ):
        raise Forbidden("You cannot approve this deployment.")
    if school_code or school_id or district_id:
        school, district = _resolve_org(school_code, None, school_id, district_id)
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
    _require_admin(actor)
    platform = db.session.get(LtiPlatform, platform_id)
    if platform is None:
        raise NotFound("Platform not found.")
    platform.active = False
    for deployment in platform.deployments:
        deployment.approved = False
    db.session.flush()


# --- tool keys ------------------------------------------------------------------------


def new_key_row(state: KeyState = KeyState.NEXT) -> LtiKey:
    """A new RSA-2048 key (not added to any session)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwcrypto.jwk import JWK

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk = JWK.from_pem(public_pem)
    kid = jwk.thumbprint()
    public = json.loads(jwk.export_public())
    public.update({"kid": kid, "alg": "RS256", "use": "sig"})
    key = LtiKey(kid=kid, private_pem=pem, public_jwk=public, state=state)
    if state == KeyState.ACTIVE:
        key.activated_at = utcnow()
    return key


def create_key(state: KeyState = KeyState.NEXT) -> LtiKey:
    key = new_key_row(state)
    db.session.add(key)
    db.session.flush()
    return key


def jwks() -> dict:
    """Every key a platform may meet: the next key (published before it signs), the
    active key and keys retiring during their grace period."""
    keys = db.session.execute(
        select(LtiKey)
        .where(LtiKey.state.in_([KeyState.NEXT, KeyState.ACTIVE, KeyState.RETIRING]))
        .order_by(LtiKey.id)
    ).scalars()
    published = [dict(k.public_jwk) for k in keys]
    if not published:
        from app.lti.tool import signing_key

        published = [dict(signing_key().public_jwk)]
    return {"keys": published}


@dataclass
class RotationReport:
    created: list[str] = field(default_factory=list)
    activated: list[str] = field(default_factory=list)
    retiring: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)


def rotate_keys(
    publish_seconds: int | None = None,
    grace_seconds: int | None = None,
    now: datetime | None = None,
) -> RotationReport:
    """One step of the rotation schedule; run it daily (cron).

    1. keys retiring for longer than the grace period leave the JWKS;
    2. a ``next`` key published for at least ``publish_seconds`` starts signing and the
       previous active key starts retiring (still published, so tokens it signed verify);
    3. when no ``next`` key exists a new one is published (it signs only on a later run).
    """
    config = current_app.config
    publish = (
        config.get("LTI_KEY_PUBLISH_SECONDS", 86400) if publish_seconds is None else publish_seconds
    )
    grace = (
        config.get("LTI_KEY_GRACE_SECONDS", 7 * 86400) if grace_seconds is None else grace_seconds
    )
    now = now or utcnow()
    report = RotationReport()
    for key in db.session.execute(select(LtiKey).filter_by(state=KeyState.RETIRING)).scalars():
        if key.retiring_at <= now - timedelta(seconds=grace):
            key.state, key.retired_at = KeyState.RETIRED, now
            report.retired.append(key.kid)
    actives = list(db.session.execute(select(LtiKey).filter_by(state=KeyState.ACTIVE)).scalars())
    pending = (
        db.session.execute(
            select(LtiKey).filter_by(state=KeyState.NEXT).order_by(LtiKey.created_at, LtiKey.id)
        )
        .scalars()
        .first()
    )
    if not actives and pending is None:
        report.activated.append(create_key(KeyState.ACTIVE).kid)
    elif pending is not None and pending.created_at <= now - timedelta(seconds=publish):
        pending.state, pending.activated_at = KeyState.ACTIVE, now
        report.activated.append(pending.kid)
        for key in actives:
            key.state, key.retiring_at = KeyState.RETIRING, now
            report.retiring.append(key.kid)
        pending = None
    if pending is None:
        report.created.append(create_key(KeyState.NEXT).kid)
    db.session.flush()
    return report


# --- OIDC login -----------------------------------------------------------------------


@dataclass
class LoginStart:
    state: str
    nonce: str
    auth_url: str
    storage_target: str | None
    auth_origin: str


def begin_login(params: dict, launch_url: str) -> LoginStart:
    """Validate a third-party initiated login and prepare the redirect to the platform.

    State and nonce are stored in the shared launch store (any worker can finish the
    launch); the caller binds the state to the browser by a cookie or, when the platform
    offers ``lti_storage_target``, through platform storage.
    """
    iss = (params.get("iss") or "").strip()
    login_hint = params.get("login_hint")
    if not iss:
        raise LaunchRefused(N_("The login request has no issuer (iss)."), "lti_bad_login")
    if not login_hint:
        raise LaunchRefused(N_("The login request has no login_hint."), "lti_bad_login")
    platform = find_platform(iss, params.get("client_id"))
    if platform is None:
        raise LaunchRefused(
            N_(
                "This learning platform is not registered with Shuyuan "
                "(unknown issuer or client id)."
            ),
            "lti_unknown_platform",
        )
    state = "state-" + uuid.uuid4().hex
    nonce = secrets.token_urlsafe(24)
    storage_target = (params.get("lti_storage_target") or "").strip()[:100] or None
    store = launch_store()
    if secrets.randbelow(500) == 0:  # expired states and nonces are swept now and then
        store.purge_expired()
    store.put(
        "state-" + state,
        {"nonce": nonce, "platform_id": platform.id, "storage_target": storage_target},
        STATE_TTL,
        new=True,
    )
    store.put("nonce-" + nonce, {"state": state}, STATE_TTL, new=True)
    auth = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": launch_url,
        "state": state,
        "nonce": nonce,
        "login_hint": login_hint,
    }
    if params.get("lti_message_hint"):
        auth["lti_message_hint"] = params["lti_message_hint"]
    separator = "&" if "?" in platform.auth_login_url else "?"
    parsed = urlparse(platform.auth_login_url)
    return LoginStart(
        state,
        nonce,
        platform.auth_login_url + separator + urlencode(auth),
        storage_target,
        f"{parsed.scheme}://{parsed.netloc}",
    )


# --- launch ---------------------------------------------------------------------------


def validate_launch(launch: ShuyuanMessageLaunch) -> dict:
    """Run every check; returns the verified id_token body or raises LaunchRefused."""
    from pylti1p3.exception import LtiException

    try:
        launch.validate()
    except LaunchRefused:
        raise
    except LtiException as exc:
        raise LaunchRefused(f"The launch is not valid: {exc}", "lti_invalid") from exc
    return launch.body()


def map_role(roles: list[str] | None) -> Role:
    for role in roles or []:
        tail = role.rsplit("#", 1)[-1].rsplit("/", 1)[-1].lower()
        if tail in TEACHER_ROLE_WORDS or any(
            word in role.lower() for word in ("#instructor", "#administrator")
        ):
            return Role.TEACHER
    return Role.STUDENT


def _display_name(claims: dict) -> str:
    name = (
        claims.get("name")
        or " ".join(part for part in (claims.get("given_name"), claims.get("family_name")) if part)
    ).strip()
    return (name or claims.get("email") or "LMS user")[:200]


def provision_user(
    platform: LtiPlatform, deployment: LtiDeployment, claims: dict, role: Role | None = None
) -> User:
    """issuer + sub → one local user in the deployment's school (created or updated)."""
    sub = str(claims.get("sub") or claims.get("user_id") or "").strip()
    if not sub:
        raise LaunchRefused(
            N_("The launch has no user (sub): anonymous launches are not supported."), "lti_no_user"
        )
    role = role or map_role(claims.get("roles") or claims.get(CLAIM + "roles"))
    identity = db.session.execute(
        select(LtiIdentity).filter_by(issuer=platform.issuer, sub=sub)
    ).scalar_one_or_none()
    school = deployment.school
    district = deployment.district
    if identity is None:
        email = (claims.get("email") or "").strip().lower() or None
        if email and accounts.get_user_by_email(email) is not None:
            email = None  # never attach an LMS identity to an existing account by email
        user = accounts.create_user(email, _display_name(claims), school=school, district=district)
        identity = LtiIdentity(
            issuer=platform.issuer, sub=sub, platform_id=platform.id, user_id=user.id
        )
        db.session.add(identity)
    else:
        user = identity.user
        name = _display_name(claims)
        if name != "LMS user" and user.name != name:
            user.name = name
        if user.school_id is None and school is not None:
            user.school, user.district = school, school.district
    if not user.is_active:
        raise LaunchRefused(N_("This account is disabled."), "lti_user_disabled", 403)
    if school is not None:
        accounts.assign_role(user, role, school=school)
    else:
        accounts.assign_role(user, role, district=district)
    identity.last_launch_at = utcnow()
    user.last_login_at = identity.last_launch_at
    db.session.flush()
    return user


def _curriculum():
    """The curriculum feature's services when installed (it may land after us)."""
    try:
        module = importlib.import_module("app.curriculum.services")
    except ImportError:
        return None
    return module if hasattr(module, "get_or_create_class") else None


def map_context(
    platform: LtiPlatform, deployment: LtiDeployment, body: dict, user: User, role: Role
) -> LtiContext | None:
    context = body.get(CLAIM + "context") or {}
    context_id = str(context.get("id") or "").strip()
    if not context_id:
        return None
    row = db.session.execute(
        select(LtiContext).filter_by(platform_id=platform.id, context_id=context_id)
    ).scalar_one_or_none()
    title = (context.get("title") or context.get("label") or context_id)[:255]
    if row is None:
        row = LtiContext(
            platform_id=platform.id, deployment_id=deployment.id, context_id=context_id
        )
        db.session.add(row)
    row.title, row.label = title, (context.get("label") or None)
    nrps = body.get(NRPS) or {}
    if nrps.get("context_memberships_url"):
        row.memberships_url = nrps["context_memberships_url"][:1000]
    db.session.flush()
    _add_member(row, user, role)
    return row


def _class_for(row: LtiContext):
    curriculum = _curriculum()
    school = row.deployment.school
    if curriculum is None or school is None:
        return None
    school_class = curriculum.get_or_create_class(
        school, row.title, external_ref=f"lti:{row.platform_id}:{row.context_id}"
    )
    if school_class is not None and row.class_id != school_class.id:
        row.class_id = school_class.id
    return school_class


def _add_member(row: LtiContext, user: User, role: Role, active: bool = True) -> None:
    member = db.session.execute(
        select(LtiContextMember).filter_by(context_id=row.id, user_id=user.id)
    ).scalar_one_or_none()
    if member is not None and member.role == str(role) and member.active == active and row.class_id:
        return  # a returning member: already in the class
    if member is None:
        member = LtiContextMember(context_id=row.id, user_id=user.id, role=str(role))
        db.session.add(member)
    member.role, member.active = str(role), active
    school_class = _class_for(row)
    if school_class is not None and active:
        _curriculum().add_class_member(school_class, user, str(role))
    db.session.flush()


@dataclass
class LaunchOutcome:
    user: User
    kind: str  # "resource", "course", "week", "deep_link", "home"
    target: dict
    context: LtiContext | None
    follow_up: list[tuple[str, tuple]] = field(default_factory=list)
    launch_id: str | None = None


def _custom(body: dict) -> dict:
    custom = body.get(CLAIM + "custom") or {}
    return {str(k): str(v) for k, v in custom.items()} if isinstance(custom, dict) else {}


def _target_of(user: User, custom: dict) -> tuple[str, dict, Resource | Course | None]:
    """The content a resource link opens, checked against what the user may see."""
    if custom.get("resource"):
        obj = _visible(user, Resource, custom["resource"])
        return "resource", {"content_id": obj.content_id, "title": obj.title}, obj
    if custom.get("course"):
        obj = _visible(user, Course, custom["course"])
        return "course", {"content_id": obj.content_id, "title": obj.title}, obj
    if custom.get("week") or custom.get("calendar"):
        try:
            calendar_id, week = int(custom.get("calendar", "")), int(custom.get("week", ""))
        except ValueError:
            raise LaunchRefused(
                N_("The link's syllabus week is not valid."), "lti_bad_target"
            ) from None
        return "week", {"calendar_id": calendar_id, "week": week}, None
    return "home", {}, None


def _visible(user: User, model, content_id: str):
    from app.catalog.models import State

    # The published version is what a link opens (one query); anything else goes
    # through the catalog's full rules.
    obj = db.session.execute(
        select(model).filter_by(content_id=content_id, state=State.PUBLISHED)
    ).scalar_one_or_none()
    if obj is not None and catalog.can_view(user, obj):
        return obj
    try:
        obj = catalog.get_content(user, model, content_id)
    except NotFound:
        exists = db.session.execute(
            select(model.id).filter_by(content_id=content_id).limit(1)
        ).first()
        if exists is None:
            raise LaunchRefused(
                N_("The content this link opens no longer exists."), "lti_not_found", 404
            ) from None
        raise LaunchRefused(
            N_("Your school's district cannot see the content this link opens."),
            "lti_not_visible",
            403,
        ) from None
    if not catalog.can_view(user, obj):
        raise LaunchRefused(
            N_("Your school's district cannot see the content this link opens."),
            "lti_not_visible",
            403,
        )
    return obj


def complete_launch(platform: LtiPlatform, deployment: LtiDeployment, body: dict) -> LaunchOutcome:
    """Provision the user, map the context, record the grade link and pick the target."""
    from app.hooks import emit_learning_event

    message_type = body.get(CLAIM + "message_type")
    role = map_role(body.get(CLAIM + "roles"))
    user = provision_user(platform, deployment, body, role)
    context = map_context(platform, deployment, body, user, role)
    follow_up: list[tuple[str, tuple]] = []
    if context is not None and context.memberships_url:
        period = current_app.config.get("LTI_ROSTER_SYNC_SECONDS", 86400)
        if (
            context.last_roster_sync_at is None
            or context.last_roster_sync_at < utcnow() - timedelta(seconds=period)
        ):
            # Claimed now so that concurrent launches do not all sync.
            context.last_roster_sync_at = utcnow()
            follow_up.append(("app.lti.services:sync_roster_job", (context.id,)))
    if message_type == "LtiDeepLinkingRequest":
        if role != Role.TEACHER:
            raise LaunchRefused(
                N_("Only teachers can add Shuyuan content to a course."), "lti_forbidden", 403
            )
        launch_id = "dl-" + uuid.uuid4().hex
        launch_store().put(
            launch_id,
            {
                "user": user.public_id,
                "platform_id": platform.id,
                "deployment_pk": deployment.id,
                "deployment_id": deployment.deployment_id,
                "settings": body.get(DL_SETTINGS) or {},
            },
            current_app.config.get("LTI_DEEP_LINK_SECONDS", 3600),
            new=True,
        )
        db.session.flush()
        return LaunchOutcome(user, "deep_link", {}, context, follow_up, launch_id)
    if message_type != "LtiResourceLinkRequest":
        raise LaunchRefused(N_("This kind of LTI message is not supported."), "lti_unsupported")
    kind, target, obj = _target_of(user, _custom(body))
    if kind == "week":
        _check_week(user, target)
    ags = body.get(AGS) or {}
    link = (body.get(CLAIM + "resource_link") or {}).get("id")
    if obj is not None and ags.get("lineitem") and link and SCOPE_SCORE in (ags.get("scope") or []):
        _record_grade_link(
            platform, deployment, user, str(body["sub"]), str(link), obj.content_id, ags
        )
    event_context = {
        "platform": platform.issuer,
        "deployment": deployment.deployment_id,
        "lti_context": context.context_id if context else None,
        "class_id": context.class_id if context else None,
        "via": "lti",
    }
    emit_learning_event(
        user,
        "launched",
        resource=obj if kind == "resource" else None,
        course=obj if kind == "course" else None,
        context=event_context,
    )
    db.session.flush()
    return LaunchOutcome(user, kind, target, context, follow_up)


def _check_week(user: User, target: dict) -> None:
    curriculum = _curriculum()
    if curriculum is None or not hasattr(curriculum, "lessons_for_week"):
        raise LaunchRefused(
            N_("Syllabus weeks are not available on this Shuyuan."), "lti_bad_target", 404
        )
    try:
        curriculum.lessons_for_week(user, target["calendar_id"], target["week"])
    except (NotFound, Forbidden) as exc:
        raise LaunchRefused(
            N_("Your school's district cannot see this syllabus week."), "lti_not_visible", 403
        ) from exc


def _record_grade_link(
    platform, deployment, user, sub, resource_link_id, content_id, ags
) -> LtiGradeLink:
    link = db.session.execute(
        select(LtiGradeLink).filter_by(
            platform_id=platform.id, resource_link_id=resource_link_id, user_id=user.id
        )
    ).scalar_one_or_none()
    if link is None:
        link = LtiGradeLink(
            platform_id=platform.id, resource_link_id=resource_link_id, user_id=user.id
        )
        db.session.add(link)
    link.deployment_id = deployment.id
    link.sub = sub
    link.content_id = content_id
    link.lineitem_url = ags["lineitem"][:1000]
    link.scopes = list(ags.get("scope") or [])
    db.session.flush()
    return link


# --- deep linking ---------------------------------------------------------------------


def deep_link_session(launch_id: str) -> dict:
    data = launch_store().get(launch_id) if launch_id and launch_id.startswith("dl-") else None
    if data is None:
        raise NotFound("This content selection has expired: start it again from your course.")
    return data


def deep_link_user(data: dict) -> User:
    user = accounts.get_user_by_public_id(data["user"])
    if user is None or not user.is_active:
        raise Forbidden("This account is disabled.")
    return user


def search_content(user: User, q: str | None, page: int = 1, per_page: int = 20) -> list[dict]:
    """Search helper's results when installed, else the catalog's title search."""
    try:
        search_services = importlib.import_module("app.search.services")
        search_fn = search_services.search
    except (ImportError, AttributeError):
        search_fn = None
    items: list[dict] = []
    if search_fn is not None and q:
        result = search_fn(user, q, filters=None, sort="relevance", page=page, per_page=per_page)
        hits = getattr(result, "items", None) or (
            result.get("items") if isinstance(result, dict) else result
        )
        for hit in hits or []:
            get = hit.get if isinstance(hit, dict) else (lambda k, h=hit: getattr(h, k, None))
            kind = get("type") or get("model") or ("course" if get("course") else "resource")
            content_id = get("content_id") or get("id")
            if content_id:
                items.append(
                    {
                        "type": "course" if str(kind).lower().startswith("course") else "resource",
                        "content_id": str(content_id),
                        "title": get("title") or "",
                        "kind": get("kind") or "",
                    }
                )
        return items
    filters = catalog.CatalogFilters(q=q or None)
    for model, name in ((Resource, "resource"), (Course, "course")):
        listing = catalog.list_published(user, model, filters, page, per_page)
        for obj in listing.items:
            items.append(
                {"type": name, "content_id": obj.content_id, "title": obj.title, "kind": obj.kind}
            )
    return items


def browse_curriculum(user: User, calendar_id: int | None, week: int | None) -> dict:
    curriculum = _curriculum()
    if curriculum is None or not hasattr(curriculum, "list_calendars"):
        return {"available": False, "calendars": [], "lessons": [], "resources": []}
    calendars = list(curriculum.list_calendars(user))
    lessons, resources = [], []
    if calendar_id and week:
        lessons = list(curriculum.lessons_for_week(user, calendar_id, week))
        resources = list(curriculum.resources_for_week(user, calendar_id, week))
    return {"available": True, "calendars": calendars, "lessons": lessons, "resources": resources}


def _line_item(title: str, content_id: str):
    from pylti1p3.lineitem import LineItem

    return (
        LineItem()
        .set_label(title[:100])
        .set_score_maximum(100)
        .set_resource_id(content_id)
        .set_tag("shuyuan")
    )


def build_deep_link_items(user: User, selection: list[str], launch_url: str) -> list:
    """``selection`` entries: ``resource:<content_id>``, ``course:<content_id>``,
    ``week:<calendar_id>:<week>`` (every resource of that week) or
    ``weekpage:<calendar_id>:<week>`` (one link opening the week)."""
    from pylti1p3.deep_link_resource import DeepLinkResource

    items = []
    seen: set[str] = set()

    def resource_item(resource: Resource, extra: dict | None = None):
        if resource.content_id in seen:
            return
        seen.add(resource.content_id)
        item = DeepLinkResource().set_url(launch_url).set_title(resource.title[:200])
        item.set_custom_params({"resource": resource.content_id, **(extra or {})})
        if resource.kind in GRADABLE_KINDS:
            item.set_lineitem(_line_item(resource.title, resource.content_id))
        items.append(item)

    for entry in selection:
        kind, _, rest = entry.partition(":")
        if kind == "resource":
            resource_item(_selected(user, Resource, rest))
        elif kind == "course":
            course = _selected(user, Course, rest)
            items.append(
                DeepLinkResource()
                .set_url(launch_url)
                .set_title(course.title[:200])
                .set_custom_params({"course": course.content_id})
            )
        elif kind in ("week", "weekpage"):
            calendar, _, week = rest.partition(":")
            try:
                calendar_id, week_number = int(calendar), int(week)
            except ValueError:
                raise Invalid("Unknown selection.", fields={"items": [entry]}) from None
            curriculum = _curriculum()
            if curriculum is None:
                raise Invalid("Syllabus weeks are not available.", fields={"items": [entry]})
            if kind == "weekpage":
                curriculum.lessons_for_week(user, calendar_id, week_number)
                items.append(
                    DeepLinkResource()
                    .set_url(launch_url)
                    .set_title(f"Week {week_number}")
                    .set_custom_params({"calendar": str(calendar_id), "week": str(week_number)})
                )
                continue
            for resource in curriculum.resources_for_week(user, calendar_id, week_number):
                resource_item(resource, {"calendar": str(calendar_id), "week": str(week_number)})
        else:
            raise Invalid("Unknown selection.", fields={"items": [entry]})
    if not items:
        raise Invalid("Choose at least one item.", fields={"items": ["Nothing selected."]})
    return items


def _selected(user: User, model, content_id: str):
    try:
        return catalog.get_content(user, model, content_id)
    except NotFound:
        raise Invalid("Unknown selection.", fields={"items": [content_id]}) from None


def deep_link_response(launch_id: str, selection: list[str], launch_url: str) -> tuple[str, str]:
    """Sign the deep linking response; returns (return URL, JWT).  The selection session
    is consumed: a response is sent once."""
    from pylti1p3.deep_link import DeepLink

    data = deep_link_session(launch_id)
    user = deep_link_user(data)
    settings = data.get("settings") or {}
    items = build_deep_link_items(user, selection, launch_url)
    accept_types = settings.get("accept_types") or ["ltiResourceLink"]
    if "ltiResourceLink" not in accept_types:
        raise Invalid(
            "The platform does not accept LTI links here.", fields={"items": ["Not accepted."]}
        )
    if len(items) > 1 and settings.get("accept_multiple") is False:
        raise Invalid("The platform accepts only one item here.", fields={"items": ["Choose one."]})
    if not settings.get("deep_link_return_url"):
        raise Invalid("The platform sent no return URL.")
    platform = db.session.get(LtiPlatform, data["platform_id"])
    if platform is None or not platform.active:
        raise NotFound("The platform registration is gone.")
    # The signing key first: its first creation commits on its own connection, which
    # must not wait behind this request's own write (SQLite has one writer).
    registration = registration_for(platform)
    if launch_store().take(launch_id) is None:
        raise NotFound("This content selection was already sent.")
    deep_link = DeepLink(registration, data["deployment_id"], settings)
    return settings["deep_link_return_url"], deep_link.get_response_jwt(items)


# --- grades (AGS) ---------------------------------------------------------------------


def score_from_result(result: dict | None) -> tuple[float, float] | None:
    """(given, maximum) from a learning event's result: ``{"score": {"raw", "max"}}``,
    ``{"score": {"scaled"}}`` or ``{"score": 0.8}`` (scaled)."""
    if not isinstance(result, dict) or result.get("score") is None:
        return None
    score = result["score"]
    try:
        if isinstance(score, dict):
            if score.get("raw") is not None and score.get("max"):
                given, maximum = float(score["raw"]), float(score["max"])
            elif score.get("scaled") is not None:
                given, maximum = float(score["scaled"]) * 100, 100.0
            else:
                return None
        else:
            given, maximum = float(score) * 100, 100.0
    except (TypeError, ValueError):
        return None
    if maximum <= 0:
        return None
    return max(0.0, min(given, maximum)), maximum


def queue_scores(user: User, content_ids: list[str], result: dict) -> list[LtiGradeOutbox]:
    score = score_from_result(result)
    if score is None or user is None or not content_ids:
        return []
    links = (
        db.session.execute(
            select(LtiGradeLink).where(
                LtiGradeLink.user_id == user.id, LtiGradeLink.content_id.in_(content_ids)
            )
        )
        .scalars()
        .all()
    )
    rows = []
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    completed = result.get("completion", True) is not False
    for link in links:
        if SCOPE_SCORE not in (link.scopes or []):
            continue
        row = LtiGradeOutbox(
            link_id=link.id,
            score_given=score[0],
            score_maximum=score[1],
            timestamp=stamp,
            activity_progress="Completed" if completed else "InProgress",
            grading_progress="FullyGraded" if completed else "Pending",
        )
        db.session.add(row)
        rows.append(row)
    db.session.flush()
    return rows


def _backoff(attempts: int) -> timedelta:
    base = current_app.config.get("LTI_GRADE_RETRY_SECONDS", 30)
    return timedelta(seconds=min(base * (2 ** max(attempts - 1, 0)), 6 * 3600))


def deliver_grade(outbox_id: int) -> str:
    """Post one score to its line item; on failure schedule a retry (or give up)."""
    from pylti1p3.assignments_grades import AssignmentsGradesService
    from pylti1p3.grade import Grade
    from pylti1p3.service_connector import ServiceConnector

    row = db.session.get(LtiGradeOutbox, outbox_id)
    if row is None or row.status != OutboxStatus.PENDING:
        return "skipped"
    link = row.link
    platform = db.session.get(LtiPlatform, link.platform_id)
    registration = registration_for(platform) if platform is not None else None
    row.attempts += 1
    try:
        if platform is None or not platform.active:
            raise RuntimeError("platform registration removed")
        connector = ServiceConnector(registration, http_session())
        service = AssignmentsGradesService(
            connector, {"scope": link.scopes, "lineitem": link.lineitem_url}
        )
        grade = (
            Grade()
            .set_score_given(row.score_given)
            .set_score_maximum(row.score_maximum)
            .set_timestamp(row.timestamp)
            .set_activity_progress(row.activity_progress)
            .set_grading_progress(row.grading_progress)
            .set_user_id(link.sub)
        )
        service.put_grade(grade)
    except Exception as exc:  # network errors, 4xx/5xx from the LMS (LtiServiceException)
        message = _describe_error(exc)
        row.last_error = message[:1000]
        if row.attempts >= current_app.config.get("LTI_GRADE_MAX_ATTEMPTS", 8):
            row.status = OutboxStatus.FAILED
        else:
            row.next_attempt_at = utcnow() + _backoff(row.attempts)
        log.warning(
            "grade %s to %s failed (attempt %s): %s",
            row.id,
            link.lineitem_url,
            row.attempts,
            message,
        )
        db.session.flush()
        return "failed"
    row.status, row.sent_at, row.last_error = OutboxStatus.SENT, utcnow(), None
    db.session.flush()
    return "sent"


def _describe_error(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response is not None and hasattr(response, "status_code"):
        return f"HTTP {response.status_code} from the LMS: {(response.text or '')[:300]}"
    return f"{type(exc).__name__}: {exc}"


def due_grades(now: datetime | None = None, limit: int = 200) -> list[int]:
    now = now or utcnow()
    return list(
        db.session.execute(
            select(LtiGradeOutbox.id)
            .where(
                LtiGradeOutbox.status == OutboxStatus.PENDING, LtiGradeOutbox.next_attempt_at <= now
            )
            .order_by(LtiGradeOutbox.next_attempt_at)
            .limit(limit)
        ).scalars()
    )


def deliver_due_grades(force: bool = False) -> dict:
    """Retry every due score (``force``: every pending one).  Commits per score."""
    counts = {"sent": 0, "failed": 0, "skipped": 0}
    ids = due_grades(now=utcnow() + timedelta(days=365) if force else None)
    for outbox_id in ids:
        counts[deliver_grade(outbox_id)] += 1
        db.session.commit()
    return counts


def grade_log(actor: User | None, status: str | None = None, page: int = 1, per_page: int = 50):
    from app.common.pagination import paginate

    if actor is None or not (actor.is_platform_admin or actor.is_district_admin()):
        raise Forbidden("Only administrators see the grade log.")
    statement = (
        select(LtiGradeOutbox)
        .join(LtiGradeLink)
        .join(LtiDeployment, LtiDeployment.id == LtiGradeLink.deployment_id)
    )
    count = (
        select(func.count(LtiGradeOutbox.id))
        .join(LtiGradeLink)
        .join(LtiDeployment, LtiDeployment.id == LtiGradeLink.deployment_id)
    )
    if status:
        if status not in {s.value for s in OutboxStatus}:
            raise Invalid(
                "Unknown status.", fields={"status": [", ".join(s.value for s in OutboxStatus)]}
            )
        statement = statement.where(LtiGradeOutbox.status == status)
        count = count.where(LtiGradeOutbox.status == status)
    if not actor.is_platform_admin:
        statement = statement.where(LtiDeployment.district_id.in_(actor.admin_district_ids()))
        count = count.where(LtiDeployment.district_id.in_(actor.admin_district_ids()))
    statement = statement.order_by(LtiGradeOutbox.id.desc())
    return paginate(statement, page, per_page, count_statement=count)


def retry_grade(actor: User | None, outbox_id: int) -> LtiGradeOutbox:
    row = db.session.get(LtiGradeOutbox, outbox_id)
    if row is None:
        raise NotFound("Score not found.")
    deployment = db.session.get(LtiDeployment, row.link.deployment_id)
    if not can_manage(actor, deployment):
        raise Forbidden("You cannot retry this score.")
    if row.status == OutboxStatus.SENT:
        raise Conflict("This score was already sent.")
    row.status, row.next_attempt_at, row.attempts = OutboxStatus.PENDING, utcnow(), 0
    db.session.flush()
    return row


# --- rosters (NRPS) -------------------------------------------------------------------


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
        if not member.get("user_id"):
            continue
        role = map_role(member.get("roles"))
        claims = dict(member)
        claims["sub"] = member["user_id"]
        user = provision_user(platform, deployment, claims, role)
        active = (member.get("status") or "Active") == "Active"
        before = db.session.execute(
            select(LtiContextMember).filter_by(context_id=row.id, user_id=user.id)
        ).scalar_one_or_none()
        added += before is None
        _add_member(row, user, role, active)
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
        log.warning("roster sync of context %s failed: %s", context_pk, _describe_error(exc))
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
        raise Invalid(f"The LMS roster could not be read: {_describe_error(exc)}") from exc


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


# --- dynamic registration ------------------------------------------------------------


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


def register_dynamically(
    openid_configuration: str,
    registration_token: str | None,
    base_url: str,
    tool_name: str,
    school_code: str | None = None,
) -> LtiDeployment:
    """LTI Dynamic Registration 1.0: read the platform's configuration, register the
    tool, store the platform (approved only when LTI_AUTO_APPROVE is set)."""
    errors: dict = {}
    _check_url(openid_configuration, "openid_configuration", errors)
    if errors:
        raise Invalid(
            "The registration request has no valid openid_configuration URL.", fields=errors
        )
    school, district = _resolve_org(school_code) if school_code else (None, None)
    session = http_session()
    try:
        response = session.get(openid_configuration, headers={"Accept": "application/json"})
        config = response.json() if response.ok else None
    except (requests.RequestException, ValueError) as exc:
        raise Invalid(f"The platform's configuration could not be read: {exc}") from exc
    if not isinstance(config, dict):
        raise Invalid(
            f"The platform's configuration could not be read (HTTP {response.status_code})."
        )
    required = (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "registration_endpoint",
    )
    missing = [name for name in required if not config.get(name)]
    if missing:
        raise Invalid(
            "The platform's configuration is incomplete.",
            fields={name: ["Missing."] for name in missing},
        )
    issuer = config["issuer"]
    if urlparse(issuer).netloc != urlparse(openid_configuration).netloc:
        raise Invalid(
            "The configuration's issuer does not match where it was served from.",
            fields={"issuer": [issuer]},
        )
    payload = tool_configuration(base_url, tool_name)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = "Bearer " + registration_token
    try:
        answer = session.post(
            config["registration_endpoint"], data=json.dumps(payload), headers=headers
        )
        registered = answer.json() if answer.ok else None
    except (requests.RequestException, ValueError) as exc:
        raise Invalid(f"The platform refused the registration: {exc}") from exc
    if not isinstance(registered, dict) or not registered.get("client_id"):
        raise Invalid(f"The platform refused the registration (HTTP {answer.status_code}).")
    deployment_id = (registered.get(TOOL_CONFIGURATION) or {}).get("deployment_id") or "1"
    platform_conf = config.get(PLATFORM_CONFIGURATION) or {}
    auto = bool(current_app.config.get("LTI_AUTO_APPROVE")) and (
        school is not None or district is not None
    )
    existing = find_platform(issuer, registered["client_id"])
    data = {
        "issuer": issuer,
        "client_id": registered["client_id"],
        "deployment_id": deployment_id,
        "auth_login_url": config["authorization_endpoint"],
        "auth_token_url": config["token_endpoint"],
        "key_set_url": config["jwks_uri"],
        "auth_audience": config.get("authorization_server")
        if str(config.get("authorization_server", "")).startswith("http")
        else None,
        "name": platform_conf.get("product_family_code") or urlparse(issuer).netloc,
        "product": platform_conf.get("product_family_code"),
        "source": "dynamic",
        "approved": auto,
    }
    if school is None and district is None:
        return _store_unassigned(data, existing)
    data["school_id"] = school.id if school else None
    data["district_id"] = district.id if district and not school else None
    return add_platform(None, data, system=True)


def _store_unassigned(data: dict, existing: LtiPlatform | None) -> LtiDeployment:
    platform = existing or LtiPlatform(issuer=data["issuer"], client_id=data["client_id"])
    if existing is None:
        db.session.add(platform)
    platform.name = data["name"][:200]
    platform.auth_login_url, platform.auth_token_url = (
        data["auth_login_url"],
        data["auth_token_url"],
    )
    platform.key_set_url, platform.auth_audience = data["key_set_url"], data["auth_audience"]
    platform.source, platform.product, platform.active = "dynamic", data["product"], True
    db.session.flush()
    deployment = db.session.execute(
        select(LtiDeployment).filter_by(
            platform_id=platform.id, deployment_id=str(data["deployment_id"])
        )
    ).scalar_one_or_none()
    if deployment is None:
        deployment = LtiDeployment(
            platform_id=platform.id, deployment_id=str(data["deployment_id"]), approved=False
        )
        db.session.add(deployment)
    db.session.flush()
    return deployment


def purge_expired_launch_data() -> int:
    return launch_store().purge_expired()


def now_ts() -> int:
    return int(time.time())
