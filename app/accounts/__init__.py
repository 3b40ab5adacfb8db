"""Accounts: regions, districts, schools, users, roles and API tokens; log-in by password
(pages) and by bearer token (API).

Seams for other features:
- :func:`app.accounts.auth.actor` — the acting user of this request (session or bearer
  token), or ``None``; services take it as their first argument.
- :func:`app.accounts.auth.principal_route` / :func:`app.accounts.auth.principal` — for a
  hot read-only view: the bearer token's light, read-only
  :class:`app.accounts.principal.Principal` (same checks and role look-ups as ``User``,
  no ORM loading), or the session's user; with ``principal_route(reads=...)`` the
  view's first one-row read is done in the token's statement and taken with
  :func:`app.accounts.auth.read_with_principal`.
- :mod:`app.accounts.services` — typed functions over the models (``get_district``,
  ``list_districts``, ``list_schools``, ``get_user_by_public_id``, ``create_user``,
  ``assign_role``, ``issue_token``, ``revoke_token``, ``user_for_token``,
  ``principal_for_token``, ``principal_for_token_with``); the models
  (``User``, ``Role``, ``District``, ``School``) are read, never written, by other features.
- Signal sent (after commit): :data:`app.signals.user_logged_in` with the app as sender
  (``user``, ``method`` = ``"password"`` or ``"token"``).

Nothing here imports another feature.
"""

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
