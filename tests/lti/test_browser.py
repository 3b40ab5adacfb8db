"""A real browser: Shuyuan in a cross-site iframe of the simulated LMS, cookies of the
launch flow unusable there, state and nonce kept through LTI platform storage
(postMessage ``lti.put_data`` / ``lti.get_data``)."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.browser import NEEDS_CHROMIUM
from tests.lti.helpers import published_resource

pytestmark = NEEDS_CHROMIUM


def test_cookie_less_launch_in_a_cross_site_iframe(chromium, live, platform, registered, make_user):
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

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

    def tool_arrived(frame) -> bool:
        return frame.name == "tool" and f"/resources/{content_id}" in frame.url

    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(page_url)
        frame = page.frame(name="tool")
        arrived = frame is not None and tool_arrived(frame)
        if not arrived:
            # The frame goes login -> platform auth -> launch -> resource page.
            try:
                frame = page.wait_for_event(
                    "framenavigated", predicate=tool_arrived, timeout=20_000
                )
                arrived = True
            except PlaywrightTimeoutError:
                frame = page.frame(name="tool")
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
        context.close()
