"""Curriculum pages.  Thin: parse the request, call a service, render."""

from __future__ import annotations

import json
from datetime import date

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.accounts.auth import actor
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.common.events import commit
from app.curriculum import services
from app.curriculum.models import Level
from app.errors import AppError, Invalid, Unauthorized
from app.i18n import current_language

bp = Blueprint("curriculum", __name__, url_prefix="/curriculum")


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _day() -> date | None:
    value = request.args.get("date")
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _flash_error(exc: AppError) -> None:
    details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in (exc.fields or {}).items())
    flash(f"{exc.message} {details}".strip(), "error")


@bp.app_template_global()
def node_title(node) -> str:
    return node.display_title(current_language()) if node is not None else ""


@bp.app_template_global()
def level_label(level) -> str:
    value = getattr(level, "value", level)
    return {
        "subject": _("Subject"),
        "stage": _("School stage"),
        "grade": _("Grade"),
        "edition": _("Edition"),
        "volume": _("Volume"),
        "unit": _("Unit"),
        "lesson": _("Lesson"),
        "knowledge_point": _("Knowledge point"),
    }.get(value, _("Other"))


@bp.app_template_global()
def alignment_label(value) -> str:
    value = getattr(value, "value", value)
    return {"teaches": _("teaches"), "assesses": _("assesses"), "requires": _("requires")}.get(
        value, value
    )


@bp.app_template_global()
def heat_colour(count: int, maximum: int) -> str:
    """Background of a coverage cell: red for a gap, then lighter to darker green."""
    if not count:
        return "#fde2e1"
    share = count / max(maximum, 1)
    lightness = 88 - int(share * 48)
    return f"hsl(145, 55%, {lightness}%)"


@bp.route("/")
def index():
    user = actor()
    return render_template(
        "curriculum/index.html",
        frameworks=services.list_frameworks(),
        volumes=services.list_volumes(),
        classes=services.classes_of(user),
        calendars=services.list_calendars(user),
        can_import=services.can_manage_framework(user, None),
    )


@bp.route("/import", methods=["POST"])
def import_case():
    upload = request.files.get("package")
    try:
        if upload is None or not upload.filename:
            raise Invalid(_("Choose a CASE JSON file."))
        try:
            package = json.loads(upload.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Invalid(_("The file is not JSON: %(error)s", error=str(exc)[:200])) from None
        report = services.import_case(actor(), package)
        commit()
    except AppError as exc:
        _flash_error(exc)
        return redirect(url_for("curriculum.index"))
    flash(
        _(
            "Imported %(title)s: items %(ic)s created, %(iu)s updated, %(id)s removed; "
            "associations %(ac)s created, %(au)s updated, %(ad)s removed.",
            title=report.title,
            ic=report.items["created"],
            iu=report.items["updated"],
            id=report.items["deleted"],
            ac=report.associations["created"],
            au=report.associations["updated"],
            ad=report.associations["deleted"],
        ),
        "success",
    )
    return redirect(url_for("curriculum.framework", framework_id=report.framework_id))


@bp.route("/frameworks/<int:framework_id>")
def framework(framework_id: int):
    item = services.get_framework(framework_id)
    return render_template(
        "curriculum/framework.html",
        framework=item,
        tree=services.framework_tree(item),
        can_manage=services.can_manage_framework(actor(), item),
    )


@bp.route("/frameworks/<int:framework_id>/case.json")
def export(framework_id: int):
    package = services.export_case(framework_id)
    body = json.dumps(package, ensure_ascii=False, indent=1)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f"attachment; filename=case-{framework_id}.json"},
    )


@bp.route("/nodes/<int:node_id>")
def node(node_id: int):
    user = actor()
    item = services.get_node(node_id)
    aligned = services.aligned_resources(user, [item]).get(item.id, [])
    my_resources = []
    if user is not None and (user.is_teacher or user.is_district_admin() or user.is_platform_admin):
        my_resources = catalog.list_editable(user, Resource, 1, 100).items
    return render_template(
        "curriculum/node.html",
        node=item,
        ancestors=services.ancestors_of(item),
        children=services.children_of(item),
        knowledge_points=services.knowledge_points_of([item]).get(item.identifier, []),
        associations=services.associations_of(item, current_language()),
        aligned=aligned,
        direct_alignments=_direct_alignments(item),
        my_resources=my_resources,
        alignable=item.level in (Level.LESSON, Level.KNOWLEDGE_POINT, Level.UNIT),
    )


def _direct_alignments(item):
    from sqlalchemy import select

    from app.curriculum.models import Alignment
    from app.extensions import db

    return list(db.session.execute(select(Alignment).where(Alignment.node_id == item.id)).scalars())


@bp.route("/nodes/<int:node_id>/align", methods=["POST"])
def align(node_id: int):
    try:
        services.align(
            actor(),
            node_id,
            "resource",
            request.form.get("resource_id", ""),
            request.form.get("alignment_type", "teaches"),
        )
        commit()
        flash(_("Aligned."), "success")
    except AppError as exc:
        _flash_error(exc)
    return redirect(url_for("curriculum.node", node_id=node_id))


@bp.route("/alignments/<int:alignment_id>/delete", methods=["POST"])
def unalign(alignment_id: int):
    node_id = _int(request.form.get("node_id"))
    try:
        services.unalign(actor(), alignment_id)
        commit()
        flash(_("Alignment removed."), "success")
    except AppError as exc:
        _flash_error(exc)
    return redirect(
        url_for("curriculum.node", node_id=node_id) if node_id else url_for("curriculum.index")
    )


@bp.route("/volumes/<int:volume_id>/course", methods=["POST"])
def generate_course(volume_id: int):
    try:
        course = services.generate_course(actor(), volume_id)
        commit()
    except AppError as exc:
        _flash_error(exc)
        return redirect(url_for("curriculum.node", node_id=volume_id))
    flash(_("A course draft was generated from this volume."), "success")
    return redirect(
        url_for("catalog.course_detail", content_id=course.content_id, version="latest")
    )


@bp.route("/volumes/<int:volume_id>/coverage")
def coverage(volume_id: int):
    return render_template("curriculum/coverage.html", data=services.coverage(actor(), volume_id))


@bp.route("/this-week")
def this_week():
    user = actor()
    if user is None:
        raise Unauthorized()
    offset = max(-30, min(_int(request.args.get("offset"), 0), 30))
    views = services.this_week(user, _int(request.args.get("class_id")), _day(), offset)
    return render_template(
        "curriculum/this_week.html", views=views, offset=offset, school_class=None
    )


@bp.route("/classes/<int:class_id>")
def school_class(class_id: int):
    user = actor()
    item = services.get_class(user, class_id)
    offset = max(-30, min(_int(request.args.get("offset"), 0), 30))
    views = services.this_week(user, item.id, _day(), offset)
    lessons = {}
    for edition in item.editions:
        lessons[edition.subject] = [
            n
            for v in services.list_volumes(edition.subject, edition.edition, item.grade)
            for n in services.lessons_of_volume(v)
        ]
    district_calendars = [
        c
        for c in services.list_calendars(user)
        if c.class_id is None and c.district_id == item.school.district_id
    ]
    return render_template(
        "curriculum/class.html",
        school_class=item,
        views=views,
        offset=offset,
        members=services.class_members(item),
        progress=services.progress_of(item),
        lessons=lessons,
        can_manage=services.can_manage_class(user, item),
        district_calendars=district_calendars,
    )


@bp.route("/classes/<int:class_id>/progress", methods=["POST"])
def record_progress(class_id: int):
    try:
        services.record_progress(actor(), class_id, _int(request.form.get("node_id"), 0))
        commit()
        flash(_("Progress saved."), "success")
    except AppError as exc:
        _flash_error(exc)
    return redirect(url_for("curriculum.school_class", class_id=class_id))


@bp.route("/calendars", methods=["POST"])
def create_calendar():
    form = request.form
    try:
        holidays = []
        if form.get("holiday_start") and form.get("holiday_end"):
            holidays.append(
                {
                    "name": form.get("holiday_name", ""),
                    "start": form["holiday_start"],
                    "end": form["holiday_end"],
                }
            )
        calendar = services.create_calendar(
            actor(),
            {
                "term": form.get("term", "").strip() or "term",
                "title": form.get("title") or None,
                "volume_id": _int(form.get("volume_id"), 0),
                "term_start": form.get("term_start"),
                "term_end": form.get("term_end"),
                "lessons_per_week": max(1, min(_int(form.get("lessons_per_week"), 5), 40)),
                "holidays": holidays,
            },
        )
        commit()
    except AppError as exc:
        _flash_error(exc)
        return redirect(url_for("curriculum.index"))
    flash(_("Calendar created with the default plan."), "success")
    return redirect(url_for("curriculum.calendar", calendar_id=calendar.id))


@bp.route("/calendars/<int:calendar_id>", methods=["GET", "POST"])
def calendar(calendar_id: int):
    user = actor()
    item = services.get_calendar(user, calendar_id)
    if request.method == "POST":
        try:
            action = request.form.get("action", "save")
            if action == "shift":
                services.shift_calendar(
                    user,
                    item.id,
                    _int(request.form.get("by"), 1),
                    _int(request.form.get("from_week"), 1),
                )
            elif action == "regenerate":
                services.save_calendar(user, item.id, {"regenerate": True, "note": "Regenerated."})
            elif action == "restore":
                services.restore_calendar_version(
                    user, item.id, _int(request.form.get("version"), 0)
                )
            elif action == "override":
                copy = services.override_calendar(
                    user, item.id, _int(request.form.get("class_id"), 0)
                )
                commit()
                flash(_("Your class now follows its own copy of the calendar."), "success")
                return redirect(url_for("curriculum.calendar", calendar_id=copy.id))
            else:
                weeks = {}
                for key, value in request.form.items():
                    if key.startswith("lesson-") and value:
                        weeks.setdefault(_int(value, 0), []).append(_int(key[7:], 0))
                plan = services.calendar_plan(item)
                order = {n.id: (p["week"], i) for p in plan for i, n in enumerate(p["lessons"])}
                payload = [
                    {
                        "week": p["week"],
                        "starts_on": p["starts_on"],
                        "ends_on": p["ends_on"],
                        "lessons": sorted(
                            weeks.get(p["week"], []), key=lambda n: order.get(n, (99, n))
                        ),
                    }
                    for p in plan
                ]
                unknown = set(weeks) - {p["week"] for p in plan}
                if unknown:
                    raise Invalid(
                        _("No such week: %(weeks)s", weeks=", ".join(map(str, sorted(unknown))))
                    )
                services.save_calendar(
                    user, item.id, {"weeks": payload, "note": request.form.get("note")}
                )
            commit()
            flash(_("Calendar saved as a new version."), "success")
        except AppError as exc:
            _flash_error(exc)
        return redirect(url_for("curriculum.calendar", calendar_id=item.id))
    teacher_classes = [
        c for c in services.classes_of(user, "teacher") if c.school.district_id == item.district_id
    ]
    return render_template(
        "curriculum/calendar.html",
        calendar=item,
        plan=services.calendar_plan(item),
        versions=services.calendar_versions(user, item.id),
        can_edit=services._calendar_editable(user, item),
        teacher_classes=teacher_classes if item.class_id is None else [],
        today_week=services.week_number(item, services.today()),
    )
