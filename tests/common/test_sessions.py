"""app/common/sessions.py: Flask's cookie session, skipped for requests without cookies,
with Flask's own answers."""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface

from app.common.sessions import SessionInterface


def test_the_site_uses_the_cookie_less_shortcut(app):
    assert isinstance(app.session_interface, SessionInterface)


def test_no_cookie_opens_an_empty_session_without_the_signer(app, monkeypatch):
    def no_signer(*args):
        raise AssertionError("the signer was built for a request without cookies")

    monkeypatch.setattr(SessionInterface, "get_signing_serializer", no_signer)
    with app.test_request_context("/api/v1/health"):
        from flask import request

        session = app.session_interface.open_session(app, request)
        assert dict(session) == {} and not session.modified and not session.accessed
        response = app.response_class("x")
        app.session_interface.save_session(app, session, response)
        assert "Set-Cookie" not in response.headers and "Vary" not in response.headers


def test_answers_match_flask_for_every_case(app):
    """Same Set-Cookie and Vary as Flask's interface: an untouched empty session, one that
    was read, one that was written, one that was emptied, and a request with a cookie."""
    ours, flasks = SessionInterface(), SecureCookieSessionInterface()
    signed = flasks.get_signing_serializer(app).dumps({"k": "v"})
    name = flasks.get_cookie_name(app)
    for cookie in (None, f"{name}={signed}", "other=1"):
        for touch in ("none", "read", "write", "clear"):
            headers = {"Cookie": cookie} if cookie else {}
            answers = []
            for interface in (ours, flasks):
                with app.test_request_context("/", headers=headers):
                    from flask import request

                    session = interface.open_session(app, request)
                    if touch == "read":
                        session.get("k")
                    elif touch == "write":
                        session["k"] = "w"
                    elif touch == "clear":
                        session.clear()
                    response = app.response_class("x")
                    interface.save_session(app, session, response)
                    answers.append(
                        (
                            dict(session),
                            response.headers.get("Vary"),
                            # Without the signed value (it carries a timestamp).
                            [
                                (h.split("=", 1)[0], h.split(";", 1)[-1])
                                for h in response.headers.getlist("Set-Cookie")
                            ],
                        )
                    )
            assert answers[0] == answers[1], (cookie, touch, answers)


def test_a_login_still_sets_and_reads_the_session_cookie(client, make_user, login):
    user = make_user("teacher")
    login(user)
    assert client.get_cookie("session") is not None
    # Logged in through the cookie on a page that needs it.
    assert client.get("/api/v1/auth/tokens").status_code == 200
