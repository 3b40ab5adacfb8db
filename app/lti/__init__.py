from flask import Flask


def init_app(app: Flask) -> None:
    """Registered in app.FEATURES; the lti feature wires its blueprints, CLI and signal receivers here."""
