"""A real browser: Shuyuan in a cross-site iframe of the simulated LMS, cookies of the
launch flow unusable there, state and nonce kept through LTI platform storage
(postMessage ``lti.put_data`` / ``lti.get_data``)."""

from __future__ import annotations

import os
from urllib.parse import urlencode

import pytest

from tests.lti.helpers import published_resource

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed"),
]


def test_cookie_less_launch_in_a_cross_site_iframe(live, platform, registered, make_user):
    from playwright.sync_api import sync_playwright

    content_id = published_resource(make_user("teacher"), title="框架里的练习")
    hint = platform.prepare(sub="stu-frame", custom={"resource": content_id})
    # The LMS is http://127.0.0.1:<port>, the tool http://localhost:<port>: different sites,
    # so the tool's (SameSite=Lax by default over http) state cookie is not sent with the
    # LMS's cross-site form post into the frame.
    tool = live.replace("127.0.0.1", "localhost")
    login = (
        tool + "/lti/login?" + urlencode(platform.login_params(hint, lti_storage_target="_parent"))
    )
    page_url = platform.url + "/course-page?" + urlencode({"tool_login": login})
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page()
            page.goto(page_url)
            arrived = False
            for _ in range(100):
                frame = page.frame(name="tool")
                if frame is not None and f"/resources/{content_id}" in frame.url:
                    arrived = True
                    break
                page.wait_for_timeout(200)
            log = page.evaluate("window.ltiLog")
            assert arrived, (
                frame.url if frame else None,
                log,
                frame.content()[:800] if frame else "",
            )
            # get_data is asked only by the cookie-less launch page: the state came back
            # from the platform's storage, not from a cookie.
            assert "lti.put_data" in log and "lti.get_data" in log
            frame.wait_for_load_state()
            assert "框架里的练习" in frame.content()
        finally:
            browser.close()
