from flask import Flask


def init_app(app: Flask) -> None:
    from app.catalog import api, receivers, views
    from app.extensions import api as rest_api

    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    receivers.connect(app)
