"""Chromium on the administration screens: an administrator finds them in the menu,
creates LRS credentials (the secret is shown once), mistypes an LMS registration (her
input stays, the error is beside the field) and calls the API from the docs' "Try it
out" with a bearer token."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.accounts import services as accounts
from app.accounts.models import Role
from app.extensions import db
from app.xapi.models import LrsClient
from tests.browser import (
    DESKTOP,
    NEEDS_CHROMIUM,
    PHONE,
    add_user,
    log_in,
    logged_in,
    shot,
    site_fixture,
)
from tests.conftest import Orgs

pytestmark = NEEDS_CHROMIUM


def _seed():
    orgs = Orgs()
    add_user("admin@browser.test", "平台管理员", Role.PLATFORM_ADMIN)
    district = add_user(
        "district@browser.test", "区管理员", Role.DISTRICT_ADMIN, district=orgs.district
    )
    _, token = accounts.issue_token(district, "docs")
    return {"token": token, "district_id": orgs.district.id}


site = site_fixture("admin-browser", _seed)


def test_district_admin_creates_lrs_credentials_secret_shown_once(site, browser):
    base = site["base"]
    page = logged_in(browser, base, "district@browser.test", locale="zh-CN", viewport=DESKTOP)
    page.get_by_role("link", name="管理", exact=True).click()
    page.get_by_role("link", name="学习记录存储（xAPI）").click()
    expect(page.get_by_role("heading", name="学习记录存储（xAPI）")).to_be_visible()
    page.get_by_label("名称").fill("区级分析工具")
    page.locator("input[name=scopes][value='statements/read']").check()
    page.get_by_role("button", name="创建凭据").click()
    secret = page.locator("#lrs-new-secret-value")
    expect(secret).to_be_visible()
    value = secret.inner_text()
    assert len(value) >= 32
    shot(page, "admin-lrs-secret.png")
    with site["app"].app_context():
        client = db.session.execute(select(LrsClient)).scalar_one()
        assert client.name == "区级分析工具" and "statements/read" in client.scopes
    # Reloading the listing never shows the secret again.
    page.goto(f"{base}/admin/lrs/")
    expect(page.locator("#lrs-clients")).to_contain_text("区级分析工具")
    assert value not in page.content()
    page.context.close()


def test_lms_registration_with_a_bad_field_keeps_the_input(site, browser):
    base = site["base"]
    for locale, lang, error_text in (
        ("zh-CN", "zh_CN", "须为 http(s) 网址"),
        ("en", "en", "An http(s) URL"),
    ):
        page = logged_in(browser, base, "admin@browser.test", locale=locale, viewport=PHONE)
        page.goto(f"{base}/lti/admin?lang={lang}")
        form = page.locator("#lti-add-platform")
        form.locator("#lti-name").fill("学校 Moodle")
        form.locator("#lti-issuer").fill("https://moodle.school.example")
        form.locator("#lti-client_id").fill("client-1")
        form.locator("#lti-deployment_id").fill("1")
        form.locator("#lti-auth_login_url").fill("moodle.school.example/auth")
        form.locator("#lti-auth_token_url").fill("https://moodle.school.example/token")
        form.locator("#lti-key_set_url").fill("https://moodle.school.example/certs")
        form.locator("button[type=submit]").click()
        error = page.locator("#lti-auth_login_url-error")
        expect(error).to_contain_text(error_text)
        expect(page.locator("#lti-name")).to_have_value("学校 Moodle")
        expect(page.locator("#lti-auth_login_url")).to_have_value("moodle.school.example/auth")
        expect(page.locator("#lti-auth_login_url")).to_have_attribute("aria-invalid", "true")
        assert page.locator(".error-page").count() == 0
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot(page, f"admin-lti-error-{lang}.png")
        page.context.close()


def _try_it_out(page, site, name: str):
    operation = page.locator("#operations-xapi_api-post_api_v1_xapi_clients")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    body = {"district_id": site["district_id"], "name": name, "scopes": ["all"]}
    operation.locator("textarea.body-param__text").fill(json.dumps(body))
    operation.locator("button.execute").click()
    return operation.locator(".live-responses-table .response .response-col_status").first


@pytest.mark.parametrize("logged_in", [False, True], ids=["token-only", "token-and-cookie"])
def test_api_docs_try_it_out_with_a_bearer_token(site, browser, logged_in):
    base = site["base"]
    context = browser.new_context(locale="en", viewport=DESKTOP)
    # Logged in, the session cookie goes along; the bearer token decides.
    page = context.new_page()
    if logged_in:
        log_in(page, base, "district@browser.test")
    page.goto(f"{base}/api/docs")
    page.locator("button.authorize").first.click()
    dialog = page.locator(".dialog-ux")
    dialog.locator("input").first.fill(site["token"])
    dialog.locator("button.authorize").click()
    dialog.locator("button.btn-done").click()
    # The interceptor adds no CSRF header to a bearer request: the token alone passes.
    requests = []
    page.on("request", lambda r: requests.append(r) if "/xapi/clients" in r.url else None)
    expect(_try_it_out(page, site, f"docs {logged_in}")).to_have_text("201")
    assert requests and "x-csrftoken" not in requests[-1].headers
    shot(page, "admin-api-try-it-out.png")
    context.close()


def test_api_docs_try_it_out_with_the_session_cookie(site, browser):
    """Without "Authorize" the docs page sends its own CSRF token with the cookie."""
    base = site["base"]
    page = logged_in(browser, base, "district@browser.test", locale="en", viewport=DESKTOP)
    page.goto(f"{base}/api/docs")
    expect(_try_it_out(page, site, "cookie session")).to_have_text("201")
    page.context.close()
