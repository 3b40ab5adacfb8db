"""Flask's signed-cookie session, without its work on requests that carry no cookie.

API clients (a player asking for presigned URLs, an LMS posting xAPI) send no cookie at
all.  Flask's ``SecureCookieSessionInterface`` still builds its itsdangerous signer to
open an empty session, and reads seven cookie settings to save it; together ~4 % of the
CPU of a presigned-URL request (py-spy, docs/media.md).  The answers are the same as
Flask's: an empty session when there is no cookie, no ``Set-Cookie`` and no
``Vary: Cookie`` for an empty session nobody touched.
"""

from __future__ import annotations

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin


class SessionInterface(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.environ.get("HTTP_COOKIE"):
            # What Flask answers when the session cookie is missing.
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not session and not session.modified and not session.accessed:
            return  # Flask would set no cookie and add no Vary header
        super().save_session(app, session, response)


def install(app: Flask) -> None:
    app.session_interface = SessionInterface()
