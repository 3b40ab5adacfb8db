"""The launch: validation (pylti1p3 + our checks), the cookie-less continuation, and
what a validated launch does — provision, map the context, record the grade link, pick
the target the deployment's organisation may open."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import lazyload

from app import signals
from app.accounts.models import Role, User
from app.catalog import services as catalog
from app.catalog.models import Course, Resource, State
from app.common.models import utcnow
from app.curriculum import services as curriculum
from app.errors import Forbidden, NotFound
from app.extensions import db
from app.i18n import N_
from app.lti.claims import LaunchClaims, claims_from_json, claims_to_json
from app.lti.errors import LaunchRefused
from app.lti.models import LtiContext, LtiDeployment, LtiPlatform
from app.lti.services import ags
from app.lti.services.login import binding_digest
from app.lti.services.provisioning import (
    NOT_READ,
    LaunchKeys,
    Person,
    map_context,
    map_role,
    provision_launch,
)
from app.lti.store import launch_store
from app.lti.tool import ShuyuanMessageLaunch

PENDING_TTL = 300
MAX_WEEK = 100  # a school year has about 40 teaching weeks
MAX_ID = 2**31 - 1  # database integer keys


def validate_launch(launch: ShuyuanMessageLaunch) -> LaunchClaims:
    """Run every check; returns the verified, typed claims or raises LaunchRefused."""
    from pylti1p3.exception import LtiException

    try:
        launch.validate()
    except LaunchRefused:
        raise
    except LtiException as exc:
        raise LaunchRefused(
            N_("The launch is not valid: %(reason)s"), "lti_invalid", reason=str(exc)[:200]
        ) from exc
    return launch.claims


# --- cookie-less continuation -------------------------------------------------------------


def park_launch(launch: ShuyuanMessageLaunch, state: str) -> str:
    """Keep a validated cookie-less launch until its page proves, with the binding kept in
    platform storage, that it runs in the browser that started the login."""
    pending = "pl-" + uuid.uuid4().hex
    launch_store().put(
        pending,
        {
            "state": state,
            "binding": launch.state_record["binding"],
            "platform_id": launch.platform.id,
            "deployment_pk": launch.deployment.id,
            "claims": claims_to_json(launch.claims),
        },
        PENDING_TTL,
        new=True,
    )
    return pending


def resume_launch(
    pending: str, state: str, binding: str
) -> tuple[LtiPlatform, LtiDeployment, LaunchClaims]:
    """The parked launch, consumed, if ``binding`` is the one the login put into this
    browser's platform storage for ``state``."""
    record = launch_store().take(pending) if pending.startswith("pl-") else None
    if record is None:
        raise LaunchRefused(
            N_("This launch expired or was already used: start it again from your course."),
            "lti_bad_state",
        )
    expected = record.get("binding") or ""
    if (
        not state
        or state != record["state"]
        or not binding
        or not hmac.compare_digest(binding_digest(binding), expected)
    ):
        raise LaunchRefused(
            N_("The launch state kept by your learning platform does not match."),
            "lti_state_mismatch",
        )
    platform = db.session.get(LtiPlatform, record["platform_id"])
    deployment = db.session.get(LtiDeployment, record["deployment_pk"])
    if platform is None or not platform.active or deployment is None or not deployment.approved:
        raise LaunchRefused(
            N_("This deployment is not approved."), "lti_deployment_not_approved", 403
        )
    return platform, deployment, claims_from_json(record["claims"])


# --- what a validated launch does ---------------------------------------------------------


@dataclass
class LaunchOutcome:
    user: User
    kind: str  # "resource", "course", "week", "deep_link", "home"
    target: dict
    context: LtiContext | None
    follow_up: list[tuple[str, tuple]] = field(default_factory=list)
    launch_id: str | None = None


def _bounded_int(value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise LaunchRefused(
            N_("The link's syllabus week is not valid."), "lti_bad_target"
        ) from None
    if not low <= number <= high:
        raise LaunchRefused(N_("The link's syllabus week is not valid."), "lti_bad_target")
    return number


def _content_key(claims: LaunchClaims) -> tuple[type, str] | None:
    """(model, content id) of what a resource link opens, as _target_of reads it."""
    if claims.message_type != "LtiResourceLinkRequest":
        return None
    custom = claims.custom
    if custom.get("resource"):
        return (Resource, custom["resource"]) if len(custom["resource"]) <= 64 else None
    if custom.get("course"):
        return (Course, custom["course"]) if len(custom["course"]) <= 64 else None
    return None


def _target_of(
    user: User, deployment: LtiDeployment, custom: dict[str, str], found=NOT_READ
) -> tuple[str, dict, Resource | Course | None]:
    """The content a resource link opens, checked against what the user may see through
    this deployment; ``found``: its published row (or None), if already read."""
    if custom.get("resource"):
        obj = _visible(user, deployment, Resource, custom["resource"], found)
        return "resource", {"content_id": obj.content_id, "title": obj.title}, obj
    if custom.get("course"):
        obj = _visible(user, deployment, Course, custom["course"], found)
        return "course", {"content_id": obj.content_id, "title": obj.title}, obj
    if custom.get("week") or custom.get("calendar"):
        calendar_id = _bounded_int(custom.get("calendar", ""), 1, MAX_ID)
        week = _bounded_int(custom.get("week", ""), 1, MAX_WEEK)
        return "week", {"calendar_id": calendar_id, "week": week}, None
    return "home", {}, None


def _not_visible() -> LaunchRefused:
    return LaunchRefused(
        N_("Your school's district cannot see the content this link opens."),
        "lti_not_visible",
        403,
    )


def _visible(user: User, deployment: LtiDeployment, model, content_id: str, found=NOT_READ):
    """The published version a link opens, if both the user and the deployment's
    organisation may see it: a user who also belongs to another district (she launched
    through its LMS too) must not open that district's content through this one."""
    if len(content_id) > 64:
        raise LaunchRefused(
            N_("The content this link opens no longer exists."), "lti_not_found", 404
        )
    if found is not NOT_READ and (found is None or isinstance(found, model)):
        obj = found  # read with the returning user (provisioning)
    else:
        # Tags, grades and the like are not needed to open the link: no eager loads
        # (two statements a launch); whatever reads them later loads them then.
        obj = db.session.execute(
            select(model)
            .options(lazyload("*"))
            .filter_by(content_id=content_id, state=State.PUBLISHED)
        ).scalar_one_or_none()
    if obj is None:
        exists = db.session.execute(
            select(model.id).filter_by(content_id=content_id).limit(1)
        ).first()
        if exists is None:
            raise LaunchRefused(
                N_("The content this link opens no longer exists."), "lti_not_found", 404
            )
        # SHARING HOOK (app/sharing): a shared item its publisher withdrew is said so.
        from app import sharing

        if sharing.withdrawal_notice(content_id) is not None:
            raise LaunchRefused(
                N_("The content this link opens was withdrawn by its publisher."),
                "lti_withdrawn",
                410,
            )
        raise _not_visible()
    if not catalog.can_view(user, obj) or not catalog.visible_to_organisation(
        obj, deployment.district_id, deployment.school_id
    ):
        raise _not_visible()
    return obj


def check_calendar(user: User, deployment: LtiDeployment, calendar_id: int, week: int) -> None:
    """The user may read the week, and the calendar belongs to the deployment's district."""
    try:
        calendar = curriculum.get_calendar(user, calendar_id)
        curriculum.lessons_for_week(user, calendar_id, week)
    except (NotFound, Forbidden) as exc:
        raise LaunchRefused(
            N_("Your school's district cannot see this syllabus week."), "lti_not_visible", 403
        ) from exc
    if calendar.district_id != deployment.district_id:
        raise LaunchRefused(
            N_("Your school's district cannot see this syllabus week."), "lti_not_visible", 403
        )


def complete_launch(
    platform: LtiPlatform, deployment: LtiDeployment, claims: LaunchClaims
) -> LaunchOutcome:
    """Provision the user, map the context, record the grade link and pick the target."""
    role = map_role(claims.roles)
    grades = claims.ags
    graded = (
        grades is not None
        and bool(grades.lineitem)
        and bool(claims.resource_link_id)
        and ags.SCOPE_SCORE in grades.scope
    )
    opens = _content_key(claims)
    # A returning user's context, membership, grade link and the content she opens are
    # read with her, in the statement that records her launch (PostgreSQL).
    user, ahead = provision_launch(
        platform,
        deployment,
        Person.from_claims(claims),
        role,
        keys=LaunchKeys(
            context_id=claims.context.id if claims.context else None,
            resource_link_id=claims.resource_link_id if graded and opens else None,
            content=opens,
        ),
    )
    context = map_context(platform, deployment, claims, user, role, ahead)
    follow_up: list[tuple[str, tuple]] = []
    if context is not None and context.memberships_url:
        period = current_app.config.get("LTI_ROSTER_SYNC_SECONDS", 86400)
        if (
            context.last_roster_sync_at is None
            or context.last_roster_sync_at < utcnow() - timedelta(seconds=period)
        ):
            # Claimed now so that concurrent launches do not all sync.
            context.last_roster_sync_at = utcnow()
            follow_up.append(("app.lti.services.nrps:sync_roster_job", (context.id,)))
    if claims.message_type == "LtiDeepLinkingRequest":
        if role != Role.TEACHER:
            raise LaunchRefused(
                N_("Only teachers can add Shuyuan content to a course."), "lti_forbidden", 403
            )
        settings = claims.deep_linking
        launch_id = "dl-" + uuid.uuid4().hex
        launch_store().put(
            launch_id,
            {
                "user": user.public_id,
                "platform_id": platform.id,
                "deployment_pk": deployment.id,
                "deployment_id": deployment.deployment_id,
                "settings": settings.as_dict() if settings else {},
            },
            current_app.config.get("LTI_DEEP_LINK_SECONDS", 3600),
            new=True,
        )
        db.session.flush()
        return LaunchOutcome(user, "deep_link", {}, context, follow_up, launch_id)
    if claims.message_type != "LtiResourceLinkRequest":
        raise LaunchRefused(N_("This kind of LTI message is not supported."), "lti_unsupported")
    kind, target, obj = _target_of(user, deployment, claims.custom, ahead.content)
    if kind == "week":
        check_calendar(user, deployment, target["calendar_id"], target["week"])
    if obj is not None and graded:
        ags.record_grade_link(
            platform,
            deployment,
            user,
            claims.sub,
            claims.resource_link_id,
            obj.content_id,
            grades.lineitem,
            grades.scope,
            link=ahead.link if ahead.link is not NOT_READ else ags.LOOK_UP,
        )
    if obj is not None and ahead.subscriptions is not NOT_READ:
        # SHARING HOOK (app/sharing): the usage counter's subscriptions, read with the user.
        from app import sharing

        districts, found = ahead.subscriptions
        sharing.usage_read_ahead(user, districts, obj.content_id, found)
    signals.send_learning_event(
        user,
        "launched",
        resource=obj if kind == "resource" else None,
        course=obj if kind == "course" else None,
        context={
            "platform": platform.issuer,
            "deployment": deployment.deployment_id,
            "lti_context": context.context_id if context else None,
            "class_id": context.class_id if context else None,
            "via": "lti",
        },
    )
    db.session.flush()
    return LaunchOutcome(user, kind, target, context, follow_up)
