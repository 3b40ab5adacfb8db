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
    from app import plugins
    from app.curriculum.services import week_cache

    week_cache.install()
    plugins.registry(app).slots.setdefault("main_nav", []).append(_nav_links)
    from app.catalog.services import register_resource_filter
    from app.curriculum import filters

    register_resource_filter(app, filters.RESOURCE_FILTER)


def _nav_links(**context) -> str:
    """ "Textbooks" (the textbook-tree browser, for everyone), "Curriculum" and "This week"
    (signed-in users) in the main navigation."""
    from flask import url_for
    from flask_babel import gettext as _
    from markupsafe import escape

    from app.accounts.auth import actor

    links = [
        f'<a href="{url_for("curriculum.browse")}">{escape(_("Textbooks"))}</a>',
        f'<a href="{url_for("curriculum.index")}">{escape(_("Curriculum"))}</a>',
    ]
    if actor() is not None:
        links.append(f'<a href="{url_for("curriculum.this_week")}">{escape(_("This week"))}</a>')
    return "".join(links)
