"""A hostile H5P package, played in real Chromium, cannot read Shuyuan's cookies, call the
API as the viewer or navigate the top page; a benign one still plays and its statement
reaches the LRS.  Run once with the opaque-origin sandbox (one host) and once with a
separate content host (``CONTENT_ORIGIN``)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.accounts.models import ApiToken
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.common.events import commit
from app.extensions import db
from app.media.models import ProgressEvent
from app.xapi.models import Statement
from tests.browser import NEEDS_CHROMIUM, serve
from tests.media.conftest import upload_file
from tests.media.h5p_packages import probe_package

pytestmark = NEEDS_CHROMIUM


@pytest.fixture(params=["sandbox", "content-origin"])
def site(request, app, monkeypatch):
    """A live server recording every request it gets: (method, host, path, Origin)."""
    seen: list[tuple[str, str, str, str]] = []

    def recording(environ, start_response):
        seen.append(
            (
                environ["REQUEST_METHOD"],
                environ.get("HTTP_HOST", ""),
                environ.get("PATH_INFO", ""),
                environ.get("HTTP_ORIGIN", ""),
            )
        )
        return app(environ, start_response)

    with serve(recording) as main:
        if request.param == "content-origin":
            # Two names of the loopback address are two origins: cookies of one never reach
            # the other.  Read per request, so set once the server has its port.
            monkeypatch.setitem(app.config, "CONTENT_ORIGIN", app_content_origin(main))
        yield {"base": main, "seen": seen, "mode": request.param}


def _published_package(client, teacher, token_for, mode: str) -> str:
    from flask import current_app

    teacher = db.session.merge(teacher)
    resource = catalog.create_content(
        teacher, Resource, {"kind": "interactive", "title": f"互动 {mode}", "visibility": "school"}
    )
    commit()
    content_id = resource.content_id
    answer = upload_file(
        current_app.test_client(),
        token_for(teacher),
        content_id,
        f"{mode}.h5p",
        probe_package(mode),
    )
    assert answer.status_code == 200, answer.get_json()
    catalog.submit_content(db.session.merge(teacher), Resource, content_id)
    commit()
    return content_id


def _login(page, base, email):
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", "password123")
    page.click("main form button[type=submit]")
    page.wait_for_load_state()


def test_hostile_package_is_contained_and_benign_one_reaches_the_lrs(
    browser, site, client, make_user, token_for
):
    teacher = make_user("teacher")
    student = make_user("student")
    student_email, student_id = student.email, student.id
    hostile = _published_package(client, teacher, token_for, "hostile")
    benign = _published_package(client, teacher, token_for, "benign")
    base, seen = site["base"], site["seen"]

    context = browser.new_context()
    try:
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.on("pageerror", lambda error: console.append(str(error)))
        _login(page, base, student_email)
        session_cookies = [c["value"] for c in context.cookies() if c["value"]]
        assert session_cookies, "the viewer must be logged in for the attack to matter"

        page.goto(f"{base}/resources/{hostile}")
        frame_element = page.wait_for_selector("iframe.h5p-frame")
        assert frame_element.get_attribute("sandbox") == "allow-scripts"
        frame_src = frame_element.get_attribute("src")
        if site["mode"] == "content-origin":
            assert frame_src.startswith(app_content_origin(base))
        frame = page.frame_locator("iframe.h5p-frame")
        try:
            text = frame.locator("#probe-results").text_content(timeout=30_000)
        except Exception:
            print("\n".join(console), [row for row in seen if "/media/" in row[2]])
            print(frame.locator("body").inner_html(timeout=1000))
            raise
        results = json.loads(text)

        # 1. No cookie of Shuyuan: the frame's origin is opaque, the page is out of reach.
        assert results["origin"] == "null"
        for name in ("cookie", "parentCookie", "topCookie"):
            assert results[name].startswith("blocked"), (name, results[name])
        assert not any(value in json.dumps(results) for value in session_cookies)
        # 2. No API call as the viewer: refused before leaving the browser.
        for name in ("apiMe", "apiTokens", "apiTokenPost", "elsewhere"):
            assert results[name].startswith("blocked"), (name, results[name])
        # 3. The top page stays where it is; no pop-up either.
        assert results["popup"] in ("read: null", "blocked: SecurityError") or results[
            "popup"
        ].startswith("blocked"), results["popup"]
        assert page.url == f"{base}/resources/{hostile}"

        # A package file opened directly (not in the frame) is just as contained.
        direct_url = frame_src.split("~player/")[0] + "content/direct.html"
        if direct_url.startswith("/"):
            direct_url = base + direct_url
        direct = context.new_page()
        direct.goto(direct_url)
        opened = json.loads(direct.text_content("#direct"))
        assert opened["origin"] == "null" and opened["cookie"].startswith("blocked")
        direct.close()

        # The benign package plays and its statement goes through the page to the LRS.
        page.goto(f"{base}/resources/{benign}")
        # The page's CSP forbids eval, so no wait_for_function: the listener marks the
        # page when the statement is reported stored, and the test waits for the mark.
        page.evaluate(
            "document.addEventListener('shuyuan:reported', e => {"
            " if (e.detail.verb === 'xapi' && e.detail.status === 201)"
            " document.body.dataset.testXapiStored = '1'; });"
        )
        player = page.frame_locator("iframe.h5p-frame")
        player.locator("#probe-answer").click(timeout=30_000)
        page.wait_for_selector("body[data-test-xapi-stored]", timeout=30_000)
        assert page.url == f"{base}/resources/{benign}"
    finally:
        context.close()

    # Nothing the hostile package tried reached the server.
    paths = [path for _, _, path, _ in seen]
    assert "/stolen-navigation" not in paths and "/stolen-popup" not in paths
    assert not [row for row in seen if row[2].startswith("/api/") and row[3] == "null"]
    assert "/api/v1/me" not in paths and "/api/v1/auth/tokens" not in paths
    db.session.expire_all()
    assert (
        db.session.execute(
            select(func.count(ApiToken.id)).where(ApiToken.user_id == student_id)
        ).scalar_one()
        == 0
    )
    # Package files never went to the main host in content-origin mode.
    if site["mode"] == "content-origin":
        package_hosts = {host for _, host, path, _ in seen if path.startswith("/media/pkg/")}
        assert package_hosts and all(host.startswith("localhost:") for host in package_hosts)

    verbs = set(
        db.session.execute(
            select(ProgressEvent.verb).where(ProgressEvent.user_id == student_id)
        ).scalars()
    )
    assert {"opened", "xapi"} <= verbs
    statements = db.session.execute(select(Statement)).scalars().all()
    answered = [s.full for s in statements if s.full["verb"]["id"].endswith("/answered")]
    assert len(answered) == 1
    assert answered[0]["result"]["score"]["scaled"] == 1
    grouping = answered[0]["context"]["contextActivities"]["grouping"]
    assert grouping[0]["id"].endswith(f"/resources/{benign}")


def app_content_origin(base: str) -> str:
    return base.replace("127.0.0.1", "localhost")
