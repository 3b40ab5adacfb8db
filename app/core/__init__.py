"""Site-wide pieces: home, health check, language switch, API docs, security headers
(CSP with a per-request nonce: ``csp_nonce()`` in templates); it switches on the rate
limits of :mod:`app.common.ratelimit`, which features below it (accounts) use too.

This is the top of the site: its pages may import the features' public functions
(the home page shows the catalog's vocabularies, the headers allow the LMS origins of
:mod:`app.lti.origins`); no feature imports it."""

from flask import Flask


def init_app(app: Flask) -> None:
    from app.common import ratelimit
    from app.core import headers, views

    ratelimit.init_app(app)
    headers.init_app(app)
    app.register_blueprint(views.bp)
    views.register_template_helpers(app)
