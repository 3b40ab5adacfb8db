"""Catalog pages.  Thin: parse the request, call a service, render."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.accounts.auth import actor
from app.catalog import services
from app.catalog.models import Course, Resource
from app.common.events import commit
from app.errors import AppError

bp = Blueprint("catalog", __name__)

FILTER_KEYS = ("kind", "subject", "grade", "district", "language", "licence", "tag", "category", "edition", "q", "sort")


def _filters_from_request(model) -> tuple[services.CatalogFilters, int]:
    args = {k: request.args.get(k) for k in FILTER_KEYS if request.args.get(k)}
    if "district" in args:
        try:
            args["district"] = int(args["district"])
        except ValueError:
            args.pop("district")
    try:
        page = max(1, min(int(request.args.get("page", 1)), 10_000))
    except ValueError:
        page = 1
    return services.CatalogFilters(**args), page


@bp.route("/")
def browse():
    filters, page = _filters_from_request(Course)
    result = services.list_published(actor(), Course, filters, page, 24)
    from app.accounts.services import list_districts

    return render_template("catalog/browse.html", page=result, filters=filters, districts=list_districts())


@bp.route("/resources")
def browse_resources():
    filters, page = _filters_from_request(Resource)
    result = services.list_published(actor(), Resource, filters, page, 24)
    from app.accounts.services import list_districts

    return render_template("catalog/resources.html", page=result, filters=filters, districts=list_districts())


@bp.route("/courses/<content_id>")
def course_detail(content_id: str):
    user = actor()
    course = services.get_content(user, Course, content_id, request.args.get("version"))
    item_ids = [item.resource_content_id for s in course.sections for item in s.items if item.resource_content_id]
    resources = services.resolve_resources(user, item_ids)
    enrolment = services.enrolment_of(user, content_id)
    return render_template(
        "catalog/course.html", course=course, resources=resources, enrolment=enrolment,
        position=services.waitlist_position(enrolment) if enrolment else None,
        seats=services.seats_of(content_id), can_edit=services.can_edit(user, course),
    )


@bp.route("/resources/<content_id>")
def resource_detail(content_id: str):
    user = actor()
    resource = services.get_content(user, Resource, content_id, request.args.get("version"))
    return render_template("catalog/resource.html", resource=resource, can_edit=services.can_edit(user, resource))


@bp.route("/courses/<content_id>/enrol", methods=["POST"])
def enrol(content_id: str):
    try:
        enrolment = services.enrol(actor(), content_id)
        commit()
    except AppError as exc:
        flash(exc.message, "error")
    else:
        if enrolment.status == "enrolled":
            flash(_("You are enrolled."), "success")
        else:
            flash(_("The course is full: you are on the waiting list."), "success")
    return redirect(url_for("catalog.course_detail", content_id=content_id))


@bp.route("/courses/<content_id>/leave", methods=["POST"])
def leave(content_id: str):
    try:
        services.leave(actor(), content_id)
        commit()
    except AppError as exc:
        flash(exc.message, "error")
    else:
        flash(_("You left the course."), "success")
    return redirect(url_for("catalog.course_detail", content_id=content_id))


@bp.route("/me/enrolments")
def my_enrolments():
    return render_template("catalog/my_enrolments.html", rows=services.my_enrolments(actor()))


@bp.route("/me/content")
def my_content():
    user = actor()
    return render_template(
        "catalog/my_content.html",
        courses=services.list_editable(user, Course, 1, 100),
        resources=services.list_editable(user, Resource, 1, 100),
    )


@bp.route("/reviews")
def review_queue():
    return render_template("catalog/reviews.html", queue=services.list_review_queue(actor()))
