"""Portrait pages: a student's own (or her teacher's view of it), a class heat map with
assign-to-group, district aggregates; click and dismiss of recommendations."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import escape

from app.accounts.auth import actor
from app.errors import Unauthorized
from app.portraits import sources
from app.portraits.services import charts, queries, recommend

bp = Blueprint("portraits", __name__, url_prefix="/portraits", template_folder="../templates")


def _locale() -> str:
    return str(get_locale() or "zh_CN")


def _user():
    user = actor()
    if user is None:
        raise Unauthorized(_("Log in to see portraits."))
    return user


def nav_links(**context) -> str:
    """ "My portrait" in the main navigation for a logged-in user."""
    if actor() is None:
        return ""
    return f'<a href="{url_for("portraits.index")}">{escape(_("Portraits"))}</a>'


def recommendations_box(**context) -> str:
    """This week's explained recommendations for the logged-in student (a page slot)."""
    user = actor()
    if user is None or not user.is_student:
        return ""
    recs = recommend.recommend(user, user.id, _locale(), limit=5)
    return render_template("portraits/_box.html", recs=recs, locale=_locale())


@bp.get("/")
def index():
    user = _user()
    classes = sources.classes_of(user, "teacher")
    districts = sorted(user.admin_district_ids())
    if not classes and not districts:
        return redirect(url_for("portraits.student", student_id=user.id))
    return render_template("portraits/index.html", classes=classes, districts=districts)


@bp.get("/students/<int:student_id>")
def student(student_id):
    user = _user()
    locale = _locale()
    data = queries.portrait(user, student_id, locale)
    recs = recommend.recommend(user, student_id, locale)
    trend = charts.trend_svg(
        [(t["day"], t["average"]) for t in data.trend], _("Average mastery over the term")
    )
    minutes = charts.bars_svg(
        [(d["day"], d["seconds"] / 60) for d in data.engagement["days"]],
        _("Minutes on task per day"),
        _("min"),
    )
    return render_template(
        "portraits/student.html",
        portrait=data,
        recs=recs,
        trend=trend,
        minutes=minutes,
        colour=charts.colour,
        text_colour=charts.text_colour,
        own=user.id == student_id,
    )


@bp.get("/classes/<int:class_id>")
def klass(class_id):
    user = _user()
    offset = request.args.get("offset", 0, type=int)
    if offset not in (-1, 0, 1):
        offset = 0
    heat = queries.class_heatmap(user, class_id, _locale(), offset)
    return render_template(
        "portraits/class.html",
        heat=heat,
        offset=offset,
        colour=charts.colour,
        text_colour=charts.text_colour,
    )


@bp.post("/classes/<int:class_id>/assign")
def assign(class_id):
    user = _user()
    ids = request.form.getlist("student_ids", type=int)
    recommend.assign(
        user,
        class_id,
        request.form.get("content_id", ""),
        request.form.get("skill") or None,
        ids or None,
    )
    flash(_("Assigned."), "success")
    return redirect(url_for("portraits.klass", class_id=class_id))


@bp.get("/districts/<int:district_id>")
def district(district_id):
    user = _user()
    data = queries.district_aggregates(user, district_id, _locale())
    return render_template(
        "portraits/district.html", data=data, colour=charts.colour, text_colour=charts.text_colour
    )


@bp.get("/go/<content_id>")
def go(content_id):
    """A click on a recommendation: recorded, then the resource page."""
    user = _user()
    skill = request.args.get("skill") or None
    recommend.record_feedback(user, content_id, "clicked", skill)
    return redirect(url_for("catalog.resource_detail", content_id=content_id))


@bp.post("/recommendations/<content_id>/dismiss")
def dismiss(content_id):
    user = _user()
    action = request.form.get("action", "")
    if action not in ("not_useful", "known"):
        abort(400)
    recommend.record_feedback(user, content_id, action, request.form.get("skill") or None)
    flash(_("Thanks: we will suggest something else."), "success")
    return redirect(url_for("portraits.student", student_id=user.id))
