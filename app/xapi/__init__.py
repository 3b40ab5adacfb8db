"""xAPI: Shuyuan's Learning Record Store (``/xapi/``), the emission of the platform's
own learning events as statements, and forwarding to a district's external LRS.

Seams: features report learning through the documented signals of :mod:`app.signals`
(``learning_event``, ``student_enrolled``, ``student_unenrolled``; see
:mod:`app.xapi.emit`), never by importing this package.  Two readers import it, each in
one adapter module: the portraits read stored statements
(:mod:`app.portraits.sources`: ``models.Statement``, ``emit.vocab``,
``services.actor_for``) and a school edge node forwards them upstream
(:func:`app.xapi.services.forwarding.forward_due`, from
:mod:`app.sharing.services.mirror`).  Content players get a launch token from
:func:`app.xapi.services.issue_launch_token` (sent with
:func:`~app.xapi.services.launch_auth_header`).  Inside the package,
:data:`app.xapi.services.outbox_filled` (after commit) starts the forwarder.

See docs/xapi.md for the vocabulary, credentials and the conformance suite.
"""

from flask import Flask


def init_app(app: Flask) -> None:
    """Registered in app.FEATURES; wires the LRS blueprint, CLI and signal receivers."""
    from app import plugins
    from app.common.routing import add_json_prefix
    from app.extensions import api as rest_api
    from app.xapi import admin_views, api, cli, emit, services, throttle, views

    add_json_prefix(app, "/xapi/")
    app.register_blueprint(views.bp)
    throttle.init_app(app)
    app.register_blueprint(admin_views.bp)
    plugins.registry(app).slots.setdefault("admin_links", []).append(admin_views.admin_card)
    rest_api.register_blueprint(api.blp)
    app.cli.add_command(cli.xapi_cli)
    emit.connect(app)
    services.outbox_filled.connect(services.start_forwarding, sender=app, weak=False)
