"""Errors raised by services, and the one envelope every error is returned in.

Services raise :class:`AppError` subclasses; they never build HTTP responses.  JSON
clients (anything under ``/api/``, or asking for JSON) get::

    {"error": {"code": "validation_error", "message": "...", "fields": {...}}}

and people get a page with the same message.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

from app.extensions import db

log = logging.getLogger(__name__)


# A subclass names its HTTP status and envelope code in its class line
# (``class Gone(AppError, status=410, code="gone")``) and its default message in its
# docstring (AppError itself has none: its default message is its code).
class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init_subclass__(cls, status: int | None = None, code: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(
        self, message: str | None = None, fields: dict | None = None, code: str | None = None
    ):
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip()
        self.fields = fields or {}
        if code:
            self.code = code


class BadRequest(AppError):
    """The request is malformed."""


class Unauthorized(AppError, status=401, code="unauthorized"):
    """Authentication is required."""


class Forbidden(AppError, status=403, code="forbidden"):
    """You are not allowed to do this."""


class NotFound(AppError, status=404, code="not_found"):
    """Not found."""


class Conflict(AppError, status=409, code="conflict"):
    """The request conflicts with the current state."""


class Invalid(AppError, status=422, code="validation_error"):
    """The submitted data is not valid."""


class UnsupportedMediaType(AppError, status=415, code="unsupported_media_type"):
    """Send the request body as JSON (Content-Type: application/json)."""


class PayloadTooLarge(AppError, status=413, code="too_large"):
    """The request is too large."""


class TooManyRequests(AppError, status=429, code="too_many_requests"):
    """Too many requests. Try again later."""

    def __init__(self, message: str | None = None, retry_after: int | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


# The envelope code of an HTTP error raised by Flask/Werkzeug rather than a service.
_HTTP_CODES = {
    error.status: error.code
    for error in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        Invalid,
        UnsupportedMediaType,
        PayloadTooLarge,
        TooManyRequests,
    )
} | {405: "method_not_allowed", 412: "precondition_failed", 503: "unavailable"}


def _(message: str) -> str:
    """Mark for extraction; translated with ``gettext`` when the response is built."""
    return message


# Shown (translated) instead of the English text of Werkzeug or Flask-Limiter.
RATE_LIMITED_MESSAGE = _("Too many requests. Try again in %(seconds)s seconds.")
DATABASE_DOWN_MESSAGE = _("The database is unavailable. Try again in a moment.")
RETRY_AFTER_DATABASE = 30


def wants_json() -> bool:
    """Programs get the JSON envelope: paths in this app's ``JSON_PREFIXES`` (features add
    theirs with :func:`app.common.routing.add_json_prefix`), or a client preferring JSON."""
    if any(request.path.startswith(prefix) for prefix in current_app.config["JSON_PREFIXES"]):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def error_response(
    status: int,
    code: str,
    message: str,
    fields: dict | None = None,
    headers: dict | None = None,
):
    # After keep_on_error() the request's after_request hook commits what was written;
    # rolling back here would make that escape hatch a no-op.
    if not g.get("_shuyuan_keep_on_error"):
        db.session.rollback()
    response = _error_body(status, code, message, fields)
    if headers:
        response = current_app.make_response(response)
        response.headers.update(headers)
    return response


def _error_body(status: int, code: str, message: str, fields: dict | None):
    # Services and libraries speak English; the reader gets her language (see
    # app.i18n.translate_message), on the page and in the JSON envelope alike.
    from app.i18n import language_chosen, translate_fields, translate_message

    json = wants_json()
    # A program that names no language (no Accept-Language, ?lang= or session choice)
    # keeps the English text it may match on; a person's browser always names one.
    if not json or language_chosen():
        message = translate_message(message)
        fields = translate_fields(fields) if fields else fields
    if json:
        body = {"error": {"code": code, "message": message}}
        if fields:
            body["error"]["fields"] = fields
        response = jsonify(body)
        response.status_code = status
        return response
    if status == 401 and request.method == "GET":
        from flask import redirect, url_for

        return redirect(url_for("accounts.login", next=request.full_path))
    return render_template(
        "error.html", status=status, message=message, fields=fields or {}
    ), status


def require_json_body() -> None:
    """``before_request`` hook for JSON API blueprints: a write that carries a body must
    say it is JSON, or it is refused with 415 before any argument parsing (otherwise a
    form post would be read as an empty JSON object and, for a PATCH, act on nothing)."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    has_body = bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", ""
    )
    if has_body and not request.is_json:
        raise UnsupportedMediaType(
            "Send the body as JSON with Content-Type: application/json.",
            fields={"Content-Type": [f"Got {request.mimetype or 'none'}."]},
        )


def _webargs_fields(exc: HTTPException) -> dict:
    # flask-smorest/webargs put marshmallow messages under data["messages"][location].
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") or {}
    fields: dict = {}
    for location_messages in messages.values():
        if isinstance(location_messages, dict):
            fields.update(location_messages)
    return fields


def _too_many(retry_after: int | None, message: str | None = None):
    seconds = retry_after or 60
    text = gettext(message) if message else gettext(RATE_LIMITED_MESSAGE, seconds=seconds)
    return error_response(429, "too_many_requests", text, headers={"Retry-After": str(seconds)})


def database_unavailable(exc: Exception):
    """503 for a database that cannot be reached: ONE log line (no traceback: the cause is
    outside the code, and a traceback per request buries the log), and a page that needs
    no database (the normal layout would load the logged-in user)."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    log.error(
        "database unavailable on %s %s: %s: %s",
        request.method,
        request.path,
        type(getattr(exc, "orig", None) or exc).__name__,
        reason[0] if reason else "",
    )
    db.session.rollback()
    message = gettext(DATABASE_DOWN_MESSAGE)
    headers = {"Retry-After": str(RETRY_AFTER_DATABASE)}
    if wants_json():
        response = jsonify({"error": {"code": "unavailable", "message": message}})
        response.status_code = 503
    else:
        # Rendered without the context processors: Flask-Login's would load the user.
        template = current_app.jinja_env.get_template("core/unavailable.html")
        html = template.render(message=message, config=current_app.config, request=request)
        response = current_app.make_response((html, 503))
    response.headers.update(headers)
    return response


def is_connection_failure(exc: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def handle_app_error(exc: AppError):
        if isinstance(exc, TooManyRequests):
            return _too_many(exc.retry_after, exc.message)
        return error_response(exc.status, exc.code, exc.message, exc.fields)

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException):
        status = exc.code or 500
        if status == 429:
            from app.common.ratelimit import retry_after_seconds

            return _too_many(retry_after_seconds())
        fields = _webargs_fields(exc)
        message = exc.description or exc.name
        if status == 422 and fields:
            message = _("The submitted data is not valid.")
        return error_response(status, _HTTP_CODES.get(status, "error"), message, fields)

    from sqlalchemy.exc import DataError

    @app.errorhandler(DataError)
    def handle_data_error(exc: DataError):
        # The database refused a value (out-of-range number, NUL byte...): bad input that
        # validation should have caught.  Logged so the gap gets closed, never a 500.
        log.warning(
            "database refused a value on %s %s: %s",
            request.method,
            request.path,
            str(exc.orig).splitlines()[0] if exc.orig else exc,
        )
        return error_response(
            400, "bad_request", _("The request contains a value that cannot be stored.")
        )

    from sqlalchemy.exc import SQLAlchemyError

    @app.errorhandler(SQLAlchemyError)
    def handle_database_error(exc: SQLAlchemyError):
        if str(getattr(getattr(exc, "orig", None), "sqlstate", "") or "").startswith("40"):
            # Deadlock or serialization failure: the request lost a race and may be retried.
            log.warning(
                "transaction conflict on %s %s: %s",
                request.method,
                request.path,
                str(exc.orig).splitlines()[0] if str(exc.orig) else "",
            )
            return error_response(
                409, "conflict", _("The request conflicts with a concurrent change. Try again.")
            )
        if is_connection_failure(exc):
            return database_unavailable(exc)
        return handle_unexpected(exc)

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", _("Internal server error."))
