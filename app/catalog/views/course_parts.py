"""The editor's forms for a course's sessions, sections and items: each posts one change,
made by the same service functions the API uses (app.catalog.services.structure)."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, request
from flask_babel import gettext as _

from app.catalog import services
from app.catalog.models import Course
from app.catalog.views.common import (
    bp,
    editor_url,
    flash_refusal,
    require_login,
    translated_fields,
)
from app.catalog.views.editor import render_editor
from app.catalog.views.forms import item_form, parse_session, section_form
from app.errors import Conflict, Invalid


def _refused(content_id: str, form: str, values: dict, errors: dict):
    flash(_("Please correct the marked fields."), "error")
    return render_editor(
        require_login(),
        Course,
        content_id,
        422,
        sub_errors={form: errors},
        sub_values={form: values},
    )


def _change(
    content_id: str,
    change: Callable[[], object],
    ok_message: str,
    anchor: str,
    form: str = "",
    values: dict | None = None,
):
    """Run one structure change; bad data shows the editor again with the errors next
    to the form that sent it, a conflict goes back to the editor with a message."""
    try:
        change()
    except Invalid as exc:
        return _refused(content_id, form, values or {}, translated_fields(exc.fields))
    except Conflict as exc:
        flash_refusal(exc)
        return redirect(editor_url(Course, content_id, anchor))
    flash(ok_message, "success")
    return redirect(editor_url(Course, content_id, anchor))


def _form_change(
    content_id: str,
    form: str,
    parsed: tuple[dict, object, dict],
    change: Callable[[object], object],
    ok_message: str,
    anchor: str,
):
    """A change sent by a form: ``parsed`` is the form parser's (values, data, errors);
    errors refuse it beside that form, else ``change(data)`` is made as by :func:`_change`."""
    values, data, errors = parsed
    if errors:
        return _refused(content_id, form, values, errors)
    return _change(content_id, lambda: change(data), ok_message, anchor, form, values)


def _step(position: int, count: int) -> int:
    """One step up or down from ``position`` as the form asks; at either end, no move."""
    target = position - 1 if request.form.get("direction") == "up" else position + 1
    return target if 0 <= target < count else position


@bp.route("/me/courses/<content_id>/sessions", methods=["POST"])
def add_session(content_id: str):
    user = require_login()
    services.get_working(user, Course, content_id)
    return _form_change(
        content_id,
        "session",
        parse_session(),
        lambda session: services.add_session(user, content_id, session),
        _("Session added."),
        "sessions",
    )


@bp.route("/me/courses/<content_id>/sessions/<int:index>/delete", methods=["POST"])
def remove_session(content_id: str, index: int):
    user = require_login()
    return _change(
        content_id,
        lambda: services.remove_session(user, content_id, index),
        _("Session removed."),
        "sessions",
    )


@bp.route("/me/courses/<content_id>/sections", methods=["POST"])
def add_section(content_id: str):
    user = require_login()
    services.get_working(user, Course, content_id)
    return _form_change(
        content_id,
        "section",
        section_form(),
        lambda data: services.add_section(user, content_id, data),
        _("Section added."),
        "sections-list",
    )


@bp.route("/me/courses/<content_id>/sections/<int:index>/rename", methods=["POST"])
def rename_section(content_id: str, index: int):
    user = require_login()
    services.section_of(user, content_id, index)
    return _form_change(
        content_id,
        f"section-{index}",
        section_form(),
        lambda data: services.update_section(user, content_id, index, data),
        _("Section renamed."),
        f"section-{index}",
    )


@bp.route("/me/courses/<content_id>/sections/<int:index>/move", methods=["POST"])
def move_section(content_id: str, index: int):
    user = require_login()
    course = services.section_of(user, content_id, index).course
    target = _step(index, len(course.sections))
    return _change(
        content_id,
        lambda: services.move_section(user, content_id, index, target),
        _("Section moved."),
        f"section-{target}",
    )


@bp.route("/me/courses/<content_id>/sections/<int:index>/delete", methods=["POST"])
def remove_section(content_id: str, index: int):
    user = require_login()
    return _change(
        content_id,
        lambda: services.remove_section(user, content_id, index),
        _("Section removed."),
        "sections-list",
    )


@bp.route("/me/courses/<content_id>/sections/<int:index>/items", methods=["POST"])
def add_item(content_id: str, index: int):
    user = require_login()
    services.section_of(user, content_id, index)
    return _form_change(
        content_id,
        f"item-{index}",
        item_form(),
        lambda data: services.add_item(user, content_id, index, data),
        _("Resource added."),
        f"section-{index}",
    )


@bp.route("/me/courses/<content_id>/sections/<int:index>/items/<int:item>/delete", methods=["POST"])
def remove_item(content_id: str, index: int, item: int):
    user = require_login()
    return _change(
        content_id,
        lambda: services.remove_item(user, content_id, index, item),
        _("Item removed."),
        f"section-{index}",
    )


@bp.route("/me/courses/<content_id>/sections/<int:index>/items/<int:item>/move", methods=["POST"])
def move_item(content_id: str, index: int, item: int):
    """One step up or down within the section (the page's script moves items by
    dragging or with the keyboard through the API; this is the form without it)."""
    user = require_login()
    section = services.section_of(user, content_id, index)
    target = _step(item, len(section.items))
    return _change(
        content_id,
        lambda: services.move_item(user, content_id, index, item, index, target),
        _("Item moved."),
        f"section-{index}",
    )
