"""Digital portraits and explained recommendations (issue 12).

Evidence comes from the LRS (answers of the exercise player plugin, scored H5P and other
statements, time on task); a learner model per knowledge point (BKT fitted by EM, Elo
for sparse skills) turns it into mastery; the recommender proposes resources for the
weak knowledge points of this and last week of the class teaching calendar.

Public functions for other features (stable): :func:`services.queries.mastery_of`
(a student's mastery per skill) and the signals ``personal_data_export`` and
``personal_data_erase`` of :mod:`app.signals`.  Everything read from other features
goes through :mod:`app.portraits.sources`.  See docs/portraits.md.
"""

from flask import Flask


def init_app(app: Flask) -> None:
    """Registered in app.FEATURES: tables, blueprints, API, CLI and receivers."""
    from app.extensions import api as rest_api
    from app.portraits import api, cli, demo, models, receivers, views  # noqa: F401

    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    app.cli.add_command(cli.portraits_cli)
    receivers.connect(app)
    demo.register()
    from app import plugins

    slots = plugins.registry(app).slots
    slots.setdefault("main_nav", []).append(views.nav_links)
    # The LTI week page (a student launched from her LMS) shows her recommendations.
    slots.setdefault("lti_week_bottom", []).append(views.recommendations_box)
