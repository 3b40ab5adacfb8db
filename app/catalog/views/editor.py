"""The author's pages: her content, the new-content form, the editor and the
publishing buttons."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.catalog import services
from app.catalog.models import Course, Resource, State
from app.catalog.views.common import (
    bp,
    editor_url,
    flash_refusal,
    model_of,
    noun,
    page_arg,
    require_author,
    require_login,
    translated_fields,
)
from app.catalog.views.forms import check_content, content_form, empty_values, values_of
from app.errors import Conflict, Invalid
from app.i18n import translate_message


@bp.route("/me/content")
def my_content():
    user = require_author()
    return render_template(
        "catalog/my_content.html",
        courses=services.list_editable(user, Course, page_arg("cpage"), 50),
        resources=services.list_editable(user, Resource, page_arg("rpage"), 50),
    )


@bp.route("/me/<kind>/new", methods=["GET", "POST"])
def new_content(kind: str):
    model = model_of(kind)
    user = require_author()
    if request.method == "GET":
        return render_template(
            "catalog/content_form.html",
            model_name=kind,
            values=empty_values(model),
            errors={},
            obj=None,
        )
    values, data = content_form(model, creating=True)
    try:
        obj = services.create_content(user, model, check_content(model, data, creating=True))
    except Invalid as exc:
        return _form_error(kind, values, exc, obj=None)
    flash(_("Draft saved. Add the remaining parts, then publish."), "success")
    return redirect(editor_url(model, obj.content_id))


def _form_error(kind, values, exc: Invalid, obj):
    flash(_("Please correct the marked fields."), "error")
    errors = translated_fields(exc.fields)
    return render_template(
        "catalog/content_form.html",
        model_name=kind,
        values=values,
        errors=errors,
        obj=obj,
        message=translate_message(exc.message),
    ), 422


def _editor_context(user, model, content_id: str) -> dict:
    """Everything the editor page shows; 404 for content she cannot see, 403 if she
    may see it but not edit it."""
    versions = services.list_versions(user, model, content_id)
    working = services.get_working(user, model, content_id)
    states = {row.state for row in versions}
    context = {
        "obj": working,
        "versions": list(reversed(versions)),
        "has_published": State.PUBLISHED in states,
        "has_archived": State.ARCHIVED in states,
        "requires_review": working.district.requires_review
        and not (user.is_district_admin(working.district_id) or user.is_platform_admin),
    }
    if model is Course:
        query = (request.args.get("resource_q") or "").strip()[:200] or None
        context["resource_q"] = query
        # A short list for the form without JavaScript; the page's search picker asks
        # the JSON endpoint (GET /api/v1/me/resource-choices) as she types.
        context["choices"] = services.resource_choices(user, query, 20)
        item_ids = [
            i.resource_content_id
            for s in working.sections
            for i in s.items
            if i.resource_content_id
        ]
        titles = {
            cid: r.title
            for cid, r in services.resolve_resources(user, item_ids, drafts=True).items()
        }
        context["resource_titles"] = titles
    return context


def render_editor(user, model, content_id: str, status: int = 200, **forms):
    context = _editor_context(user, model, content_id)
    obj = context["obj"]
    if "values" not in forms:
        forms["values"] = values_of(obj)
    forms.setdefault("errors", {})
    forms.setdefault("sub_errors", {})
    forms.setdefault("sub_values", {})
    return render_template(
        "catalog/editor.html", model_name=noun(model), **context, **forms
    ), status


@bp.route("/me/<kind>/<content_id>/edit", methods=["GET", "POST"])
def edit_content(kind: str, content_id: str):
    model = model_of(kind)
    user = require_login()
    if request.method == "GET":
        return render_editor(user, model, content_id)
    working = services.get_working(user, model, content_id)
    values, data = content_form(model, creating=False)
    values["kind"] = working.kind
    try:
        services.update_content(user, model, content_id, check_content(model, data, creating=False))
    except Invalid as exc:
        flash(_("Please correct the marked fields."), "error")
        errors = translated_fields(exc.fields)
        return render_editor(user, model, content_id, 422, values=values, errors=errors)
    except Conflict as exc:
        flash_refusal(exc)
        return redirect(editor_url(model, content_id))
    flash(_("Changes saved to the draft."), "success")
    return redirect(editor_url(model, content_id))


WORKFLOW = {
    "submit": services.submit_content,
    "withdraw": services.withdraw_content,
    "archive": services.archive_content,
    "restore": services.restore_content,
    "discard": services.discard_draft,
    "delete": services.delete_content,
}


@bp.route("/me/<kind>/<content_id>/<action>", methods=["POST"])
def workflow(kind: str, content_id: str, action: str):
    model = model_of(kind)
    service = WORKFLOW.get(action)
    if service is None:
        abort(404)
    user = require_login()
    try:
        row = service(user, model, content_id)
    except (Conflict, Invalid) as exc:
        flash_refusal(exc, with_fields=True)
        return redirect(editor_url(model, content_id))
    if action == "delete":
        flash(_("Deleted, with all its versions."), "success")
        return redirect(url_for("catalog.my_content"))
    if action == "discard":
        flash(_("Draft discarded; the published version stays."), "success")
    elif action == "submit" and row.state == State.IN_REVIEW:
        flash(_("Sent to the district for review."), "success")
    else:
        flash(
            {
                "submit": _("Published as version %(v)s.", v=row.version),
                "withdraw": _("Taken back out of review; you can edit it again."),
                "archive": _("Archived: it no longer appears in the catalog."),
                "restore": _("Restored to the catalog."),
            }[action],
            "success",
        )
    return redirect(editor_url(model, content_id))
