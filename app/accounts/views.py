from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_user, logout_user

from app import signals
from app.accounts import services
from app.common.events import commit
from app.errors import Unauthorized

bp = Blueprint("accounts", __name__)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("catalog.browse")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "")[:254]
        try:
            user = services.authenticate(email, request.form.get("password", "")[:200])
        except Unauthorized:
            error = _("Wrong email or password.")
        else:
            login_user(user, remember=bool(request.form.get("remember")))
            commit()
            signals.user_logged_in.send(bp, user=user, method="password")
            flash(_("Welcome, %(name)s.", name=user.name), "success")
            return redirect(_safe_next(request.args.get("next")))
    return render_template("accounts/login.html", error=error, email=email), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    flash(_("You are logged out."), "success")
    return redirect(url_for("catalog.browse"))
