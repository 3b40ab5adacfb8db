"""Catalog pages.  Thin: parse the form, call a service, commit, redirect with a flash.

Forms that fail validation are shown again, filled in, with the errors next to their
fields and HTTP 422; nothing is stored.  Authorisation is the services' business: a
``Forbidden`` or ``NotFound`` from them becomes the error page.
"""

from __future__ import annotations

from datetime import date, datetime, time

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from app.accounts.auth import actor
from app.catalog import schemas, services
from app.catalog.models import Course, Resource, State
from app.common.events import commit
from app.core.views import translate_message
from app.errors import AppError, Conflict, Forbidden, Invalid, Unauthorized

bp = Blueprint("catalog", __name__)

FILTER_KEYS = (
    "kind",
    "subject",
    "grade",
    "district",
    "language",
    "licence",
    "tag",
    "category",
    "edition",
    "q",
    "sort",
)
MODELS = {"courses": Course, "resources": Resource}


# --- reading ------------------------------------------------------------------------------


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


def _active_filters(filters: services.CatalogFilters) -> bool:
    return any(getattr(filters, key) for key in FILTER_KEYS if key not in ("sort",))


def _facets(user, model, filters, fields) -> dict:
    """Counts per filter value, shown next to each choice."""
    return {field: services.facet_counts(user, model, filters, field) for field in fields}


@bp.route("/")
def browse():
    from app.accounts.services import list_districts

    filters, page = _filters_from_request(Course)
    user = actor()
    result = services.list_published(user, Course, filters, page, 24)
    return render_template(
        "catalog/browse.html",
        page=result,
        filters=filters,
        districts=list_districts(),
        filtered=_active_filters(filters),
        facets=_facets(user, Course, filters, ("kind", "category", "subject")),
    )


@bp.route("/resources")
def browse_resources():
    from app.accounts.services import list_districts

    filters, page = _filters_from_request(Resource)
    user = actor()
    result = services.list_published(user, Resource, filters, page, 24)
    return render_template(
        "catalog/resources.html",
        page=result,
        filters=filters,
        districts=list_districts(),
        filtered=_active_filters(filters),
        facets=_facets(user, Resource, filters, ("kind", "subject")),
    )


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
    resources = services.resolve_resources(user, item_ids)
    enrolment = services.enrolment_of(user, content_id)
    can_edit = services.can_edit(user, course)
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


# --- enrolment ----------------------------------------------------------------------------


@bp.route("/courses/<content_id>/enrol", methods=["POST"])
def enrol(content_id: str):
    user = _require_login()
    try:
        enrolment = services.enrol(user, content_id)
        commit()
    except (Conflict, Invalid) as exc:
        flash(translate_message(exc.message), "error")
    else:
        if enrolment.status == "enrolled":
            flash(_("You are enrolled."), "success")
        else:
            flash(_("The course is full: you are on the waiting list."), "success")
    return redirect(url_for("catalog.course_detail", content_id=content_id))


@bp.route("/courses/<content_id>/leave", methods=["POST"])
def leave(content_id: str):
    user = _require_login()
    try:
        services.leave(user, content_id)
        commit()
    except AppError as exc:
        if isinstance(exc, Forbidden):
            raise
        flash(translate_message(exc.message), "error")
    else:
        flash(_("You left the course."), "success")
    return redirect(url_for("catalog.course_detail", content_id=content_id))


@bp.route("/me/enrolments")
def my_enrolments():
    user = _require_login()
    rows = services.my_enrolments(user)
    positions = {e.id: services.waitlist_position(e) for e, _course in rows}
    return render_template("catalog/my_enrolments.html", rows=rows, positions=positions)


# --- form parsing ---------------------------------------------------------------------------

COMMON_FIELDS = (
    "title",
    "summary",
    "description_html",
    "language",
    "licence",
    "visibility",
    "subject",
)
COURSE_FIELDS = COMMON_FIELDS + ("category", "capacity", "grade", "edition")
RESOURCE_FIELDS = COMMON_FIELDS + ("url",)
OPTIONAL = {"subject", "category", "grade", "edition", "url", "capacity"}
TRANSLATED = ("title", "summary", "description_html")
# How marshmallow names a field -> the form field it belongs to.
FORM_NAMES = {"description_html": "description_html"}


def _text(name: str, limit: int = 100_000) -> str:
    return (request.form.get(name) or "").strip()[:limit]


def _split_tags(raw: str) -> list[str]:
    for separator in ("，", "、", ";", "；"):
        raw = raw.replace(separator, ",")
    return [tag.strip() for tag in raw.split(",") if tag.strip()]


def _content_form(model, creating: bool) -> tuple[dict, dict]:
    """The submitted content form as (values to show again, data for the service)."""
    names = COURSE_FIELDS if model is Course else RESOURCE_FIELDS
    values = {name: _text(name) for name in names}
    values["tags"] = _text("tags", 2000)
    for field in TRANSLATED:
        values[f"{field}_en"] = _text(f"{field}_en")
    if model is Course:
        values["enrolment_open"] = bool(request.form.get("enrolment_open"))
    else:
        values["grades"] = [g[:8] for g in request.form.getlist("grades")][:12]
    if creating:
        values["kind"] = _text("kind", 20)

    # An edit form sends only the fields of its kind; the others stay as they are.
    data: dict = {name: values[name] for name in names if creating or name in request.form}
    for name in OPTIONAL & set(data):
        if data[name] == "":
            data[name] = None
    data["tags"] = _split_tags(values["tags"])
    english = {field: values[f"{field}_en"] for field in TRANSLATED if values[f"{field}_en"]}
    data["translations"] = {"en": english} if english else {}
    if model is Course:
        if creating or "capacity" in request.form:
            data["enrolment_open"] = values["enrolment_open"]
        kind = values.get("kind") if creating else None
        if kind == "curriculum":
            data.update(category=None, capacity=None)
        elif kind == "extended":
            data.update(grade=None, edition=None)
    else:
        data["grades"] = values["grades"]
    if creating:
        data["kind"] = values["kind"]
    return values, data


def _flatten_errors(messages: dict) -> dict[str, list[str]]:
    """Marshmallow's nested messages -> {form field: [messages]}."""
    errors: dict[str, list[str]] = {}
    for name, value in messages.items():
        if name == "translations" and isinstance(value, dict):
            for lang_messages in value.values():
                inner = (
                    lang_messages.get("value", lang_messages)
                    if isinstance(lang_messages, dict)
                    else {}
                )
                for field, field_messages in (inner or {}).items():
                    errors[f"{field}_en"] = _as_list(field_messages)
            continue
        if isinstance(value, dict):  # list fields: {index: [messages]}
            flat = [m for inner in value.values() for m in _as_list(inner)]
            errors[name] = flat
        else:
            errors[name] = _as_list(value)
    return errors


def _as_list(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [m for inner in value.values() for m in _as_list(inner)]
    return [str(m) for m in value]


def _validated(schema, data: dict, partial: bool = False) -> dict:
    """Check the data with the API's input schema, so pages and API accept the same."""
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise Invalid(
            "The submitted data is not valid.", fields=_flatten_errors(exc.messages)
        ) from None


def _capacity(data: dict, errors: dict) -> None:
    if "capacity" not in data:
        return
    raw = data["capacity"]
    if raw in (None, ""):
        data["capacity"] = None
        return
    try:
        data["capacity"] = int(raw)
    except (TypeError, ValueError):
        errors["capacity"] = [_("Enter a whole number.")]


def _check_content(model, data: dict, creating: bool) -> dict:
    """Every field error at once: the page's own checks and the API's input schema."""
    errors: dict = {}
    if model is Course:
        _capacity(data, errors)
        if errors:
            data = {k: v for k, v in data.items() if k != "capacity"}
    if model is Course:
        schema = schemas.CourseCreateSchema() if creating else schemas.CourseUpdateSchema()
    else:
        schema = schemas.ResourceCreateSchema() if creating else schemas.ResourceUpdateSchema()
    try:
        loaded = _validated(schema, data, partial=not creating)
    except Invalid as exc:
        errors = {**exc.fields, **errors}
    if errors:
        raise Invalid("The submitted data is not valid.", fields=errors)
    return loaded


def _require_login():
    user = actor()
    if user is None:
        raise Unauthorized("Log in first.")
    return user


def _require_author():
    user = _require_login()
    if not (user.is_teacher or user.is_district_admin() or user.is_platform_admin):
        raise Forbidden("Only teachers and administrators can create content.")
    return user


def _noun(model) -> str:
    return "courses" if model is Course else "resources"


def _editor_url(model, content_id: str, anchor: str | None = None) -> str:
    extra = {"_anchor": anchor} if anchor else {}
    return url_for("catalog.edit_content", kind=_noun(model), content_id=content_id, **extra)


def _model(kind: str):
    model = MODELS.get(kind)
    if model is None:
        abort(404)
    return model


def _empty_values(model) -> dict:
    values = {
        "language": "zh",
        "licence": "CC-BY-4.0",
        "visibility": "school",
        "tags": "",
        "enrolment_open": True,
        "grades": [],
    }
    values["kind"] = "extended" if model is Course else "document"
    return values


def _values_of(obj) -> dict:
    """A stored course or resource as form values."""
    model = type(obj)
    names = COURSE_FIELDS if model is Course else RESOURCE_FIELDS
    values = {name: getattr(obj, name) for name in names}
    values = {k: ("" if v is None else v) for k, v in values.items()}
    values["kind"] = obj.kind
    values["tags"] = ", ".join(t.name for t in obj.tags)
    english = (obj.translations or {}).get("en", {})
    for field in TRANSLATED:
        values[f"{field}_en"] = english.get(field, "")
    if model is Course:
        values["enrolment_open"] = obj.enrolment_open
    else:
        values["grades"] = obj.grades
    return values


# --- my content -----------------------------------------------------------------------------


@bp.route("/me/content")
def my_content():
    user = _require_author()
    return render_template(
        "catalog/my_content.html",
        courses=services.list_editable(user, Course, _page_arg("cpage"), 50),
        resources=services.list_editable(user, Resource, _page_arg("rpage"), 50),
    )


def _page_arg(name: str) -> int:
    try:
        return max(1, min(int(request.args.get(name, 1)), 10_000))
    except ValueError:
        return 1


@bp.route("/me/<kind>/new", methods=["GET", "POST"])
def new_content(kind: str):
    model = _model(kind)
    user = _require_author()
    if request.method == "GET":
        return render_template(
            "catalog/content_form.html",
            model_name=kind,
            values=_empty_values(model),
            errors={},
            obj=None,
        )
    values, data = _content_form(model, creating=True)
    try:
        obj = services.create_content(user, model, _check_content(model, data, creating=True))
        commit()
    except Invalid as exc:
        return _form_error(kind, values, exc, obj=None)
    flash(_("Draft saved. Add the remaining parts, then publish."), "success")
    return redirect(_editor_url(model, obj.content_id))


def _form_error(kind, values, exc: Invalid, obj):
    flash(_("Please correct the marked fields."), "error")
    errors = {
        name: [translate_message(m) for m in _as_list(messages)]
        for name, messages in exc.fields.items()
    }
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
    if not services.can_edit(user, versions[-1]):
        raise Forbidden("Only the owner or her district admin can edit this.")
    working = services.get_content(user, model, content_id, "latest")
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
        own = services.list_editable(user, Resource, 1, 100).items
        query = (request.args.get("resource_q") or "").strip()[:200] or None
        public = services.list_published(
            user, Resource, services.CatalogFilters(sort="title", q=query), 1, 100
        ).items
        context["resource_q"] = query
        seen = {r.content_id for r in own}
        context["own_resources"] = own
        context["other_resources"] = [r for r in public if r.content_id not in seen]
        item_ids = [
            i.resource_content_id
            for s in working.sections
            for i in s.items
            if i.resource_content_id
        ]
        titles = {r.content_id: r.title for r in own}
        titles.update(
            {cid: r.title for cid, r in services.resolve_resources(user, item_ids).items()}
        )
        context["resource_titles"] = titles
    return context


def _render_editor(user, model, content_id: str, status: int = 200, **forms):
    context = _editor_context(user, model, content_id)
    obj = context["obj"]
    if "values" not in forms:
        forms["values"] = _values_of(obj)
    forms.setdefault("errors", {})
    forms.setdefault("sub_errors", {})
    forms.setdefault("sub_values", {})
    return render_template(
        "catalog/editor.html", model_name=_noun(model), **context, **forms
    ), status


@bp.route("/me/<kind>/<content_id>/edit", methods=["GET", "POST"])
def edit_content(kind: str, content_id: str):
    model = _model(kind)
    user = _require_login()
    if request.method == "GET":
        return _render_editor(user, model, content_id)
    working = _working_row(user, model, content_id)
    values, data = _content_form(model, creating=False)
    values["kind"] = working.kind
    try:
        services.update_content(
            user, model, content_id, _check_content(model, data, creating=False)
        )
        commit()
    except Invalid as exc:
        flash(_("Please correct the marked fields."), "error")
        errors = {
            name: [translate_message(m) for m in _as_list(msgs)]
            for name, msgs in exc.fields.items()
        }
        return _render_editor(user, model, content_id, 422, values=values, errors=errors)
    except Conflict as exc:
        flash(translate_message(exc.message), "error")
        return redirect(_editor_url(model, content_id))
    flash(_("Changes saved to the draft."), "success")
    return redirect(_editor_url(model, content_id))


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
    model = _model(kind)
    service = WORKFLOW.get(action)
    if service is None:
        abort(404)
    user = _require_login()
    try:
        row = service(user, model, content_id)
        commit()
    except (Conflict, Invalid) as exc:
        message = translate_message(exc.message)
        if exc.fields:
            details = "; ".join(
                translate_message(m) for msgs in exc.fields.values() for m in _as_list(msgs)
            )
            message = f"{message} {details}"
        flash(message, "error")
        return redirect(_editor_url(model, content_id))
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
    return redirect(_editor_url(model, content_id))


# --- course parts: sessions, sections, items ------------------------------------------------


def _sessions_of(course) -> list[dict]:
    return [
        {
            "starts_at": s.starts_at,
            "ends_at": s.ends_at,
            "place": s.place,
            "online_url": s.online_url,
            "note": s.note,
        }
        for s in course.sessions
    ]


def _sections_of(course) -> list[dict]:
    return [
        {
            "title": s.title,
            "summary": s.summary,
            "items": [
                {"title": i.title, "resource_id": i.resource_content_id, "item_key": i.item_key}
                for i in s.items
            ],
        }
        for s in course.sections
    ]


def _working_row(user, model, content_id: str):
    """The row an editor works on: 404 for content she cannot see, 403 if she may see
    it but not edit it."""
    versions = services.list_versions(user, model, content_id)
    if not services.can_edit(user, versions[-1]):
        raise Forbidden("Only the owner or her district admin can edit this.")
    return services.get_content(user, model, content_id, "latest")


def _working_course(user, content_id: str):
    return _working_row(user, Course, content_id)


def _save_parts(
    user, content_id: str, data: dict, form: str, values: dict, ok_message: str, anchor: str
):
    try:
        services.update_content(user, Course, content_id, data)
        commit()
    except Invalid as exc:
        fields = {
            name: [translate_message(m) for m in _as_list(msgs)]
            for name, msgs in exc.fields.items()
        }
        if "sections" in fields:
            fields.setdefault("resource_id", []).extend(fields.pop("sections"))
        flash(_("Please correct the marked fields."), "error")
        return _render_editor(
            user, Course, content_id, 422, sub_errors={form: fields}, sub_values={form: values}
        )
    except Conflict as exc:
        flash(translate_message(exc.message), "error")
        return redirect(_editor_url(Course, content_id, anchor))
    flash(ok_message, "success")
    return redirect(_editor_url(Course, content_id, anchor))


def _parse_session() -> tuple[dict, dict, dict]:
    values = {
        name: _text(name, 2100) for name in ("date", "start", "end", "place", "online_url", "note")
    }
    errors: dict = {}
    day = start = end = None
    try:
        day = date.fromisoformat(values["date"])
    except ValueError:
        errors["date"] = [_("Enter a date like 2026-09-01.")]
    for name in ("start", "end"):
        try:
            parsed = time.fromisoformat(values[name])
        except ValueError:
            errors[name] = [_("Enter a time like 15:30.")]
        else:
            if name == "start":
                start = parsed
            else:
                end = parsed
    if not values["place"] and not values["online_url"]:
        errors["place"] = [_("Give a place or an online address.")]
    session = {
        "place": values["place"] or None,
        "online_url": values["online_url"] or None,
        "note": values["note"] or None,
    }
    if not errors:
        session["starts_at"] = datetime.combine(day, start)
        session["ends_at"] = datetime.combine(day, end)
        try:
            loaded = schemas.SessionInSchema().load(
                {
                    **session,
                    "starts_at": session["starts_at"].isoformat(),
                    "ends_at": session["ends_at"].isoformat(),
                }
            )
        except ValidationError as exc:
            flat = _flatten_errors(exc.messages)
            if "ends_at" in flat:
                flat["end"] = [_("The end must be after the start.")]
                flat.pop("ends_at")
            errors.update({k: [translate_message(m) for m in v] for k, v in flat.items()})
        else:
            session = loaded
    return values, session, errors


@bp.route("/me/courses/<content_id>/sessions", methods=["POST"])
def add_session(content_id: str):
    user = _require_login()
    course = _working_course(user, content_id)
    values, session, errors = _parse_session()
    if errors:
        flash(_("Please correct the marked fields."), "error")
        return _render_editor(
            user,
            Course,
            content_id,
            422,
            sub_errors={"session": errors},
            sub_values={"session": values},
        )
    sessions = sorted(_sessions_of(course) + [session], key=lambda s: s["starts_at"])
    return _save_parts(
        user, content_id, {"sessions": sessions}, "session", values, _("Session added."), "sessions"
    )


@bp.route("/me/courses/<content_id>/sessions/<int:index>/delete", methods=["POST"])
def remove_session(content_id: str, index: int):
    user = _require_login()
    sessions = _sessions_of(_working_course(user, content_id))
    if not 0 <= index < len(sessions):
        abort(404)
    del sessions[index]
    return _save_parts(
        user, content_id, {"sessions": sessions}, "session", {}, _("Session removed."), "sessions"
    )


def _section_values() -> tuple[dict, dict]:
    values = {"title": _text("title", 1000), "summary": _text("summary", 5000)}
    errors = {}
    if not values["title"]:
        errors["title"] = [_("A title is required.")]
    elif len(values["title"]) > 200:
        errors["title"] = [_("At most %(n)s characters.", n=200)]
    if len(values["summary"]) > 1000:
        errors["summary"] = [_("At most %(n)s characters.", n=1000)]
    return values, errors


@bp.route("/me/courses/<content_id>/sections", methods=["POST"])
def add_section(content_id: str):
    user = _require_login()
    course = _working_course(user, content_id)
    values, errors = _section_values()
    if errors:
        flash(_("Please correct the marked fields."), "error")
        return _render_editor(
            user,
            Course,
            content_id,
            422,
            sub_errors={"section": errors},
            sub_values={"section": values},
        )
    sections = _sections_of(course) + [
        {"title": values["title"], "summary": values["summary"] or None, "items": []}
    ]
    return _save_parts(
        user,
        content_id,
        {"sections": sections},
        "section",
        values,
        _("Section added."),
        "sections-list",
    )


def _section_index(sections: list, index: int) -> None:
    if not 0 <= index < len(sections):
        abort(404)


@bp.route("/me/courses/<content_id>/sections/<int:index>/rename", methods=["POST"])
def rename_section(content_id: str, index: int):
    user = _require_login()
    sections = _sections_of(_working_course(user, content_id))
    _section_index(sections, index)
    values, errors = _section_values()
    form = f"section-{index}"
    if errors:
        flash(_("Please correct the marked fields."), "error")
        return _render_editor(
            user, Course, content_id, 422, sub_errors={form: errors}, sub_values={form: values}
        )
    sections[index].update(title=values["title"], summary=values["summary"] or None)
    return _save_parts(
        user,
        content_id,
        {"sections": sections},
        form,
        values,
        _("Section renamed."),
        f"section-{index}",
    )


@bp.route("/me/courses/<content_id>/sections/<int:index>/move", methods=["POST"])
def move_section(content_id: str, index: int):
    user = _require_login()
    sections = _sections_of(_working_course(user, content_id))
    _section_index(sections, index)
    target = index - 1 if request.form.get("direction") == "up" else index + 1
    if 0 <= target < len(sections):
        sections[index], sections[target] = sections[target], sections[index]
    else:
        target = index
    return _save_parts(
        user,
        content_id,
        {"sections": sections},
        "section",
        {},
        _("Section moved."),
        f"section-{target}",
    )


@bp.route("/me/courses/<content_id>/sections/<int:index>/delete", methods=["POST"])
def remove_section(content_id: str, index: int):
    user = _require_login()
    sections = _sections_of(_working_course(user, content_id))
    _section_index(sections, index)
    del sections[index]
    return _save_parts(
        user,
        content_id,
        {"sections": sections},
        "section",
        {},
        _("Section removed."),
        "sections-list",
    )


@bp.route("/me/courses/<content_id>/sections/<int:index>/items", methods=["POST"])
def add_item(content_id: str, index: int):
    user = _require_login()
    sections = _sections_of(_working_course(user, content_id))
    _section_index(sections, index)
    values = {"resource_id": _text("resource_id", 100), "title": _text("title", 1000)}
    form = f"item-{index}"
    errors = {}
    if len(values["resource_id"]) != 36:
        errors["resource_id"] = [_("Choose a resource.")]
    if len(values["title"]) > 200:
        errors["title"] = [_("At most %(n)s characters.", n=200)]
    if errors:
        flash(_("Please correct the marked fields."), "error")
        return _render_editor(
            user, Course, content_id, 422, sub_errors={form: errors}, sub_values={form: values}
        )
    sections[index]["items"].append(
        {"resource_id": values["resource_id"], "title": values["title"] or None}
    )
    return _save_parts(
        user,
        content_id,
        {"sections": sections},
        form,
        values,
        _("Resource added."),
        f"section-{index}",
    )


@bp.route("/me/courses/<content_id>/sections/<int:index>/items/<int:item>/delete", methods=["POST"])
def remove_item(content_id: str, index: int, item: int):
    user = _require_login()
    sections = _sections_of(_working_course(user, content_id))
    _section_index(sections, index)
    if not 0 <= item < len(sections[index]["items"]):
        abort(404)
    del sections[index]["items"][item]
    return _save_parts(
        user,
        content_id,
        {"sections": sections},
        f"item-{index}",
        {},
        _("Item removed."),
        f"section-{index}",
    )


# --- district review ------------------------------------------------------------------------


@bp.route("/reviews")
def review_queue():
    from app.accounts.services import list_districts

    user = _require_login()
    queue = services.list_review_queue(user)
    districts = [
        d for d in list_districts() if user.is_platform_admin or user.is_district_admin(d.id)
    ]
    return render_template("catalog/reviews.html", queue=queue, districts=districts)


@bp.route("/reviews/<kind>/<content_id>/<decision>", methods=["POST"])
def review_decision(kind: str, content_id: str, decision: str):
    model = _model(kind)
    user = _require_login()
    if decision not in ("approve", "reject"):
        abort(404)
    note = _text("note", 2000)
    if decision == "reject":
        if not note:
            flash(_("Write a note telling the author what to change."), "error")
            return redirect(url_for("catalog.review_queue"))
        if len(note) > 1000:
            flash(_("The note may have at most %(n)s characters.", n=1000), "error")
            return redirect(url_for("catalog.review_queue"))
    try:
        if decision == "approve":
            row = services.approve_content(user, model, content_id)
        else:
            row = services.reject_content(user, model, content_id, note)
        commit()
    except Conflict as exc:
        flash(translate_message(exc.message), "error")
    else:
        if decision == "approve":
            flash(_("“%(title)s” is published.", title=row.title), "success")
        else:
            flash(
                _("“%(title)s” went back to its author with your note.", title=row.title), "success"
            )
    return redirect(url_for("catalog.review_queue"))


@bp.route("/reviews/districts/<int:district_id>", methods=["POST"])
def district_review_setting(district_id: int):
    from app.accounts.services import set_district_review

    user = _require_login()
    district = set_district_review(user, district_id, request.form.get("requires_review") == "1")
    commit()
    if district.requires_review:
        flash(_("Publications in this district now need an admin's approval."), "success")
    else:
        flash(_("Teachers in this district now publish without review."), "success")
    return redirect(url_for("catalog.review_queue"))
