"""Site-wide pages: home, health check, language switch, API docs."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template, request, send_from_directory, session, url_for
from sqlalchemy import text
from swagger_ui_bundle import swagger_ui_path

from app.catalog import vocab
from app.extensions import db
from app.hooks import render_slot
from app.i18n import current_language

bp = Blueprint("core", __name__)


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
    return jsonify({"status": "ok" if status == 200 else "degraded", "database": database,
                    "backend": db.engine.dialect.name}), status


@bp.route("/lang/<code>")
def set_language(code: str):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    target = request.args.get("next") or url_for("catalog.browse")
    # Only same-site paths, so the switch cannot be used as an open redirect.
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("catalog.browse")
    return redirect(target)


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
        return [(code, en if english else zh) for code, (zh, en) in vocab.VOCABULARIES[name].items()]

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
