"""Log in and out, and the page where people manage their API tokens."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_user, logout_user

from app import signals
from app.accounts import services
from app.accounts.auth import actor
from app.common.events import commit
from app.errors import Unauthorized

bp = Blueprint("accounts", __name__)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
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
    status = 401 if error else 200
    return render_template("accounts/login.html", error=error, email=email), status


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    flash(_("You are logged out."), "success")
    return redirect(url_for("catalog.browse"))


def _require_login():
    user = actor()
    if user is None:
        raise Unauthorized("Log in first.")
    return user


def _tokens_page(user, status=200, **context):
    context.setdefault("errors", {})
    context.setdefault("name", "")
    return render_template("accounts/tokens.html", tokens=services.list_tokens(user),
                           ttl_days=current_app.config.get("API_TOKEN_TTL_DAYS"), **context), status


@bp.route("/me/tokens", methods=["GET", "POST"])
def tokens():
    user = _require_login()
    if request.method == "GET":
        return _tokens_page(user)
    name = " ".join((request.form.get("name") or "").split())
    if not name or len(name) > 100:
        flash(_("Please correct the marked fields."), "error")
        message = _("Give the token a name of 1 to 100 characters.")
        return _tokens_page(user, 422, errors={"name": [message]}, name=name[:100])
    token, raw = services.issue_token(user, name, current_app.config.get("API_TOKEN_TTL_DAYS"))
    commit()
    # The token is shown in this response only: it is never stored, flashed or logged.
    response = _tokens_page(user, 201, new_token=raw, new_token_row=token)
    return response[0], 201, {"Cache-Control": "no-store"}


@bp.route("/me/tokens/<int:token_id>/revoke", methods=["POST"])
def revoke_token(token_id: int):
    user = _require_login()
    token = services.revoke_token(user, token_id)
    commit()
    flash(_("Token “%(name)s” revoked.", name=token.name), "success")
    return redirect(url_for("accounts.tokens"))
