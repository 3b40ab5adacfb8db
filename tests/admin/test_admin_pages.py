"""Administration screens: the menu link, LMS connections (inline errors that keep the
input), LRS credentials (secret shown once, scopes, revoke, district scoping) and the
forwarding target; and the API's CSRF rule for bearer tokens versus cookie sessions."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select

from app.common.models import utcnow
from app.errors import Forbidden
from app.extensions import db
from app.lti.models import LtiIdentity, LtiPlatform
from app.lti.services import registrations
from app.xapi.models import ForwardTarget, LrsClient
from tests.conftest import csrf_token_from

MOODLE = {
    "issuer": "https://moodle.school.example",
    "client_id": "abc",
    "deployment_id": "1",
    "auth_login_url": "https://moodle.school.example/auth",
    "auth_token_url": "https://moodle.school.example/token",
    "key_set_url": "https://moodle.school.example/certs",
}


@pytest.fixture
def admin_on(client, login, make_user):
    """``admin_on("/admin/lrs/")`` logs a new district administrator in (``role=`` for
    another) and returns ``post(path, **form)``, which sends a form as from that page: with
    its CSRF token."""

    def on(page: str, role: str = "district_admin"):
        login(make_user(role))
        token = csrf_token_from(client, page)

        def post(path: str, **form):
            return client.post(path, data={"csrf_token": token, **form})

        return post

    return on


def test_menu_links_admins_to_the_administration_page(client, login, make_user):
    teacher = make_user("teacher")
    login(teacher)
    page = client.get("/").get_data(as_text=True)
    assert "/admin" not in re.findall(r'href="(/admin[^"]*)"', page)
    assert client.get("/admin").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token_from(client, "/")})

    admin = make_user("district_admin")
    login(admin)
    page = client.get("/?lang=zh_CN").get_data(as_text=True)
    assert 'href="/admin"' in page and "管理" in page
    hub = client.get("/admin").get_data(as_text=True)
    assert 'href="/lti/admin"' in hub and 'href="/admin/lrs/"' in hub
    assert "学习记录存储" in hub


def test_lms_form_keeps_input_and_shows_errors_inline(admin_on, orgs):
    post = admin_on("/lti/admin", role="platform_admin")
    response = post(
        "/lti/admin/platforms?lang=zh_CN",
        **MOODLE
        | {
            "name": "学校 Moodle",
            "auth_login_url": "not a url",
            "key_set_url": "",
            "school_id": str(orgs.school.id),
        },
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'value="学校 Moodle"' in page and 'value="not a url"' in page
    assert 'id="lti-auth_login_url-error"' in page and 'id="lti-key_set_url-error"' in page
    assert "http(s)" in page and "必填" in page
    assert "The registration is not complete" not in page
    assert db.session.execute(select(LtiPlatform)).first() is None


def test_lms_form_registers_a_platform(client, admin_on, orgs):
    post = admin_on("/lti/admin", role="platform_admin")
    response = post("/lti/admin/platforms", **MOODLE, school_id=str(orgs.school.id))
    assert response.status_code == 302
    assert db.session.execute(select(LtiPlatform.issuer)).scalar_one() == (
        "https://moodle.school.example"
    )
    page = client.get("/lti/admin").get_data(as_text=True)
    assert 'id="lti-launches"' in page and 'id="lti-grades"' in page


def test_registration_link_with_junk_hours_is_an_inline_error(admin_on):
    post = admin_on("/lti/admin")
    response = post(
        "/lti/admin/registration-links?lang=zh_CN", district_id="x", hours="999", note="给 Moodle"
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="lti-link-district-error"' in page and 'value="给 Moodle"' in page


def test_lrs_credentials_secret_shown_once_and_revoked(client, admin_on, orgs):
    post = admin_on("/admin/lrs/")
    response = post(
        "/admin/lrs/clients",
        name="分析工具",
        district_id=str(orgs.district.id),
        school_id=str(orgs.school.id),
        scopes=["statements/write", "statements/read/mine"],
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    secret = re.search(r'id="lrs-new-secret-value">([^<]+)<', page).group(1)
    key = re.search(r'id="lrs-new-key">([^<]+)<', page).group(1)
    client_row = db.session.execute(select(LrsClient)).scalar_one()
    assert client_row.key == key and client_row.school_id == orgs.school.id
    assert client_row.scopes == ["statements/write", "statements/read/mine"]
    assert client_row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    # Shown once: the listing never shows it again.
    assert secret not in client.get("/admin/lrs/").get_data(as_text=True)
    # The credentials work at the LRS until revoked.
    import base64

    basic = {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}
    headers = {**basic, "X-Experience-API-Version": "2.0.0"}
    assert client.get("/xapi/statements", headers=headers).status_code in (200, 403)
    response = post(f"/admin/lrs/clients/{client_row.id}/revoke")
    assert response.status_code == 302
    assert client.get("/xapi/statements", headers=headers).status_code == 401


def test_lrs_form_errors_are_inline_and_keep_input(admin_on, orgs):
    post = admin_on("/admin/lrs/")
    response = post("/admin/lrs/clients?lang=zh_CN", name="", district_id=str(orgs.district.id))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="lrs-name-error"' in page and 'id="lrs-scopes-error"' in page
    assert "至少" in page  # "choose at least one scope" in Chinese
    # A school of another district is refused beside the school field.
    response = post(
        "/admin/lrs/clients?lang=zh_CN",
        name="工具",
        district_id=str(orgs.district.id),
        school_id=str(orgs.review_school.id),
        scopes=["all"],
    )
    assert response.status_code == 422
    assert 'id="lrs-school-error"' in response.get_data(as_text=True)
    assert 'value="工具"' in response.get_data(as_text=True)
    assert db.session.execute(select(LrsClient)).first() is None


def test_district_admin_cannot_make_credentials_for_another_district(
    client, login, make_user, admin_on, orgs
):
    post = admin_on("/admin/lrs/")
    response = post(
        "/admin/lrs/clients", name="x", district_id=str(orgs.review_district.id), scopes=["all"]
    )
    assert response.status_code == 403
    assert db.session.execute(select(LrsClient)).first() is None
    assert client.get("/admin/lrs/").status_code == 200
    teacher = make_user("teacher")
    post("/logout")
    login(teacher)
    assert client.get("/admin/lrs/").status_code == 403


def test_forwarding_target_is_saved_and_errors_are_inline(client, admin_on, orgs):
    post = admin_on("/admin/lrs/")

    def forward(district, **form):
        return post("/admin/lrs/forwarding", district_id=str(district.id), **form)

    response = forward(orgs.district, endpoint="ftp://nope", version="1.0.3", active="on")
    assert response.status_code == 422
    assert 'id="fw-endpoint-error"' in response.get_data(as_text=True)
    assert 'value="ftp://nope"' in response.get_data(as_text=True)
    response = forward(
        orgs.district,
        endpoint="https://lrs.district.example/xapi",
        username="k",
        password="s3cret",
        version="2.0.0",
        active="on",
    )
    assert response.status_code == 302
    target = db.session.execute(select(ForwardTarget)).scalar_one()
    assert target.endpoint == "https://lrs.district.example/xapi/" and target.password == "s3cret"
    page = client.get("/admin/lrs/").get_data(as_text=True)
    assert "s3cret" not in page and "lrs.district.example" in page
    # Changing the address without a password keeps the stored one.
    forward(orgs.district, endpoint="https://lrs2.district.example/xapi/", version="2.0.0")
    db.session.expire_all()
    target = db.session.execute(select(ForwardTarget)).scalar_one()
    assert target.password == "s3cret" and target.active is False
    # Another district's forwarding is not hers.
    response = forward(orgs.review_district, endpoint="https://evil.example/xapi/")
    assert response.status_code == 403


def test_api_writes_with_a_bearer_token_need_no_csrf_but_cookie_sessions_do(
    client, login, make_user, token_for, orgs
):
    admin = make_user("district_admin")
    bearer = token_for(admin)
    body = {"district_id": orgs.district.id, "name": "via API", "scopes": ["all"]}
    # A bearer token (what "Try it out" sends after "Authorize") needs no CSRF token,
    # with or without the browser's session cookie beside it.
    assert client.post("/api/v1/xapi/clients", json=body, headers=bearer).status_code == 201
    login(admin)
    assert client.post("/api/v1/xapi/clients", json=body, headers=bearer).status_code == 201
    # The session cookie alone is what a forged cross-site request would carry.
    response = client.post("/api/v1/xapi/clients", json=body)
    assert response.status_code == 400
    assert "CSRF" in response.get_json()["error"]["message"]


def test_recent_launches_are_scoped_to_the_admins_districts(make_user, orgs):
    deployment = registrations.add_platform(
        None,
        {
            "issuer": "https://lms.example",
            "client_id": "c",
            "deployment_id": "d",
            "auth_login_url": "https://lms.example/auth",
            "auth_token_url": "https://lms.example/token",
            "key_set_url": "https://lms.example/jwks",
            "school": orgs.school.code,
            "name": "区 Moodle",
        },
        system=True,
    )
    here = make_user("student", school=orgs.school)
    there = make_user("student", school=orgs.review_school)
    for user, sub in ((here, "a"), (there, "b")):
        db.session.add(
            LtiIdentity(
                issuer="https://lms.example",
                sub=sub,
                platform_id=deployment.platform_id,
                user_id=user.id,
                last_launch_at=utcnow(),
            )
        )
    db.session.commit()
    mine = registrations.recent_launches(make_user("district_admin"))
    assert [launch.user_name for launch in mine] == [here.name]
    assert mine[0].platform_name == "区 Moodle" and mine[0].school.id == orgs.school.id
    everyone = registrations.recent_launches(make_user("platform_admin"))
    assert {launch.user_name for launch in everyone} == {here.name, there.name}
    with pytest.raises(Forbidden):
        registrations.recent_launches(make_user("teacher"))
