"""Who is asking: session cookie (pages) or bearer token (API)."""

from __future__ import annotations

from flask import request
from flask_login import current_user

from app.accounts import services
from app.accounts.models import User
from app.extensions import login_manager


def actor() -> User | None:
    """The logged-in user, or None for an anonymous request."""
    if current_user and current_user.is_authenticated:
        return current_user._get_current_object()
    return None


@login_manager.user_loader
def _load_user(public_id: str) -> User | None:
    user = services.get_user_by_public_id(public_id)
    return user if user is not None and user.is_active else None


@login_manager.request_loader
def _load_user_from_token(req) -> User | None:
    header = req.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":
        return None
    return services.user_for_token(header[7:].strip())


def bearer_request() -> bool:
    return request.headers.get("Authorization", "")[:7].lower() == "bearer "


def unauthorized():
    """Programs get the 401 envelope; people are sent to the login page."""
    from flask import redirect, url_for

    from app.errors import Unauthorized, wants_json

    if wants_json():
        raise Unauthorized("Log in or send a bearer token.")
    return redirect(url_for("accounts.login", next=request.full_path))
