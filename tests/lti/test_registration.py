"""Dynamic registration is no open proxy (issue 10, item 3): nothing is fetched without a
one-time link made by an administrator; private, loopback and metadata addresses are
refused unless allowed by config; redirects are not followed; errors do not tell what
answered inside; a link registers only in its own district."""

from __future__ import annotations

import re
import socket
from datetime import timedelta

import requests
from sqlalchemy import select

from app.common.events import commit
from app.common.models import utcnow
from app.extensions import db
from app.lti.models import LtiDeployment, LtiPlatform, LtiRegistrationLink
from app.lti.services import registrations
from tests.lti.helpers import registration_link


def _register(live, token, config_url, registration_token=None, **extra):
    with requests.Session() as browser:
        return browser.get(
            live + "/lti/register/" + token,
            params={
                "openid_configuration": config_url,
                "registration_token": registration_token or "",
                **extra,
            },
        )


def _config_url(platform) -> str:
    return platform.url + "/.well-known/openid-configuration"


def test_no_link_no_fetch(live, platform, orgs):
    # The old open endpoint: answered with help, fetches nothing.
    with requests.Session() as browser:
        old = browser.get(
            live + "/lti/register",
            params={"openid_configuration": _config_url(platform), "school": orgs.school.code},
        )
    assert old.status_code == 400
    unknown = _register(live, "not-a-link", _config_url(platform), platform.registration_token)
    assert unknown.status_code == 404
    assert platform.requested_paths == []
    assert db.session.execute(select(LtiPlatform)).first() is None


def test_private_addresses_are_refused_without_a_word_about_them(live, platform, orgs, app):
    app.config["LTI_REGISTRATION_ALLOW_HOSTS"] = []  # production default
    token = registration_link(orgs.district.id)
    with socket.socket() as probe:  # a loopback port where nothing listens
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    answers = [
        _register(live, token, url, platform.registration_token)
        for url in (
            _config_url(platform),  # loopback, something listens
            f"http://127.0.0.1:{closed_port}/.well-known/openid-configuration",
            f"http://localhost:{platform.port}/.well-known/openid-configuration",
            "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
            "http://10.1.2.3/.well-known/openid-configuration",
            "http://[::1]/.well-known/openid-configuration",
            "file:///etc/passwd",
        )
    ]
    assert [a.status_code for a in answers] == [422] * 7
    # One page whatever answered (or not): an open port, a closed one and an address
    # refused outright are indistinguishable; no resolver or socket errors.
    mains = {re.search(r"<main.*</main>", a.text, re.S).group(0) for a in answers[:6]}
    assert len(mains) == 1, mains
    assert "Errno" not in answers[1].text and "Connection" not in answers[1].text
    assert platform.requested_paths == []
    # The link was not spent by the refusals.
    assert db.session.execute(select(LtiRegistrationLink)).scalar_one().used_at is None


def test_allowed_host_by_config(live, platform, orgs, app):
    token = registration_link(orgs.district.id)
    app.config["LTI_REGISTRATION_ALLOW_HOSTS"] = []
    app.config["LTI_REGISTRATION_ALLOW_PRIVATE"] = True
    try:
        answer = _register(live, token, _config_url(platform), platform.registration_token)
    finally:
        app.config["LTI_REGISTRATION_ALLOW_PRIVATE"] = False
    assert answer.status_code == 200, answer.text[:500]


def test_redirects_are_not_followed(live, platform, orgs):
    token = registration_link(orgs.district.id)
    answer = _register(
        live, token, platform.url + "/redirect-to-config", platform.registration_token
    )
    assert answer.status_code == 422
    assert platform.requested_paths == ["/redirect-to-config"]


def test_a_link_registers_once_and_only_in_its_district(live, platform, orgs):
    token = registration_link(orgs.review_district.id)
    # A "school" parameter (the old way to choose the school) is ignored.
    answer = _register(
        live, token, _config_url(platform), platform.registration_token, school=orgs.school.code
    )
    assert answer.status_code == 200, answer.text[:500]
    deployment = db.session.execute(select(LtiDeployment)).scalar_one()
    assert deployment.district_id == orgs.review_district.id and deployment.school_id is None
    link = db.session.execute(select(LtiRegistrationLink)).scalar_one()
    assert link.used_at is not None and link.deployment_id == deployment.id
    assert (
        _register(live, token, _config_url(platform), platform.registration_token).status_code
        == 404
    )


def test_a_link_cannot_take_over_another_districts_registration(live, platform, orgs):
    registrations.add_platform(None, platform.registration(orgs.school.code), system=True)
    commit()
    before = db.session.execute(select(LtiPlatform)).scalar_one().key_set_url
    token = registration_link(orgs.review_district.id)
    answer = _register(live, token, _config_url(platform), platform.registration_token)
    assert answer.status_code == 409
    db.session.expire_all()
    stored = db.session.execute(select(LtiPlatform)).scalar_one()
    assert stored.key_set_url == before
    assert [d.district_id for d in stored.deployments] == [orgs.district.id]


def test_expired_and_revoked_links(live, platform, orgs, app, make_user, token_for):
    token = registration_link(orgs.district.id)
    link = db.session.execute(select(LtiRegistrationLink)).scalar_one()
    link.expires_at = utcnow() - timedelta(seconds=1)
    commit()
    assert (
        _register(live, token, _config_url(platform), platform.registration_token).status_code
        == 404
    )
    # Made and revoked through the API by the district's admin.
    admin = make_user("district_admin", district=orgs.district)
    client = app.test_client()
    made = client.post(
        "/api/v1/lti/registration-links",
        headers=token_for(admin),
        json={"district": orgs.district.code, "note": "Moodle"},
    )
    assert made.status_code == 201, made.json
    url = made.json["url"]
    assert url.startswith("http") and "/lti/register/" in url

    listed = client.get("/api/v1/lti/registration-links", headers=token_for(admin))
    assert [row["note"] for row in listed.json] == ["Moodle", ""]
    assert all("url" not in row and "token" not in str(row) for row in listed.json)
    assert (
        client.delete(
            f"/api/v1/lti/registration-links/{made.json['link']['id']}", headers=token_for(admin)
        ).status_code
        == 204
    )
    new_token = url.rsplit("/", 1)[-1]
    assert _register(live, new_token, _config_url(platform), "x").status_code == 404
    assert platform.requested_paths == []


def test_only_a_districts_admins_make_its_links(app, orgs, make_user, token_for, login):
    other = make_user("district_admin", district=orgs.review_district)
    teacher = make_user("teacher")
    client = app.test_client()

    for user, status in ((other, 403), (teacher, 403)):
        answer = client.post(
            "/api/v1/lti/registration-links",
            headers=token_for(user),
            json={"district": orgs.district.code},
        )
        assert answer.status_code == status, answer.json
    # The admin page: a district admin makes a link for her district.
    admin = make_user("district_admin", district=orgs.district)
    browser = login(admin)
    page = browser.get("/lti/admin").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    made = browser.post(
        "/lti/admin/registration-links",
        data={"csrf_token": csrf, "district_id": orgs.district.id, "hours": "24", "note": "LMS"},
    )
    assert made.status_code == 200
    assert re.search(
        r'id="lti-new-link">http[^<]+/lti/register/[\w-]+<', made.get_data(as_text=True)
    )
    refused = browser.post(
        "/lti/admin/registration-links",
        data={"csrf_token": csrf, "district_id": orgs.review_district.id},
    )
    assert refused.status_code == 403
    assert db.session.execute(select(LtiRegistrationLink)).scalars().all()[0].note == "LMS"


def test_cli_makes_a_link(app, orgs):
    result = app.test_cli_runner().invoke(
        args=[
            "lti",
            "registration-link",
            "--school",
            orgs.school.code,
            "--base-url",
            "https://s.test",
        ]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("https://s.test/lti/register/")
    link = db.session.execute(select(LtiRegistrationLink)).scalar_one()
    assert link.school_id == orgs.school.id and link.district_id == orgs.district.id
    bad = app.test_cli_runner().invoke(args=["lti", "registration-link"])
    assert bad.exit_code != 0
