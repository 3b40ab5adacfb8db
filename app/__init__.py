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
    "app.sharing",
    "app.portraits",
    "app.demo",
    "app.ops",
]


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(load_config(config))
    app.instance_path = app.config["INSTANCE_PATH"]
    logging.basicConfig(level=app.config.get("LOG_LEVEL", logging.INFO))

    from app.common import routing, sessions

    # Before any blueprint adds a route: every <int:...> in the site is bounded.
    routing.install(app)
    sessions.install(app)

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
    # "Try it out" in the API docs sends a bearer token (issued at /api/v1/auth/tokens).
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "An API token."}
    )

    from app.common import cache

    cache.init_app(app)

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

    from app.common import ratelimit

    # Last: the limits are bound to the routes every feature and plugin has added.
    ratelimit.bind_path_limits(app)
    return app


def _protect_forms(app: Flask) -> None:
    """CSRF on every form post.  Paths in this app's ``CSRF_EXEMPT_PREFIXES`` (LTI's signed
    JWTs, xAPI's Basic auth...; features add theirs with
    :func:`app.common.routing.add_csrf_exempt_prefix`) never carry a form of ours."""
    from app.accounts.auth import bearer_request

    @app.before_request
    def check_csrf():
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return
        if any(request.path.startswith(p) for p in app.config["CSRF_EXEMPT_PREFIXES"]):
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
