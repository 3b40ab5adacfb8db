"""Reading the catalog (browse, course and resource pages) and enrolling."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from app.accounts.auth import actor
from app.catalog import services
from app.catalog.models import Course, Resource
from app.catalog.views.common import bp, flash_refusal, require_login
from app.common import cache
from app.errors import AppError, Conflict, Forbidden, Invalid

FILTER_KEYS = (*services.TEXT_FILTERS, "district", "sort")


def _filters_from_request(model) -> tuple[services.CatalogFilters, int]:
    args = {k: request.args.get(k)[:200] for k in FILTER_KEYS if request.args.get(k)}
    if "district" in args:
        try:
            args["district"] = int(args["district"])
        except ValueError:
            args.pop("district")
    if args.get("sort") not in (None, "newest", "oldest", "title"):
        args.pop("sort")
    try:
        page = max(1, min(int(request.args.get("page", 1)), 10_000))
    except ValueError:
        page = 1
    return services.CatalogFilters(**args), page


@bp.app_template_global()
def catalog_resource_filter_fields():
    """The form fields of the filters other features registered (escaped HTML)."""
    from markupsafe import Markup

    # Each part is rendered by a Jinja template (autoescaped), so it is markup already.
    parts = [extra.render(request.args) for extra in services.resource_filters()]
    return Markup("".join(parts))  # noqa: S704


def _active_filters(filters: services.CatalogFilters) -> bool:
    return filters.content_ids is not None or any(
        getattr(filters, key) for key in FILTER_KEYS if key not in ("sort",)
    )


def _with_resource_filters(user, filters: services.CatalogFilters) -> services.CatalogFilters:
    """Apply the filters other features registered (the curriculum's edition and chapter):
    each narrows the resources to a set of content ids."""
    from dataclasses import replace

    kept = None
    for extra in services.resource_filters():
        ids = extra.content_ids(user, request.args)
        if ids is not None:
            kept = set(ids) if kept is None else kept & set(ids)
    return filters if kept is None else replace(filters, content_ids=frozenset(kept))


def _facets(user, model, filters, fields) -> dict:
    """Counts per filter value, shown next to each choice."""
    return {field: services.facet_counts(user, model, filters, field) for field in fields}


def _browse_page(model, template: str, facet_fields: tuple[str, ...]):
    """One page of the published ``model`` rows, filtered from the query string.

    Anonymous visitors all see the same page: it is rendered once per query string and
    language and cached until the catalog changes (app/catalog/receivers.py).  Never for
    a logged-in user (her menu, name and CSRF token are in the page, and she sees more),
    nor when a message is waiting to be flashed or the page used the request's CSP nonce.
    """
    user = actor()
    if user is not None or session.get("_flashes"):
        return _render_browse_page(user, model, template, facet_fields)
    parts = ("browse", request.path, sorted(request.args.items(multi=True)), str(get_locale()))

    def produce() -> str | None:
        body = _render_browse_page(None, model, template, facet_fields)
        return None if g.get("_csp_nonce") else body

    body = cache.remember(services.CACHE_SCOPE, parts, produce)
    if body is None:  # a page with a nonce: rendered for this request only
        return _render_browse_page(None, model, template, facet_fields)
    return body


def _render_browse_page(user, model, template: str, facet_fields: tuple[str, ...]) -> str:
    from app.accounts.services import list_districts

    filters, page = _filters_from_request(model)
    if model is Resource:
        filters = _with_resource_filters(user, filters)
    result = services.list_published(user, model, filters, page, 24)
    return render_template(
        template,
        page=result,
        filters=filters,
        districts=list_districts(),
        filtered=_active_filters(filters),
        facets=_facets(user, model, filters, facet_fields),
    )


@bp.route("/")
def browse():
    return _browse_page(Course, "catalog/browse.html", ("kind", "category", "subject"))


@bp.route("/resources")
def browse_resources():
    return _browse_page(Resource, "catalog/resources.html", ("kind", "subject"))


@bp.route("/courses/<content_id>")
def course_detail(content_id: str):
    user = actor()
    course = services.get_content(user, Course, content_id, request.args.get("version"))
    item_ids = [
        item.resource_content_id
        for s in course.sections
        for item in s.items
        if item.resource_content_id
    ]
    can_edit = services.can_edit(user, course)
    # Her own preview lists the resources she has not published yet (not "not available").
    resources = services.resolve_resources(user, item_ids, drafts=can_edit)
    enrolment = services.enrolment_of(user, content_id)
    enrolments = (
        services.list_enrolments(user, content_id) if can_edit and course.kind == "extended" else []
    )
    return render_template(
        "catalog/course.html",
        course=course,
        resources=resources,
        enrolment=enrolment,
        position=services.waitlist_position(enrolment) if enrolment else None,
        seats=services.seats_of(content_id),
        can_edit=can_edit,
        enrolments=enrolments,
    )


@bp.route("/resources/<content_id>")
def resource_detail(content_id: str):
    user = actor()
    resource = services.get_content(user, Resource, content_id, request.args.get("version"))
    return render_template(
        "catalog/resource.html", resource=resource, can_edit=services.can_edit(user, resource)
    )


@bp.route("/courses/<content_id>/enrol", methods=["POST"])
def enrol(content_id: str):
    user = require_login()
    try:
        enrolment = services.enrol(user, content_id)
    except (Conflict, Invalid) as exc:
        flash_refusal(exc)
    else:
        if enrolment.status == "enrolled":
            flash(_("You are enrolled."), "success")
        else:
            flash(_("The course is full: you are on the waiting list."), "success")
    return redirect(url_for("catalog.course_detail", content_id=content_id))


@bp.route("/courses/<content_id>/leave", methods=["POST"])
def leave(content_id: str):
    user = require_login()
    try:
        services.leave(user, content_id)
    except AppError as exc:
        if isinstance(exc, Forbidden):
            raise
        flash_refusal(exc)
    else:
        flash(_("You left the course."), "success")
    return redirect(url_for("catalog.course_detail", content_id=content_id))


@bp.route("/me/enrolments")
def my_enrolments():
    user = require_login()
    rows = services.my_enrolments(user)
    positions = {e.id: services.waitlist_position(e) for e, _course in rows}
    return render_template("catalog/my_enrolments.html", rows=rows, positions=positions)
