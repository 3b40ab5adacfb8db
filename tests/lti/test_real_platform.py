"""Shuyuan driven by an LTI 1.3 platform implementation we did not write
(``lti1p3platform`` from PyPI, see tests/lti/real_platform.py): dynamic registration,
a teacher deep-links a whole syllabus week, a student launches into a resource, and her
score arrives in the LMS."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from app.catalog.models import Resource
from app.common.events import commit
from app.extensions import db
from app.hooks import emit_learning_event
from app.lti.models import LtiDeployment, LtiIdentity
from app.lti.services import registrations
from tests.lti.helpers import registration_link
from tests.lti.platform import parse_form


@pytest.fixture
def lms():
    from tests.lti.real_platform import RealLms

    server = RealLms().start()
    yield server
    server.stop()


def _click(browser: requests.Session, link: str) -> requests.Response:
    """Follow the LMS link through the tool's login to the platform's auto-post form,
    then post it to the tool (what the browser's JavaScript does)."""
    form_page = browser.get(link, timeout=10)
    assert form_page.status_code == 200, form_page.text[:500]
    action, fields = parse_form(form_page.text)
    return browser.post(action, data=fields, timeout=10)


def test_real_platform_registers_launches_deep_links_a_week_and_receives_a_grade(
    live, lms, orgs, week_plan
):
    # 1. Dynamic registration from the LMS's admin page, with the one-time link a
    #    Shuyuan administrator made for the school.
    token = registration_link(orgs.district.id, orgs.school.id)
    with requests.Session() as admin:
        page = admin.get(
            live + "/lti/register/" + token,
            timeout=10,
            params={
                "openid_configuration": lms.url + "/.well-known/openid-configuration",
                "registration_token": lms.registration_token,
            },
        )
    assert page.status_code == 200 and "org.imsglobal.lti.close" in page.text, page.text[:500]
    deployment = db.session.execute(select(LtiDeployment)).scalar_one()
    assert deployment.deployment_id == lms.deployment_id and not deployment.approved
    registrations.set_deployment_approval(None, deployment.id, True, system=True)
    commit()

    # 2. The teacher deep-links all resources of syllabus week 3.
    with requests.Session() as teacher:
        picker = _click(teacher, lms.link("deep_link", "t-100", "王老师", teacher=True))
        assert picker.status_code == 200 and "/lti/deep-link/dl-" in picker.url, picker.text[:500]
        answer = teacher.post(
            picker.url, timeout=10, data={"items": [f"week:{week_plan['calendar_id']}:3"]}
        )
        action, fields = parse_form(answer.text, "lti-deep-link-return")
        assert action == lms.url + "/deep_link_return"
        assert teacher.post(action, data=fields, timeout=10).status_code == 200
    items = lms.deep_link_items[-1]
    assert [i["custom"]["resource"] for i in items] == week_plan["content_ids"]
    exercise_item = items[1]
    assert "lineItem" in exercise_item

    # 3. A student clicks the exercise link and lands in the resource, logged in.
    with requests.Session() as student:
        landed = _click(
            student,
            lms.link(
                "resource", "s-200", "李雷", custom=exercise_item["custom"], link_id="rl-exercise"
            ),
        )
        assert landed.status_code == 200
        assert landed.url.endswith("/resources/" + exercise_item["custom"]["resource"])
        assert "李雷" in landed.text

    # 4. She completes the exercise: the score reaches the LMS gradebook.
    user = db.session.execute(select(LtiIdentity).filter_by(sub="s-200")).scalar_one().user
    resource = db.session.execute(
        select(Resource).filter_by(content_id=exercise_item["custom"]["resource"])
    ).scalar_one()
    emit_learning_event(
        user, "completed", resource=resource, result={"score": {"raw": 9, "max": 10}}
    )
    commit()
    assert lms.scores and lms.scores[-1]["link_id"] == "rl-exercise"
    assert lms.scores[-1]["scoreGiven"] == 9 and lms.scores[-1]["userId"] == "s-200"
