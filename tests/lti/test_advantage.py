"""Deep linking, grades (AGS), rosters (NRPS), key rotation, dynamic registration and the
cookie-less (platform storage) launch, all against the simulated LMS over real HTTP."""

from __future__ import annotations

import re

import requests
from sqlalchemy import select

from app.accounts.models import User
from app.common.events import commit
from app.extensions import db
from app.hooks import emit_learning_event
from app.lti.models import (
    KeyState,
    LtiContext,
    LtiContextMember,
    LtiDeployment,
    LtiGradeOutbox,
    LtiIdentity,
    LtiKey,
    LtiPlatform,
    OutboxStatus,
)
from app.lti.services import ags, nrps, registrations
from app.lti.services import keys as lti_keys
from tests.catalog.helpers import make_content
from tests.lti.helpers import published_resource, refused, registration_link
from tests.lti.platform import INSTRUCTOR, LEARNER, parse_form


def _picker(platform, live, browser, **prepare):
    hint = platform.prepare(
        sub="teacher-1",
        name="王老师",
        roles=[INSTRUCTOR],
        message_type="LtiDeepLinkingRequest",
        **prepare,
    )
    response = platform.launch(browser, live, hint)
    assert response.status_code == 302, response.text[:800]
    assert "/lti/deep-link/dl-" in response.headers["Location"]
    return live + response.headers["Location"]


def test_deep_link_one_resource_and_a_course(live, platform, registered, browser, make_user):
    from app.catalog.models import Course

    teacher = make_user("teacher")
    exercise = published_resource(teacher, title="分数练习")
    video = published_resource(teacher, title="茶艺视频", kind="video", url="https://example.org/v")
    course = make_content(teacher, Course)
    picker_url = _picker(platform, live, browser)
    page = browser.get(picker_url)
    assert page.status_code == 200 and "分数练习" in page.text
    page = browser.get(picker_url, params={"q": "茶艺"})
    assert "茶艺视频" in page.text
    answer = browser.post(
        picker_url,
        data={"items": [f"resource:{exercise}", f"resource:{video}", f"course:{course}"]},
    )
    assert answer.status_code == 200
    action, fields = parse_form(answer.text, "lti-deep-link-return")
    assert action == platform.url + "/deep_link_return"
    returned = requests.post(action, data=fields, timeout=10)
    assert returned.status_code == 200, platform.deep_link_responses[-1]["error"]
    claims = platform.deep_link_responses[-1]["claims"]
    assert claims["aud"] == [platform.issuer] and claims["iss"] == platform.client_id
    assert (
        claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    )
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "opaque-data-123"
    assert (
        claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == platform.deployment_id
    )
    items = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert [i["type"] for i in items] == ["ltiResourceLink"] * 3
    assert items[0]["custom"] == {"resource": exercise} and "lineItem" in items[0]  # gradable
    assert "lineItem" not in items[1]  # a video has no grade
    assert items[2]["custom"] == {"course": course}
    assert all(i["url"] == live + "/lti/launch" for i in items)
    # A selection is answered once.
    assert browser.post(picker_url, data={"items": [f"resource:{video}"]}).status_code == 404


def test_deep_linking_refuses_students_and_bad_selections(live, platform, registered, browser):
    hint = platform.prepare(sub="stu-dl", roles=[LEARNER], message_type="LtiDeepLinkingRequest")
    refused(platform.launch(browser, live, hint), 403, "lti_forbidden")
    with requests.Session() as teacher_browser:
        picker_url = _picker(platform, live, teacher_browser)
        bad = teacher_browser.post(picker_url, data={"items": ["resource:does-not-exist"]})
        assert bad.status_code == 422
        assert teacher_browser.post(picker_url, data={}).status_code == 422
    assert browser.get(live + "/lti/deep-link/dl-unknown").status_code == 404


def test_score_reaches_the_lms_gradebook_with_retries(
    live, platform, registered, browser, make_user, app
):
    exercise = published_resource(make_user("teacher"))
    hint = platform.prepare(sub="stu-grade", custom={"resource": exercise})
    assert platform.launch(browser, live, hint).status_code == 302
    user = db.session.execute(select(LtiIdentity).filter_by(sub="stu-grade")).scalar_one().user
    from app.catalog.models import Resource

    resource = db.session.execute(select(Resource).filter_by(content_id=exercise)).scalar_one()
    platform.score_failures = 1  # the LMS is down for the first attempt
    emit_learning_event(
        user,
        "completed",
        resource=resource,
        result={"score": {"raw": 8, "max": 10}, "completion": True},
    )
    commit()
    row = db.session.execute(select(LtiGradeOutbox)).scalar_one()
    assert row.status == OutboxStatus.PENDING and row.attempts == 1 and "503" in row.last_error
    assert platform.scores == []
    # The failure is visible to admins.
    admin = make_user("platform_admin")
    client = app.test_client()
    with client:
        page = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
        client.post(
            "/login", data={"email": admin.email, "password": "password123", "csrf_token": csrf}
        )
        log = client.get("/lti/admin/grades?status=pending").get_data(as_text=True)
        assert "503" in log and "/lineitems/link-1" in log
    counts = ags.deliver_due_grades(force=True)
    assert counts["sent"] == 1
    score = platform.scores[-1]
    assert (
        score["scoreGiven"] == 8 and score["scoreMaximum"] == 10 and score["userId"] == "stu-grade"
    )
    assert score["activityProgress"] == "Completed" and score["gradingProgress"] == "FullyGraded"
    assert score["lineitem"].endswith("/ctx/course-1/lineitems/link-1")
    db.session.expire_all()
    assert db.session.get(LtiGradeOutbox, row.id).status == OutboxStatus.SENT


def test_scores_give_up_after_max_attempts(live, platform, registered, browser, make_user, app):
    exercise = published_resource(make_user("teacher"))
    assert (
        platform.launch(
            browser, live, platform.prepare(sub="stu-g2", custom={"resource": exercise})
        ).status_code
        == 302
    )
    user = db.session.execute(select(LtiIdentity).filter_by(sub="stu-g2")).scalar_one().user
    app.config["LTI_GRADE_MAX_ATTEMPTS"] = 2
    try:
        platform.score_failures = 5
        from app.catalog.models import Resource

        resource = db.session.execute(select(Resource).filter_by(content_id=exercise)).scalar_one()
        emit_learning_event(user, "scored", resource=resource, result={"score": {"scaled": 0.5}})
        commit()
        ags.deliver_due_grades(force=True)
        row = db.session.execute(select(LtiGradeOutbox)).scalar_one()
        db.session.refresh(row)
        assert row.status == OutboxStatus.FAILED and row.attempts == 2
        # Events without a score or for content not launched from the LMS queue nothing.
        emit_learning_event(user, "experienced", resource=resource, result=None)
        commit()
        assert db.session.execute(select(LtiGradeOutbox)).scalars().all() == [row]
    finally:
        app.config["LTI_GRADE_MAX_ATTEMPTS"] = 8


def test_roster_sync_on_launch_and_on_demand(live, platform, registered, browser, orgs):
    platform.members = [
        {"user_id": "stu-a", "name": "学生甲", "roles": [LEARNER], "status": "Active"},
        {"user_id": "stu-b", "name": "学生乙", "roles": [LEARNER], "status": "Active"},
        {"user_id": "tea-1", "name": "王老师", "roles": [INSTRUCTOR], "status": "Active"},
    ]
    assert (
        platform.launch(
            browser, live, platform.prepare(sub="tea-1", roles=[INSTRUCTOR])
        ).status_code
        == 302
    )
    db.session.expire_all()
    context = db.session.execute(select(LtiContext)).scalar_one()
    assert context.roster_size == 3 and context.last_roster_sync_at is not None
    members = {
        db.session.get(User, m.user_id).name: m
        for m in db.session.execute(select(LtiContextMember)).scalars()
    }
    assert set(members) == {"学生甲", "学生乙", "王老师"}
    assert members["学生甲"].role == "student" and members["王老师"].role == "teacher"
    stu_b = db.session.get(User, members["学生乙"].user_id)
    assert stu_b.school_id == orgs.school.id and stu_b.is_student
    # The class of the curriculum feature holds them too, when it is installed.
    if context.class_id is not None:
        from app.curriculum.models import ClassMember

        assert (
            len(db.session.execute(select(ClassMember).filter_by(class_id=context.class_id)).all())
            == 3
        )
    # A launch the same day does not sync again.
    platform.members = platform.members[:1] + platform.members[2:]
    with requests.Session() as other:
        assert platform.launch(other, live, platform.prepare(sub="stu-a")).status_code == 302
    db.session.expire_all()
    assert db.session.get(LtiContext, context.id).roster_size == 3
    # On demand: stu-b left the course.
    result = nrps.sync_roster(context.id)
    commit()
    assert result == {"members": 2, "added": 0, "deactivated": 1}
    assert db.session.get(LtiContextMember, members["学生乙"].id).active is False


def test_key_rotation_publishes_before_signing_and_retires_after_grace(
    live, platform, registered, browser, make_user
):
    keys = _jwks(live)["keys"]
    assert len(keys) == 1 and keys[0]["kid"] and keys[0]["alg"] == "RS256" and "d" not in keys[0]
    first = keys[0]["kid"]
    report = lti_keys.rotate_keys(publish_seconds=0, grace_seconds=0)
    commit()
    new = report.created[0]
    published = [k["kid"] for k in _jwks(live)["keys"]]
    assert published == [first, new]
    # Still signing with the old key (tokens signed with the new one would be unknown to
    # platforms that cached the JWKS before it was published).
    assert _deep_link_kid(platform, live, browser, make_user) == first
    report = lti_keys.rotate_keys(publish_seconds=0, grace_seconds=3600)
    commit()
    assert report.activated == [new] and report.retiring == [first]
    assert first in [k["kid"] for k in _jwks(live)["keys"]]
    with requests.Session() as second_browser:
        assert _deep_link_kid(platform, live, second_browser, make_user) == new
    report = lti_keys.rotate_keys(publish_seconds=3600, grace_seconds=0)
    commit()
    assert report.retired == [first]
    published = [k["kid"] for k in _jwks(live)["keys"]]
    assert first not in published and new in published
    assert (
        db.session.execute(select(LtiKey).filter_by(kid=first)).scalar_one().state
        == KeyState.RETIRED
    )


def _jwks(live) -> dict:
    return requests.get(live + "/lti/jwks.json", timeout=10).json()


def _deep_link_kid(platform, live, browser, make_user) -> str:
    import jwt

    resource = published_resource(make_user("teacher"), title="旋转")
    picker_url = _picker(platform, live, browser)
    answer = browser.post(picker_url, data={"items": [f"resource:{resource}"]})
    _, fields = parse_form(answer.text, "lti-deep-link-return")
    assert (
        requests.post(platform.url + "/deep_link_return", data=fields, timeout=10).status_code
        == 200
    )
    return jwt.get_unverified_header(fields["JWT"])["kid"]


def _register(browser, live, platform, token, registration_token=None):
    return browser.get(
        live + "/lti/register/" + token,
        params={
            "openid_configuration": platform.url + "/.well-known/openid-configuration",
            "registration_token": registration_token or platform.registration_token,
        },
    )


def test_dynamic_registration(live, platform, orgs, browser, app):
    token = registration_link(orgs.district.id, orgs.school.id)
    # Bad requests are refused with a page, never a 500, and leave the link usable.
    assert browser.get(live + "/lti/register").status_code == 400
    assert browser.get(live + "/lti/register/" + token).status_code == 400  # no configuration
    bad = browser.get(live + "/lti/register/" + token, params={"openid_configuration": "nope"})
    assert bad.status_code == 422
    assert _register(browser, live, platform, token, "wrong").status_code == 422
    page = _register(browser, live, platform, token)
    assert page.status_code == 200, page.text[:800]
    assert "org.imsglobal.lti.close" in page.text
    sent = platform.registrations[-1]
    assert (
        sent["initiate_login_uri"] == live + "/lti/login"
        and sent["jwks_uri"] == live + "/lti/jwks.json"
    )
    assert sent["redirect_uris"] == [live + "/lti/launch"]
    messages = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]["messages"]
    assert {m["type"] for m in messages} == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
    db.session.expire_all()
    stored = db.session.execute(select(LtiPlatform)).scalar_one()
    assert stored.source == "dynamic" and stored.client_id == platform.client_id
    deployment = db.session.execute(select(LtiDeployment)).scalar_one()
    assert deployment.approved is False and deployment.school_id == orgs.school.id
    # The link is spent.
    assert _register(browser, live, platform, token).status_code == 404
    assert len(platform.registrations) == 1
    # Pending approval: launches are refused until an admin approves.
    refused(platform.launch(browser, live, platform.prepare()), 403, "lti_deployment_not_approved")
    registrations.set_deployment_approval(None, deployment.id, True, system=True)
    commit()
    with requests.Session() as fresh:
        assert platform.launch(fresh, live, platform.prepare()).status_code == 302


def test_dynamic_registration_auto_approved_only_in_the_links_district(
    live, platform, orgs, browser, app
):
    app.config["LTI_AUTO_APPROVE"] = True
    try:
        token = registration_link(orgs.review_district.id)
        page = _register(browser, live, platform, token)
        assert page.status_code == 200
    finally:
        app.config["LTI_AUTO_APPROVE"] = False
    db.session.expire_all()
    deployment = db.session.execute(select(LtiDeployment)).scalar_one()
    assert deployment.approved is True
    assert deployment.district_id == orgs.review_district.id and deployment.school_id is None
    assert platform.launch(browser, live, platform.prepare()).status_code == 302


def test_cookie_less_launch_with_platform_storage(live, platform, registered, browser, make_user):
    content_id = published_resource(make_user("teacher"))
    ours = {"Origin": live}  # what a browser sends with our own launch page's form

    def start(target):
        hint = platform.prepare(sub="stu-nocookie", custom={"resource": content_id})
        params = platform.login_params(hint, lti_storage_target=target)
        page = browser.get(live + "/lti/login", params=params, allow_redirects=False)
        assert page.status_code == 200 and "lti.put_data" in page.text
        state = re.search(r'"(state-[0-9a-f]+)"', page.text).group(1)
        binding = re.search(r'\["binding_" \+ "state-[0-9a-f]+", "([^"]+)"\]', page.text).group(1)
        auth_url = re.search(r'var authUrl = "([^"]+)"', page.text).group(1).replace("\\u0026", "&")
        # This browser keeps no cookie at all (third-party cookies blocked).
        browser.cookies.clear()
        action, fields = platform.authorize(browser, auth_url)
        assert fields["state"] == state
        answer = browser.post(action, data=fields, allow_redirects=False)
        assert answer.status_code == 200 and "lti.get_data" in answer.text
        assert binding not in answer.text  # only platform storage holds it
        _, form = parse_form(answer.text, "lti-continue")
        return state, binding, form["pending"]

    state, binding, pending = start("post_message_forwarding")
    # The page's script asks the platform for the stored state and binding, posts them.
    wrong = browser.post(
        live + "/lti/launch/continue",
        data={"pending": pending, "state": state, "binding": "guessed"},
        headers=ours,
        allow_redirects=False,
    )
    refused(wrong, 400, "lti_state_mismatch")
    # ... a pending launch is usable once only, so start over for the right answer.
    state, binding, pending = start("_parent")
    done = browser.post(
        live + "/lti/launch/continue",
        data={"pending": pending, "state": state, "binding": binding},
        headers=ours,
        allow_redirects=False,
    )
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/resources/{content_id}")


def test_https_cookies_are_samesite_none_secure(app, platform, registered):
    client = app.test_client()
    hint = platform.prepare()
    response = client.get(
        "/lti/login", query_string=platform.login_params(hint), base_url="https://shuyuan.test"
    )
    assert response.status_code == 302
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies and all("SameSite=None" in c and "Secure" in c for c in cookies)


def test_admin_pages_cli_and_api(app, platform, orgs, make_user, token_for):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "lti",
            "add-platform",
            "--issuer",
            platform.issuer,
            "--client-id",
            "cli-client",
            "--deployment-id",
            "d-9",
            "--auth-url",
            platform.auth_url,
            "--token-url",
            platform.token_url,
            "--keyset-url",
            platform.jwks_url,
            "--school",
            orgs.school.code,
        ]
    )
    assert result.exit_code == 0, result.output
    listing = runner.invoke(args=["lti", "list"])
    assert (
        "cli-client" in listing.output and "d-9" in listing.output and "approved" in listing.output
    )
    bad = runner.invoke(
        args=[
            "lti",
            "add-platform",
            "--issuer",
            "x",
            "--client-id",
            "y",
            "--deployment-id",
            "z",
            "--auth-url",
            "nope",
            "--token-url",
            "nope",
            "--keyset-url",
            "nope",
            "--school",
            "s1",
        ]
    )
    assert bad.exit_code != 0 and "auth_login_url" in bad.output
    rotate = runner.invoke(args=["lti", "rotate-keys", "--publish-hours", "0"])
    assert rotate.exit_code == 0 and "published new key" in rotate.output
    admin = make_user("platform_admin")
    headers = token_for(admin)
    client = app.test_client()
    platforms = client.get("/api/v1/lti/platforms", headers=headers)
    assert platforms.status_code == 200 and platforms.json[0]["client_id"] == "cli-client"
    created = client.post(
        "/api/v1/lti/platforms",
        headers=headers,
        json={
            "issuer": "https://lms.test",
            "client_id": "c2",
            "deployment_id": "1",
            "auth_login_url": "https://lms.test/auth",
            "auth_token_url": "https://lms.test/token",
            "key_set_url": "https://lms.test/jwks",
            "school": orgs.school.code,
        },
    )
    assert created.status_code == 201, created.json
    invalid = client.post("/api/v1/lti/platforms", headers=headers, json={"issuer": "x"})
    assert invalid.status_code == 422 and invalid.json["error"]["fields"]
    student = make_user("student")

    denied = app.test_client().get("/api/v1/lti/platforms", headers=token_for(student))
    assert denied.status_code == 403, denied.json
    assert client.get("/api/v1/lti/grades", headers=headers).json["total"] == 0
