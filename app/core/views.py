"""Site-wide pages: home, health check, language switch, API docs."""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    current_app,
    jsonify,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from sqlalchemy import text
from swagger_ui_bundle import swagger_ui_path

from app.catalog import vocab
from app.common.redirects import redirect_next
from app.extensions import db
from app.i18n import N_, current_language, flat_fields, translate_fields, translate_message
from app.plugins import render_slot

bp = Blueprint("core", __name__)


# Messages that services raise (in English) and pages show: listed here so the
# translation catalogue has them, shown through ``translate_message``.
KNOWN_MESSAGES = (
    N_("Log in first."),
    N_("Course not found."),
    N_("Resource not found."),
    N_("District not found."),
    N_("Enrolment for this course is closed."),
    N_("Invalid version."),
    N_("Kind cannot change."),
    N_("Create new content instead."),
    N_("Kind is required."),
    N_("Not ready to publish."),
    N_("A title is required before publishing."),
    N_("An extended course needs a category."),
    N_("A web link needs its address."),
    N_("Nothing archived to restore."),
    N_("Nothing is waiting for review."),
    N_("Only district admins review content."),
    N_("Only extended courses take enrolments."),
    N_("Only published content can be archived."),
    N_("Only students can enrol."),
    N_("Only teachers and administrators can create content."),
    N_("Only the course's owner sees its enrolments."),
    N_("Only the district's admins can change its review policy."),
    N_("Only the district's admins can review."),
    N_("Only the owner can discard the draft."),
    N_("Only the owner can withdraw."),
    N_("Only the owner or her district admin can restore this."),
    N_("Only the owner or her district admin can edit this."),
    N_("Only the owner or her district admin can edit this course."),
    N_("Only the owner or her district admin can edit this resource."),
    N_("Only the owner or her district admin can publish this course."),
    N_("Only the owner or her district admin can publish this resource."),
    N_("Only the owner or her district admin can archive this course."),
    N_("Only the owner or her district admin can archive this resource."),
    N_("Only the owner or her district admin can delete this course."),
    N_("Only the owner or her district admin can delete this resource."),
    N_("Password too short."),
    N_("The submitted data is not valid."),
    N_("There is no draft of a published version to discard."),
    N_("There is no draft to publish."),
    N_("This account is disabled."),
    N_("This course does not take enrolments."),
    N_("This version is waiting for review; withdraw it or wait for the decision."),
    N_("Token not found."),
    N_("Too many tags."),
    N_("Unknown resource."),
    N_("Wrong email or password."),
    N_("You are already enrolled in this course."),
    N_("You are already waitlisted in this course."),
    N_("You are not enrolled in this course."),
    N_("You cannot delete this user."),
    N_("Your account belongs to no school or district, so it cannot own content."),
    N_("Log in or send a bearer token."),
    N_("Not found."),
    N_("You are not allowed to do this."),
    N_("The CSRF token is missing."),
    N_("The CSRF token is invalid."),
    N_("The CSRF session token is missing."),
    N_("The CSRF tokens do not match."),
    N_("Internal server error."),
    N_("Too many failed logins for this account. Try again later."),
    N_("Too many requests. Try again later."),
    N_("The request conflicts with a concurrent change. Try again."),
    # marshmallow's messages for form fields
    N_("Missing data for required field."),
    N_("Not a valid URL."),
    N_("Not a valid integer."),
    N_("Shorter than minimum length 1."),
    N_("Longer than maximum length 200."),
    N_("Longer than maximum length 500."),
    N_("Longer than maximum length 100000."),
    N_("Longer than maximum length 50."),
    N_("Longer than maximum length 100."),
    N_("Must be greater than or equal to 1 and less than or equal to 100000."),
    N_("Must be one of: extended, curriculum."),
    N_("Length must be between 1 and 200."),
    N_("Length must be between 1 and 50."),
    N_("Must be one of: private, school, district, region."),
    N_("Must be one of: zh, en, zh-en."),
    N_("Not a valid boolean."),
    N_("Not a valid list."),
    N_("Must be after starts_at."),
    # werkzeug's descriptions of HTTP errors
    N_(
        "The requested URL was not found on the server. If you entered the URL manually"
        " please check your spelling and try again."
    ),
    N_("The method is not allowed for the requested URL."),
)


@bp.route("/healthz")
def healthz():
    """Liveness and database reachability, for load balancers and `make run` checks."""
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # any driver error means "not reachable" here
        db.session.rollback()
        database = f"unreachable: {type(exc).__name__}"
    status = 200 if database == "ok" else 503
    return jsonify(
        {
            "status": "ok" if status == 200 else "degraded",
            "database": database,
            "backend": db.engine.dialect.name,
        }
    ), status


@bp.route("/lang/<code>")
def set_language(code: str):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect_next(request.args.get("next"))


@bp.route("/admin")
def admin_home():
    """One place where administrators find every integration screen.  Features add their
    cards through the ``admin_links`` slot; each screen checks its own permissions."""
    from app.accounts.auth import actor
    from app.errors import Forbidden, Unauthorized

    user = actor()
    if user is None:
        raise Unauthorized("Log in first.")
    if not (user.is_platform_admin or user.is_district_admin()):
        raise Forbidden()
    return render_template("core/admin.html", links=render_slot("admin_links", user=user))


@bp.route("/api/docs")
def api_docs():
    return render_template("core/api_docs.html", spec_url=url_for("api-docs.openapi_json"))


@bp.route("/api/docs/assets/<path:filename>")
def api_docs_assets(filename: str):
    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)


def register_template_helpers(app: Flask) -> None:
    @app.template_global()
    def label(vocabulary: str, code: str | None) -> str:
        return vocab.label(vocabulary, code, current_language())

    @app.template_global()
    def vocabulary(name: str) -> list[tuple[str, str]]:
        english = current_language().startswith("en")
        return [
            (code, en if english else zh) for code, (zh, en) in vocab.VOCABULARIES[name].items()
        ]

    @app.template_global()
    def translated(obj, field: str) -> str:
        return obj.translated(field, current_language())

    @app.template_global()
    def org_name(org) -> str:
        if org is None:
            return ""
        return (org.name_en or org.name) if current_language().startswith("en") else org.name

    @app.template_global()
    def url_with(**changes) -> str:
        """The current URL with some query arguments changed (None removes one)."""
        args = request.args.to_dict()
        for key, value in changes.items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = value
        return url_for(request.endpoint, **(request.view_args or {}), **args)

    app.jinja_env.globals["render_slot"] = render_slot
    app.jinja_env.globals["translate_message"] = translate_message
    app.jinja_env.globals["translate_fields"] = translate_fields
    app.jinja_env.globals["flat_fields"] = flat_fields
    app.jinja_env.filters["translate_message"] = translate_message
