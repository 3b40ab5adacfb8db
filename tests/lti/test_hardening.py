"""Holes found by the hardening sweep (issue 10, item 5), each closed and kept closed:
login CSRF through the cookie-less continuation, a login state used by another client of
the same issuer, visibility checked per user instead of per deployment, a district admin
seeing other districts' deployments, syllabus weeks ≤ 0, and megabyte login hints."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import requests
from sqlalchemy import func, select

from app.common.events import commit
from app.extensions import db
from app.lti.models import LtiIdentity
from app.lti.services import registrations
from tests.lti.helpers import published_resource, refused
from tests.lti.platform import parse_form


def _cookie_less_pending(platform, live, browser, content_id) -> dict:
    """An attacker's own cookie-less launch, stopped at the continuation: everything a
    continuation needs (pending, state, even the binding) is known to him."""
    hint = platform.prepare(sub="attacker", custom={"resource": content_id})
    params = platform.login_params(hint, lti_storage_target="_parent")
    page = browser.get(live + "/lti/login", params=params, allow_redirects=False)
    state = re.search(r'"(state-[0-9a-f]+)"', page.text).group(1)
    binding = re.search(r'\["binding_" \+ "state-[0-9a-f]+", "([^"]+)"\]', page.text).group(1)
    auth_url = re.search(r'var authUrl = "([^"]+)"', page.text).group(1).replace("\\u0026", "&")
    browser.cookies.clear()
    action, fields = platform.authorize(browser, auth_url)
    answer = browser.post(action, data=fields, allow_redirects=False)
    _, form = parse_form(answer.text, "lti-continue")
    return {"pending": form["pending"], "state": state, "binding": binding}


def test_cookie_less_continuation_cannot_be_forced_on_another_browser(
    live, platform, registered, browser, make_user
):
    content_id = published_resource(make_user("teacher"))
    stolen = _cookie_less_pending(platform, live, browser, content_id)
    with requests.Session() as victim:
        # A page on the attacker's site auto-posts the continuation in the victim's
        # browser (login CSRF): the browser says where the form came from.
        forced = victim.post(
            live + "/lti/launch/continue",
            data=stolen,
            headers={"Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"},
            allow_redirects=False,
        )
        refused(forced, 403, "lti_state_mismatch")
        no_origin = victim.post(live + "/lti/launch/continue", data=stolen, allow_redirects=False)
        refused(no_origin, 403, "lti_state_mismatch")
        assert "session" not in victim.cookies
    # Our own page, in a browser without the binding in its platform storage, posts
    # nothing useful either: the binding is checked by the server.
    stolen = _cookie_less_pending(platform, live, browser, content_id)
    refused(
        browser.post(
            live + "/lti/launch/continue",
            data={**stolen, "binding": ""},
            headers={"Origin": live},
            allow_redirects=False,
        ),
        400,
        "lti_state_mismatch",
    )
    db.session.expire_all()
    assert db.session.execute(select(func.count(LtiIdentity.id))).scalar() == 0


def test_a_login_state_of_one_client_cannot_finish_another_clients_launch(
    live, platform, registered, browser, orgs
):
    # The same LMS (issuer) registered twice: two client ids, e.g. two Canvas keys.
    registrations.add_platform(
        None,
        platform.registration(orgs.school.code, client_id="second-client", name="second key"),
        system=True,
    )
    commit()
    hint = platform.prepare(sub="stu-cross")
    login = browser.get(
        live + "/lti/login",
        params=platform.login_params(hint, client_id="second-client"),
        allow_redirects=False,
    )
    query = parse_qs(urlparse(login.headers["Location"]).query)
    assert query["client_id"] == ["second-client"]
    # A token for the first client, carrying the state and nonce issued for the second.
    claims = platform.claims_for(platform.prepared[hint], query["nonce"][0])
    assert claims["aud"] == platform.client_id
    answer = browser.post(
        live + "/lti/launch",
        data={"id_token": platform.sign(claims), "state": query["state"][0]},
        allow_redirects=False,
    )
    refused(answer, 400, "lti_state_mismatch")


def test_visibility_is_scoped_by_the_launchs_deployment(
    live, platform, registered, browser, make_user, orgs
):
    # The same LMS serves a school of each district (two deployments).
    registrations.add_platform(
        None,
        platform.registration(orgs.review_school.code, deployment_id="dep-review"),
        system=True,
    )
    commit()
    review_only = published_resource(
        make_user("teacher", school=orgs.review_school),
        visibility="district",
        reviewer=make_user("district_admin", district=orgs.review_district),
    )
    # The student launches once through the review district's deployment...
    first = platform.launch(
        browser,
        live,
        platform.prepare(
            sub="stu-both", deployment_id="dep-review", custom={"resource": review_only}
        ),
    )
    assert first.status_code == 302, first.text[:600]
    # ... then a link of the first district's deployment must not open that content.
    with requests.Session() as again:
        through_other = platform.launch(
            again, live, platform.prepare(sub="stu-both", custom={"resource": review_only})
        )
        refused(through_other, 403, "lti_not_visible")


def test_district_admin_sees_only_her_districts_deployments(
    app, platform, orgs, make_user, token_for
):
    registrations.add_platform(None, platform.registration(orgs.school.code), system=True)
    registrations.add_platform(
        None,
        platform.registration(orgs.review_school.code, deployment_id="dep-review"),
        system=True,
    )
    commit()
    admin = make_user("district_admin", district=orgs.district)
    listed = app.test_client().get("/api/v1/lti/platforms", headers=token_for(admin))
    assert listed.status_code == 200, listed.json
    deployments = [d["deployment_id"] for p in listed.json for d in p["deployments"]]
    assert deployments == ["dep-1"]
    other = make_user("district_admin", district=orgs.review_district)

    listed = app.test_client().get("/api/v1/lti/platforms", headers=token_for(other))
    assert [d["deployment_id"] for p in listed.json for d in p["deployments"]] == ["dep-review"]


def test_syllabus_weeks_must_be_positive_and_bounded(
    live, platform, registered, browser, week_plan
):
    calendar = str(week_plan["calendar_id"])
    for week in ("0", "-1", "99999999999999999999"):
        with requests.Session() as student:
            response = platform.launch(
                student,
                live,
                platform.prepare(sub="stu-w", custom={"calendar": calendar, "week": week}),
            )
            refused(response, 400, "lti_bad_target")


def test_oversized_login_parameters_are_refused_not_echoed(live, platform, registered):
    hint = platform.prepare(sub="stu-big")
    for name in ("login_hint", "lti_message_hint", "iss", "client_id"):
        params = platform.login_params(hint)
        params[name] = "x" * 1_000_000
        with requests.Session() as browser:
            response = browser.post(live + "/lti/login", data=params, allow_redirects=False)
        refused(response, 400, "lti_bad_login")
        assert len(response.headers.get("Location", "")) == 0
    # A normal one still goes through.
    with requests.Session() as browser:
        ok = browser.post(
            live + "/lti/login", data=platform.login_params(hint), allow_redirects=False
        )
    assert ok.status_code == 302 and len(ok.headers["Location"]) < 2000


def test_a_refused_launch_spends_its_nonce(live, platform, registered, browser, orgs, make_user):
    """A token refused after validation (here: content the district cannot see) cannot
    be replayed later, when the reason for the refusal may be gone."""
    hidden = published_resource(
        make_user("teacher", school=orgs.review_school),
        visibility="district",
        reviewer=make_user("district_admin", district=orgs.review_district),
    )
    hint = platform.prepare(sub="stu-spent", custom={"resource": hidden})
    login = browser.get(
        live + "/lti/login", params=platform.login_params(hint), allow_redirects=False
    )
    action, fields = platform.authorize(browser, login.headers["Location"])
    refused(browser.post(action, data=fields, allow_redirects=False), 403, "lti_not_visible")
    refused(browser.post(action, data=fields, allow_redirects=False), 400, "lti_replay")
    # ... and the refusal left no user behind.
    db.session.expire_all()
    assert db.session.execute(select(func.count(LtiIdentity.id))).scalar() == 0
