from flask import Flask


def init_app(app: Flask) -> None:
    from app.core import views

    app.register_blueprint(views.bp)
    views.register_template_helpers(app)
