"""JSON endpoints of the exercise player (under ``/plugins/exercise``).

Errors are ``{"error": {"code", "message", "fields"}}`` with a 4xx status; a form
submission from the page sends the CSRF token in ``X-CSRFToken``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_babel import get_locale
from flask_babel import gettext as _

from app import hooks

from . import attempts

bp = Blueprint("exercise_plugin", __name__, static_folder="static")
MAX_BODY = 64 * 1024


def _locale() -> str:
    return str(get_locale() or "zh_CN")


@bp.errorhandler(attempts.ExerciseError)
def _refused(error: attempts.ExerciseError):
    body = {"error": {"code": error.code, "message": error.message, "fields": error.fields}}
    return jsonify(body), error.status


def _json_body() -> dict:
    if request.content_length and request.content_length > MAX_BODY:
        raise attempts.ExerciseError(413, "too_large", _("The request is too large."))
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise attempts.ExerciseError(400, "invalid", _("The request body must be a JSON object."))
    return data


@bp.post("/<content_id>/attempts")
def start(content_id):
    attempt, created = attempts.start_attempt(hooks.current_actor(), content_id)
    return jsonify(attempts.attempt_view(attempt, _locale())), 201 if created else 200


@bp.get("/<content_id>/attempts")
def history(content_id):
    rows = attempts.attempts_of(hooks.current_actor(), content_id)
    return jsonify([attempts.attempt_view(a, _locale()) for a in rows])


@bp.get("/attempts/<attempt_id>")
def show(attempt_id):
    attempt = attempts.get_attempt(hooks.current_actor(), attempt_id)
    return jsonify(attempts.attempt_view(attempt, _locale()))


@bp.post("/attempts/<attempt_id>/submit")
def submit(attempt_id):
    data = _json_body()
    attempt = attempts.submit_attempt(hooks.current_actor(), attempt_id, data.get("answers"))
    return jsonify(attempts.attempt_view(attempt, _locale()))
