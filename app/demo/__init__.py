"""Demo content for ``make run`` (``flask content demo``): districts, users, courses,
curriculum resources and calendars, built mostly through the accounts and catalog
services, so that the demo content looks like what users make.
"""

from flask import Flask


def init_app(app: Flask) -> None:
    from app.demo import cli

    app.cli.add_command(cli.content_cli)
