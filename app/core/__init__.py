"""Site-wide pieces: home, health check, language switch, API docs, security headers
(CSP with a per-request nonce: ``csp_nonce()`` in templates) and rate limits."""

from flask import Flask


def init_app(app: Flask) -> None:
    from app.core import headers, ratelimit, views

    ratelimit.init_app(app)
    headers.init_app(app)
    app.register_blueprint(views.bp)
    views.register_template_helpers(app)
