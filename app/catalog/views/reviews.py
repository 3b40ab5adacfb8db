"""The district review queue: approve, send back with a note, require review or not."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.catalog import schemas, services
from app.catalog.views.common import bp, flash_refusal, model_of, require_login
from app.catalog.views.forms import review_note
from app.common.transaction import skip_commit
from app.errors import Conflict, Invalid


@bp.route("/reviews")
def review_queue():
    from app.accounts.services import list_districts

    user = require_login()
    queue = services.list_review_queue(user)
    districts = [
        d for d in list_districts() if user.is_platform_admin or user.is_district_admin(d.id)
    ]
    return render_template("catalog/reviews.html", queue=queue, districts=districts)


@bp.route("/reviews/<kind>/<content_id>/<decision>", methods=["POST"])
def review_decision(kind: str, content_id: str, decision: str):
    model = model_of(kind)
    user = require_login()
    if decision == "approve":
        return _approve(user, model, content_id)
    if decision == "reject":
        return _reject(user, model, content_id)
    abort(404)


def _approve(user, model, content_id: str):
    try:
        row = services.approve_content(user, model, content_id)
    except Conflict as exc:
        flash_refusal(exc)
    else:
        flash(_("“%(title)s” is published.", title=row.title), "success")
    return redirect(url_for("catalog.review_queue"))


def _reject(user, model, content_id: str):
    note, error = review_note()
    if error:
        skip_commit()
        flash(error, "error")
        return redirect(url_for("catalog.review_queue"))
    try:
        row = services.reject_content(user, model, content_id, note)
    except (Conflict, Invalid) as exc:
        flash_refusal(exc, with_fields=True)
    else:
        flash(_("“%(title)s” went back to its author with your note.", title=row.title), "success")
    return redirect(url_for("catalog.review_queue"))


@bp.route(f"/reviews/districts/<{schemas.PATH_ID}:district_id>", methods=["POST"])
def district_review_setting(district_id: int):
    from app.accounts.services import set_district_review

    user = require_login()
    district = set_district_review(user, district_id, request.form.get("requires_review") == "1")
    if district.requires_review:
        flash(_("Publications in this district now need an admin's approval."), "success")
    else:
        flash(_("Teachers in this district now publish without review."), "success")
    return redirect(url_for("catalog.review_queue"))
