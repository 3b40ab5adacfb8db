from flask import Flask


def init_app(app: Flask) -> None:
    from app.accounts import api, auth, cli, token_cache, views  # noqa: F401  (auth: loaders)
    from app.extensions import api as rest_api
    from app.extensions import login_manager

    login_manager.login_view = "accounts.login"
    login_manager.unauthorized_handler(auth.unauthorized)
    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    app.cli.add_command(cli.accounts_cli)
    token_cache.install()
