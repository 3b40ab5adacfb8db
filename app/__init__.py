"""Shuyuan application factory."""

from __future__ import annotations

import importlib
import logging

from flask import Flask, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.config import PROJECT_ROOT, load_config
from app.extensions import api, babel, csrf, db, login_manager, migrate

# Feature packages, each with ``init_app(app)`` that registers its blueprints, CLI and
# signal receivers.  Order matters only for template and URL overrides (none today).
FEATURES = [
    "app.core",
    "app.jobs",
    "app.accounts",
    "app.catalog",
    "app.curriculum",
    "app.media",
    "app.search",
    "app.xapi",
    "app.lti",
    "app.portraits",
    "app.demo",
]


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(load_config(config))
    app.instance_path = app.config["INSTANCE_PATH"]
    logging.basicConfig(level=app.config.get("LOG_LEVEL", logging.INFO))

    if app.config["BEHIND_PROXY"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)

    db.init_app(app)
    migrate.init_app(
        app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True, compare_type=True
    )
    login_manager.init_app(app)
    csrf.init_app(app)
    api.init_app(app)

    from app import i18n

    i18n.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)

    from app.common import events

    with app.app_context():
        events.install()

    from app.common import transaction

    transaction.init_app(app)

    # Registered after Api.init_app so that our envelope replaces flask-smorest's.
    from app.errors import register_error_handlers

    register_error_handlers(app)
    _protect_forms(app)

    for name in FEATURES + app.config.get("EXTRA_FEATURES", []):
        importlib.import_module(name).init_app(app)

    from app import plugins

    plugins.load_plugins(app)
    return app


# Prefixes whose requests never carry a form from our pages: token-authenticated APIs,
# LTI (signed JWTs) and xAPI (Basic auth).  Features add theirs at init.
CSRF_EXEMPT_PREFIXES: list[str] = ["/lti/", "/xapi/", "/healthz"]


def _protect_forms(app: Flask) -> None:
    from app.accounts.auth import bearer_request

    @app.before_request
    def check_csrf():
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return
        if any(
            request.path.startswith(p)
            for p in CSRF_EXEMPT_PREFIXES + app.config.get("CSRF_EXEMPT_PREFIXES", [])
        ):
            return
        # A bearer token is not sent by browsers on their own, so it cannot be forged
        # cross-site; an API call with the session cookie must send X-CSRFToken.
        if request.path.startswith("/api/") and (bearer_request() or not request.cookies):
            return
        csrf.protect()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    # WAL lets readers run beside the one writer; the busy timeout makes concurrent
    # writers (two gunicorn workers, an enrolment race) wait instead of failing.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
