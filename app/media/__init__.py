from flask import Flask


def init_app(app: Flask) -> None:
    """Registered in app.FEATURES; the media feature wires its blueprints, CLI and signal receivers here."""
