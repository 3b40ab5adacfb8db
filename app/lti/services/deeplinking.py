"""Deep linking: the picker a teacher opens from the LMS (search, syllabus weeks) and the
signed response that adds the chosen content to her LMS course.  What the picker offers
and accepts is what the deployment's organisation may open (see launch._visible)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.accounts import services as accounts
from app.accounts.models import User
from app.catalog import services as catalog
from app.catalog.models import Course, Resource, State
from app.curriculum import services as curriculum
from app.curriculum.models import TeachingCalendar
from app.errors import Forbidden, Invalid, NotFound
from app.extensions import db
from app.lti.models import LtiDeployment, LtiPlatform
from app.lti.services.launch import MAX_ID, MAX_WEEK
from app.lti.store import launch_store
from app.lti.tool import registration_for
from app.search import services as search

GRADABLE_KINDS = {"exercise", "interactive"}


@dataclass(frozen=True)
class DeepLinkSession:
    """A teacher's content selection between the deep-linking launch and the response."""

    launch_id: str
    user: User
    platform_id: int
    deployment: LtiDeployment
    settings: dict


@dataclass(frozen=True)
class PickerItem:
    type: str  # "course" | "resource"
    content_id: str
    title: str
    kind: str


@dataclass(frozen=True)
class Syllabus:
    available: bool
    calendars: list[TeachingCalendar]
    lessons: list
    resources: list[Resource]


def deep_link_session(launch_id: str) -> DeepLinkSession:
    data = launch_store().get(launch_id) if launch_id and launch_id.startswith("dl-") else None
    if data is None:
        raise NotFound("This content selection has expired: start it again from your course.")
    user = accounts.get_user_by_public_id(data["user"])
    if user is None or not user.is_active:
        raise Forbidden("This account is disabled.")
    deployment = db.session.get(LtiDeployment, data["deployment_pk"])
    if deployment is None or not deployment.approved:
        raise Forbidden("This deployment is not approved.")
    return DeepLinkSession(launch_id, user, data["platform_id"], deployment, data["settings"])


def _org_visible(obj, deployment: LtiDeployment) -> bool:
    return catalog.visible_to_organisation(obj, deployment.district_id, deployment.school_id)


def search_content(session: DeepLinkSession, q: str | None, per_page: int = 20) -> list[PickerItem]:
    """Full-text search (any words), else the catalog's newest; only what the
    deployment's organisation may open."""
    user, deployment = session.user, session.deployment
    candidates: list[PickerItem] = []
    if q:
        result = search.search(user, q, sort="relevance", page=1, per_page=per_page)
        candidates = [PickerItem(h.type, h.content_id, h.title, h.kind) for h in result.items]
    else:
        filters = catalog.CatalogFilters(q=None)
        for model, name in ((Resource, "resource"), (Course, "course")):
            listing = catalog.list_published(user, model, filters, 1, per_page)
            candidates += [
                PickerItem(name, obj.content_id, obj.title, obj.kind) for obj in listing.items
            ]
    visible = set()
    for model, name in ((Resource, "resource"), (Course, "course")):
        ids = [c.content_id for c in candidates if c.type == name]
        if ids:
            rows = db.session.execute(
                select(model).where(model.content_id.in_(ids), model.state == State.PUBLISHED)
            ).scalars()
            visible |= {(name, r.content_id) for r in rows if _org_visible(r, deployment)}
    return [c for c in candidates if (c.type, c.content_id) in visible]


def _calendars(session: DeepLinkSession) -> list[TeachingCalendar]:
    district_id = session.deployment.district_id
    return [c for c in curriculum.list_calendars(session.user) if c.district_id == district_id]


def _calendar(session: DeepLinkSession, calendar_id: int, week: int) -> TeachingCalendar:
    if not (1 <= calendar_id <= MAX_ID and 1 <= week <= MAX_WEEK):
        raise Invalid("Unknown syllabus week.", fields={"week": [f"1 to {MAX_WEEK}."]})
    for calendar in _calendars(session):
        if calendar.id == calendar_id:
            return calendar
    raise Invalid("Unknown syllabus week.", fields={"calendar": ["Not available here."]})


def browse_curriculum(
    session: DeepLinkSession, calendar_id: int | None, week: int | None
) -> Syllabus:
    lessons, resources = [], []
    if calendar_id and week:
        _calendar(session, calendar_id, week)
        lessons = curriculum.lessons_for_week(session.user, calendar_id, week)
        resources = [
            r
            for r in curriculum.resources_for_week(session.user, calendar_id, week)
            if _org_visible(r, session.deployment)
        ]
    return Syllabus(True, _calendars(session), lessons, resources)


def _line_item(title: str, content_id: str):
    from pylti1p3.lineitem import LineItem

    return (
        LineItem()
        .set_label(title[:100])
        .set_score_maximum(100)
        .set_resource_id(content_id)
        .set_tag("shuyuan")
    )


def build_deep_link_items(session: DeepLinkSession, selection: list[str], launch_url: str) -> list:
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
            resource_item(_selected(session, Resource, rest))
        elif kind == "course":
            course = _selected(session, Course, rest)
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
            _calendar(session, calendar_id, week_number)
            if kind == "weekpage":
                items.append(
                    DeepLinkResource()
                    .set_url(launch_url)
                    .set_title(f"Week {week_number}")
                    .set_custom_params({"calendar": str(calendar_id), "week": str(week_number)})
                )
                continue
            for resource in curriculum.resources_for_week(session.user, calendar_id, week_number):
                if _org_visible(resource, session.deployment):
                    resource_item(
                        resource, {"calendar": str(calendar_id), "week": str(week_number)}
                    )
        else:
            raise Invalid("Unknown selection.", fields={"items": [entry]})
    if not items:
        raise Invalid("Choose at least one item.", fields={"items": ["Nothing selected."]})
    return items


def _selected(session: DeepLinkSession, model, content_id: str):
    try:
        obj = catalog.get_content(session.user, model, content_id)
    except NotFound:
        obj = None
    if obj is None or not _org_visible(obj, session.deployment):
        raise Invalid("Unknown selection.", fields={"items": [content_id[:100]]})
    return obj


def deep_link_response(launch_id: str, selection: list[str], launch_url: str) -> tuple[str, str]:
    """Sign the deep linking response; returns (return URL, JWT).  The selection session
    is consumed: a response is sent once."""
    from pylti1p3.deep_link import DeepLink

    session = deep_link_session(launch_id)
    settings = session.settings
    items = build_deep_link_items(session, selection, launch_url)
    accept_types = settings.get("accept_types") or ["ltiResourceLink"]
    if "ltiResourceLink" not in accept_types:
        raise Invalid(
            "The platform does not accept LTI links here.", fields={"items": ["Not accepted."]}
        )
    if len(items) > 1 and settings.get("accept_multiple") is False:
        raise Invalid("The platform accepts only one item here.", fields={"items": ["Choose one."]})
    if not settings.get("deep_link_return_url"):
        raise Invalid("The platform sent no return URL.")
    platform = db.session.get(LtiPlatform, session.platform_id)
    if platform is None or not platform.active:
        raise NotFound("The platform registration is gone.")
    # The signing key first: its first creation commits on its own connection, which
    # must not wait behind this request's own write (SQLite has one writer).
    registration = registration_for(platform)
    if launch_store().take(launch_id) is None:
        raise NotFound("This content selection was already sent.")
    deep_link = DeepLink(registration, session.deployment.deployment_id, settings)
    return settings["deep_link_return_url"], deep_link.get_response_jwt(items)
