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
from app.common.events import send_after_commit
from app.common.redirects import redirect_next
from app.errors import TooManyRequests, Unauthorized

bp = Blueprint("accounts", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    status = 200
    headers = {}
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "")[:254]
        try:
            user = services.authenticate(email, request.form.get("password", "")[:200])
        except Unauthorized:
            error, status = _("Wrong email or password."), 401
        except TooManyRequests as exc:
            error, status = _("Too many failed logins for this account. Try again later."), 429
            headers["Retry-After"] = str(exc.retry_after or 60)
        else:
            login_user(user, remember=bool(request.form.get("remember")))
            # Sent by the app (plugins listen with the app as sender), once stored.
            send_after_commit(signals.user_logged_in, user=user, method="password")
            flash(_("Welcome, %(name)s.", name=user.name), "success")
            return redirect_next(request.args.get("next"))
    return render_template("accounts/login.html", error=error, email=email), status, headers


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
    return render_template(
        "accounts/tokens.html",
        tokens=services.list_tokens(user),
        ttl_days=current_app.config.get("API_TOKEN_TTL_DAYS"),
        **context,
    ), status


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
    # The token is shown in this response only: it is never stored, flashed or logged.
    response = _tokens_page(user, 201, new_token=raw, new_token_row=token)
    return response[0], 201, {"Cache-Control": "no-store"}


@bp.route("/me/tokens/<int:token_id>/revoke", methods=["POST"])
def revoke_token(token_id: int):
    user = _require_login()
    token = services.revoke_token(user, token_id)
    flash(_("Token “%(name)s” revoked.", name=token.name), "success")
    return redirect(url_for("accounts.tokens"))
