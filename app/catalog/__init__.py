from flask import Flask


def duration_text(seconds) -> str:
    """A media length as cards show it: ``8:02`` or ``1:02:05``."""
    try:
        total = int(round(float(seconds)))
    except (TypeError, ValueError):
        return ""
    if total < 0:
        return ""
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def init_app(app: Flask) -> None:
    from app.catalog import api, receivers, views
    from app.extensions import api as rest_api

    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    app.jinja_env.globals["duration_text"] = duration_text
    receivers.connect(app)
