from flask import Flask


def init_app(app: Flask) -> None:
    from app.demo import cli

    app.cli.add_command(cli.content_cli)
