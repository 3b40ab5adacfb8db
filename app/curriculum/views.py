"""Curriculum pages.  Thin: validate the form with the API's schema, call a service,
render or redirect; the framework commits (app.common.transaction)."""

from __future__ import annotations

import json
from datetime import date

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.accounts.auth import actor
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.catalog.schemas import load_form
from app.common.transaction import skip_commit
from app.curriculum import schemas, services
from app.curriculum.models import Level, Node
from app.curriculum.services import browse as browse_service
from app.errors import AppError, Invalid, Unauthorized
from app.i18n import current_language, translate_message

bp = Blueprint("curriculum", __name__, url_prefix="/curriculum")
# Ids past the database's integer range are simply not found (never a 500).
ID = schemas.PATH_ID


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
    """Show a refused action on the page it came from; nothing it wrote is kept."""
    skip_commit()
    details = "; ".join(
        f"{k}: {' '.join(translate_message(str(m)) for m in v)}"
        for k, v in (exc.fields or {}).items()
    )
    flash(f"{translate_message(exc.message)} {details}".strip(), "error")


@bp.app_template_global()
def node_title(node) -> str:
    return node.display_title(current_language()) if node is not None else ""


@bp.app_template_global()
def level_label(level) -> str:
    """The name of a node's level; given the node itself, a textbook's 节 and 小节 are told
    apart (both are lessons when they are what is taught) by the CASE item type."""
    if isinstance(level, Node):
        node = level
        item_type = str((node.raw or {}).get("CFItemType") or "").strip().lower()
        if node.level == Level.LESSON and item_type in ("小节", "subsection"):
            return _("Subsection")
        if node.level == Level.LESSON and item_type in ("节", "section"):
            return _("Section")
        if node.level == Level.OTHER and item_type:
            return {
                "数学活动": _("Maths activity"),
                "小结": _("Chapter summary"),
                "复习题": _("Review exercises"),
                "综合与实践": _("Integrated practice"),
            }.get(item_type, _("Other"))
        level = node.level
    value = getattr(level, "value", level)
    return {
        "subject": _("Subject"),
        "stage": _("School stage"),
        "grade": _("Grade"),
        "edition": _("Edition"),
        "volume": _("Volume"),
        "unit": _("Unit"),
        "section": _("Section"),
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
def week_kind_label(kind) -> str:
    value = getattr(kind, "value", kind)
    return {
        "teaching": _("Teaching week"),
        "review": _("Review week"),
        "exam": _("Exam week"),
    }.get(value, value)


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
        district_classes=services.district_class_calendars(user),
    )


@bp.app_template_global()
def stage_label(stage: str | None) -> str:
    return {
        "primary": _("Primary school"),
        "junior": _("Junior secondary"),
        "senior": _("Senior secondary"),
    }.get(stage or "", stage or "")


@bp.route("/browse")
def browse():
    """The textbook-tree browser: stage, subject, edition and volume selectors, the
    volume's table of contents with resource counts, and the resources of each lesson of
    the chosen part (the national platform's way of finding material)."""
    user = actor()
    choice = browse_service.choose_volume(
        (request.args.get("stage") or "")[:20] or None,
        (request.args.get("subject") or "")[:32] or None,
        (request.args.get("edition") or "")[:32] or None,
        _int(request.args.get("volume")),
    )
    contents, selected = [], None
    if choice.volume is not None:
        contents = browse_service.volume_contents(user, choice.volume)
        node_id = _int(request.args.get("node"))
        selected = browse_service.find_entry(contents, node_id) if node_id else None
        selected = selected or (contents[0] if contents else None)
    return render_template(
        "curriculum/browse.html",
        choice=choice,
        contents=contents,
        selected=selected,
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


@bp.route(f"/frameworks/<{ID}:framework_id>")
def framework(framework_id: int):
    item = services.get_framework(framework_id)
    return render_template(
        "curriculum/framework.html",
        framework=item,
        tree=services.framework_tree(item),
        can_manage=services.can_manage_framework(actor(), item),
    )


@bp.route(f"/frameworks/<{ID}:framework_id>/case.json")
def export(framework_id: int):
    package = services.export_case(framework_id)
    body = json.dumps(package, ensure_ascii=False, indent=1)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f"attachment; filename=case-{framework_id}.json"},
    )


@bp.route(f"/nodes/<{ID}:node_id>")
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
        direct_alignments=services.alignments_of_node(item),
        my_resources=my_resources,
        alignable=item.level in (Level.LESSON, Level.KNOWLEDGE_POINT, Level.UNIT, Level.SECTION),
    )


@bp.route(f"/nodes/<{ID}:node_id>/align", methods=["POST"])
def align(node_id: int):
    try:
        data = load_form(
            schemas.AlignmentCreateSchema(),
            {
                "node_id": node_id,
                "resource_id": request.form.get("resource_id", ""),
                "alignment_type": request.form.get("alignment_type") or "teaches",
            },
        )
        services.align(actor(), node_id, "resource", data["resource_id"], data["alignment_type"])
        flash(_("Aligned."), "success")
    except AppError as exc:
        _flash_error(exc)
    return redirect(url_for("curriculum.node", node_id=node_id))


@bp.route(f"/alignments/<{ID}:alignment_id>/delete", methods=["POST"])
def unalign(alignment_id: int):
    node_id = _int(request.form.get("node_id"))
    try:
        services.unalign(actor(), alignment_id)
        flash(_("Alignment removed."), "success")
    except AppError as exc:
        _flash_error(exc)
    if node_id is None or not 0 < node_id <= schemas.MAX_ID:
        return redirect(url_for("curriculum.index"))
    return redirect(url_for("curriculum.node", node_id=node_id))


@bp.route(f"/volumes/<{ID}:volume_id>/course", methods=["POST"])
def generate_course(volume_id: int):
    try:
        course = services.generate_course(actor(), volume_id)
    except AppError as exc:
        _flash_error(exc)
        return redirect(url_for("curriculum.node", node_id=volume_id))
    flash(_("A course draft was generated from this volume."), "success")
    return redirect(
        url_for("catalog.course_detail", content_id=course.content_id, version="latest")
    )


@bp.route(f"/volumes/<{ID}:volume_id>/coverage")
def coverage(volume_id: int):
    return render_template("curriculum/coverage.html", data=services.coverage(actor(), volume_id))


def _week_args() -> tuple[date | None, int, int | None]:
    """The day, week offset and class asked for; junk in a bookmarked URL falls back to
    this week rather than an error page."""
    offset = max(-30, min(_int(request.args.get("offset"), 0), 30))
    class_id = _int(request.args.get("class_id"))
    if class_id is not None and not 0 < class_id <= schemas.MAX_ID:
        class_id = 0  # no such class: 404 from the service, like any unknown id
    return _day(), offset, class_id


@bp.route("/this-week")
def this_week():
    user = actor()
    if user is None:
        raise Unauthorized()
    day, offset, class_id = _week_args()
    views = services.this_week(user, class_id, day, offset)
    # An administrator is in no class: she picks one of her districts' classes.
    picker = services.district_class_calendars(user, day) if class_id is None else []
    return render_template(
        "curriculum/this_week.html",
        views=views,
        offset=offset,
        school_class=None,
        picker=picker,
    )


@bp.route(f"/classes/<{ID}:class_id>")
def school_class(class_id: int):
    user = actor()
    item = services.get_class(user, class_id)
    day, offset, _class = _week_args()
    views = services.this_week(user, item.id, day, offset)
    return render_template(
        "curriculum/class.html",
        school_class=item,
        views=views,
        offset=offset,
        members=services.class_members(item),
        progress=services.progress_of(item),
        lessons=services.lessons_by_subject(item),
        can_manage=services.can_manage_class(user, item),
        district_calendars=services.district_calendars_for(user, item),
    )


@bp.route(f"/classes/<{ID}:class_id>/progress", methods=["POST"])
def record_progress(class_id: int):
    try:
        data = load_form(schemas.ProgressInSchema(), {"node_id": request.form.get("node_id")})
        services.record_progress(actor(), class_id, data["node_id"])
        flash(_("Progress saved."), "success")
    except AppError as exc:
        _flash_error(exc)
    return redirect(url_for("curriculum.school_class", class_id=class_id))


@bp.route("/calendars", methods=["POST"])
def create_calendar():
    form = request.form
    holidays = []
    if form.get("holiday_start") and form.get("holiday_end"):
        holidays.append(
            {
                "name": form.get("holiday_name", ""),
                "start": form["holiday_start"],
                "end": form["holiday_end"],
            }
        )
    fields = ("title", "volume_id", "term_start", "term_end", "lessons_per_week")
    submitted = {name: form[name] for name in fields if form.get(name)}
    try:
        data = load_form(
            schemas.CalendarCreateSchema(),
            {**submitted, "term": form.get("term", "").strip() or "term", "holidays": holidays},
        )
        calendar = services.create_calendar(actor(), data)
    except AppError as exc:
        _flash_error(exc)
        return redirect(url_for("curriculum.index"))
    flash(_("Calendar created with the default plan."), "success")
    return redirect(url_for("curriculum.calendar", calendar_id=calendar.id))


def _calendar_action(user, calendar, form) -> str:
    """Run one action of the calendar page; returns the calendar to show next."""
    action = form.get("action", "save")
    if action == "shift":
        data = load_form(schemas.ShiftSchema(), _present(form, "by", "from_week"))
        services.shift_calendar(user, calendar.id, data["by"], data["from_week"])
    elif action == "regenerate":
        services.save_calendar(user, calendar.id, {"regenerate": True, "note": "Regenerated."})
    elif action == "restore":
        data = load_form(schemas.RestoreSchema(), _present(form, "version"))
        services.restore_calendar_version(user, calendar.id, data["version"])
    elif action == "override":
        data = load_form(schemas.OverrideSchema(), _present(form, "class_id"))
        copy = services.override_calendar(user, calendar.id, data["class_id"])
        flash(_("Your class now follows its own copy of the calendar."), "success")
        return copy.id
    else:
        data = load_form(
            schemas.LessonWeeksSchema(),
            {
                "weeks": _prefixed(form, "lesson-"),
                "kinds": _prefixed(form, "kind-"),
                "order": _prefixed(form, "order-"),
                **_present(form, "note"),
            },
        )
        services.assign_lessons(
            user,
            calendar.id,
            data["weeks"],
            data.get("note"),
            kinds=data.get("kinds"),
            order=data.get("order"),
        )
    flash(_("Calendar saved as a new version."), "success")
    return calendar.id


def _prefixed(form, prefix: str) -> dict:
    """``{"<suffix>": value}`` of the form fields named ``<prefix><suffix>`` (the week
    grid: ``lesson-<id>`` = week, ``order-<id>`` = place in the week, ``kind-<week>``)."""
    return {
        key[len(prefix) :]: value for key, value in form.items() if key.startswith(prefix) and value
    }


def _present(form, *names: str) -> dict:
    return {name: form[name] for name in names if form.get(name)}


@bp.route(f"/calendars/<{ID}:calendar_id>", methods=["GET", "POST"])
def calendar(calendar_id: int):
    user = actor()
    item = services.get_calendar(user, calendar_id)
    if request.method == "POST":
        target = item.id
        try:
            target = _calendar_action(user, item, request.form)
        except AppError as exc:
            _flash_error(exc)
        return redirect(url_for("curriculum.calendar", calendar_id=target))
    return render_template(
        "curriculum/calendar.html",
        calendar=item,
        plan=services.calendar_plan(item),
        versions=services.calendar_versions(user, item.id),
        can_edit=services.can_edit_calendar(user, item),
        week_kinds=services.WEEK_KINDS,
        teacher_classes=services.classes_to_override(user, item),
        today_week=services.week_number(item, services.today()),
    )
