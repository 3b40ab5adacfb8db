"""What every catalog page shares: the blueprint, who is asking, where the editor is,
and how a refused action is reported."""

from __future__ import annotations

from flask import Blueprint, abort, flash, request, url_for

from app.accounts.auth import actor
from app.catalog.models import Course, Resource
from app.common.transaction import skip_commit
from app.errors import AppError, Forbidden, Unauthorized
from app.i18n import translate_message

bp = Blueprint("catalog", __name__)

MODELS = {"courses": Course, "resources": Resource}


def require_login():
    user = actor()
    if user is None:
        raise Unauthorized("Log in first.")
    return user


def require_author():
    user = require_login()
    if not (user.is_teacher or user.is_district_admin() or user.is_platform_admin):
        raise Forbidden("Only teachers and administrators can create content.")
    return user


def noun(model) -> str:
    return "courses" if model is Course else "resources"


def editor_url(model, content_id: str, anchor: str | None = None) -> str:
    extra = {"_anchor": anchor} if anchor else {}
    return url_for("catalog.edit_content", kind=noun(model), content_id=content_id, **extra)


def model_of(kind: str):
    model = MODELS.get(kind)
    if model is None:
        abort(404)
    return model


def page_arg(name: str) -> int:
    try:
        return max(1, min(int(request.args.get(name, 1)), 10_000))
    except ValueError:
        return 1


def as_list(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [m for inner in value.values() for m in as_list(inner)]
    return [str(m) for m in value]


def translated_fields(fields: dict) -> dict[str, list[str]]:
    """A service's field errors in the reader's language."""
    return {name: [translate_message(m) for m in as_list(msgs)] for name, msgs in fields.items()}


def flash_refusal(exc: AppError, with_fields: bool = False) -> None:
    """Report a refused action on the page it came from; nothing it wrote is kept (the
    redirect that follows would otherwise commit)."""
    skip_commit()
    message = translate_message(exc.message)
    if with_fields and exc.fields:
        details = "; ".join(m for msgs in translated_fields(exc.fields).values() for m in msgs)
        message = f"{message} {details}"
    flash(message, "error")
