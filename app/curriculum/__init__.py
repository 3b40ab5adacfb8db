from flask import Flask


def init_app(app: Flask) -> None:
    from app.curriculum import models  # noqa: F401
