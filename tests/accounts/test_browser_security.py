"""The headers as a real browser enforces them (headless Chromium): an injected inline
script without the nonce does not run, another site cannot frame the pages, and the API
docs work under the policy, "Try it out" included with a bearer token."""

from __future__ import annotations

from app.accounts import services as accounts
from app.accounts.models import Role
from tests.browser import NEEDS_CHROMIUM, add_user, site_fixture
from tests.conftest import Orgs

pytestmark = NEEDS_CHROMIUM


def _seed():
    user = add_user("t@browser.test", "Teacher T", Role.TEACHER, school=Orgs().school)
    return {"token": accounts.issue_token(user, "browser")[1]}


site = site_fixture("security-browser", _seed)


def test_injected_inline_script_is_blocked(site, browser):
    base = site["base"]
    page = browser.new_page()
    page.goto(f"{base}/login")
    outcome = page.evaluate(
        """() => new Promise(resolve => {
            document.addEventListener('securitypolicyviolation',
                e => resolve({directive: e.effectiveDirective, ran: !!window.injected}));
            const script = document.createElement('script');
            script.textContent = 'window.injected = true';
            document.body.appendChild(script);
        })"""
    )
    assert outcome == {"directive": "script-src-elem", "ran": False}
    assert page.evaluate("() => window.injected") is None
    page.close()


def test_another_site_cannot_frame_the_pages(site, browser):
    base = site["base"]
    page = browser.new_page()
    # localhost is another origin than 127.0.0.1 for the browser.
    other = base.replace("127.0.0.1", "localhost")
    page.goto(f"{other}/healthz")
    page.set_content(f'<iframe id="victim" src="{base}/login"></iframe>')
    page.wait_for_load_state("load")
    frame = page.frame_locator("#victim")
    assert frame.locator("input[name=email]").count() == 0
    framed = next(f for f in page.frames if f != page.main_frame)
    assert framed.url.startswith("chrome-error://") or framed.url == "about:blank"
    page.close()


def test_api_docs_try_it_out_with_a_bearer_token(site, browser):
    base, token = site["base"], site["token"]
    page = browser.new_page()
    violations = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    page.goto(f"{base}/api/docs")
    page.locator("button.authorize").first.click()
    page.locator(".auth-container input").first.fill(token)
    page.locator(".auth-btn-wrapper button.authorize").first.click()
    page.locator("button.btn-done, .auth-btn-wrapper button.btn-done").first.click()
    operation = page.locator(".opblock-get").filter(has_text="/api/v1/me").first
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/me")) as answer:
        operation.locator("button.execute").click()
    assert answer.value.status == 200
    assert answer.value.request.headers["authorization"] == f"Bearer {token}"
    assert answer.value.json()["name"] == "Teacher T"
    assert not violations, violations
    page.close()
