"""Curriculum alignment and syllabus progress: CASE frameworks, alignment of resources
and course items, school classes, teaching calendars, "this week" and coverage."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Registered in app.FEATURES: blueprints, CLI, the demo loader and translations."""
    from app.curriculum import (
        api,
        cli,
        demo,
        models,  # noqa: F401  (tables on the metadata)
        views,
    )
    from app.extensions import api as rest_api

    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    app.cli.add_command(cli.curriculum_cli)
    demo.register()
