"""xAPI: Shuyuan's Learning Record Store (``/xapi/``), the emission of the platform's
own learning events as statements, and forwarding to a district's external LRS.

See docs/xapi.md for the vocabulary, credentials and the conformance suite.
"""

from flask import Flask


def init_app(app: Flask) -> None:
    """Registered in app.FEATURES; wires the LRS blueprint, CLI and signal receivers."""
    from app.common.routing import add_json_prefix
    from app.extensions import api as rest_api
    from app.xapi import api, cli, emit, views

    add_json_prefix(app, "/xapi/")
    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    app.cli.add_command(cli.xapi_cli)
    emit.connect(app)
