"""Who is asking: session cookie (pages) or bearer token (API)."""

from __future__ import annotations

from flask import current_app, g, request
from flask_login import current_user

from app.accounts import services
from app.accounts.models import User
from app.accounts.principal import Principal
from app.extensions import db, login_manager


def actor() -> User | None:
    """The logged-in user, or None for an anonymous request."""
    if current_user and current_user.is_authenticated:
        return current_user._get_current_object()
    return None


@login_manager.user_loader
def _load_user(public_id: str) -> User | None:
    user = services.get_user_by_public_id(public_id)
    return user if user is not None and user.is_active else None


@login_manager.request_loader
def _load_user_from_token(req) -> User | None:
    """A request that sends a bearer token is that token's user, or is refused.

    A wrong, revoked or expired token, or the token of a deleted or disabled account,
    gets 401 on every path, rather than being served as an anonymous reader: a client
    must learn that its token stopped working.
    """
    header = req.headers.get("Authorization", "")
    if header[:7].lower() != "bearer " or g.get("_shuyuan_bad_token"):
        return None
    user = services.user_for_token(header[7:].strip())
    if user is None:
        from app.errors import Unauthorized

        # Raised once; the error page rendered next sees an anonymous visitor.
        g._shuyuan_bad_token = True
        raise Unauthorized("The bearer token is invalid, expired or revoked.")
    # user_for_token noted when the token was last used (at most once a minute); the
    # request's own commit stores it (app/common/transaction.py).
    return user


def principal_route(view=None, *, reads=None):
    """Mark a read-only view whose caller is taken with :func:`principal`: a bearer
    token resolves to a light :class:`Principal` (app/accounts/principal.py) instead of
    an ORM user.  Such a view never reads ``current_user``/:func:`actor` for a bearer
    request (that would look the token up a second time).

    ``reads(view_args) -> (statement, params)``, when given, names the one-row Core
    SELECT the view reads first (``GET /api/v1/media/<id>/url``: its file).  A bearer
    request then reads the token and that row in one statement — the token is still
    checked in the database at every request, first — and the view gets the row with
    :func:`read_with_principal` instead of a second round trip."""

    def mark(view):
        view._shuyuan_principal = True
        if reads is not None:
            view._shuyuan_principal_reads = reads
        return view

    return mark if view is None else mark(view)


def is_principal_route() -> bool:
    view = current_app.view_functions.get(request.endpoint)
    return view is not None and getattr(view, "_shuyuan_principal", False)


def principal() -> Principal | User | None:
    """Who is asking, for a :func:`principal_route` view: the bearer token's principal
    (401 when the token is wrong, revoked or expired, or its account is disabled), else
    the session's user (pages and the browser's own API calls), else None."""
    if not bearer_request():
        return actor()
    if "_shuyuan_principal" in g:
        return g._shuyuan_principal
    raw = request.headers.get("Authorization", "")[7:].strip()
    view = current_app.view_functions.get(request.endpoint)
    reads = getattr(view, "_shuyuan_principal_reads", None)
    if reads is not None and request.view_args is not None:
        statement, params = reads(request.view_args)
        found, row = services.principal_for_token_with(raw, statement, params)
        if found is not None:
            g._shuyuan_principal_row = (statement, params, row)
    else:
        found = services.principal_for_token(raw)
    if found is None:
        from app.errors import Unauthorized

        # As _load_user_from_token: a later look at current_user sees an anonymous visitor.
        g._shuyuan_bad_token = True
        raise Unauthorized("The bearer token is invalid, expired or revoked.")
    g._shuyuan_principal = found
    return found


def read_with_principal(statement, params: dict):
    """The first row of ``statement`` with ``params`` (or None): the row read together
    with this request's principal when the view's :func:`principal_route` declared it
    (once), else read now on the request's connection."""
    kept = g.get("_shuyuan_principal_row")
    if kept is not None and kept[0] is statement and kept[1] == params:
        del g._shuyuan_principal_row  # handed out once: a second read sees the database
        return kept[2]
    return db.session.connection().execute(statement, params).first()


def bearer_request() -> bool:
    return request.headers.get("Authorization", "")[:7].lower() == "bearer "


def unauthorized():
    """Programs get the 401 envelope; people are sent to the login page."""
    from flask import redirect, url_for

    from app.errors import Unauthorized, wants_json

    if wants_json():
        raise Unauthorized("Log in or send a bearer token.")
    return redirect(url_for("accounts.login", next=request.full_path))
