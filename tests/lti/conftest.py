"""Fixtures for the LTI tests: Shuyuan on a real port and a simulated LMS."""

from __future__ import annotations

import pytest
import requests

from app.common.events import commit
from app.lti.services import registrations
from tests.browser import serve
from tests.lti.platform import Platform


@pytest.fixture(scope="session")
def live(app):
    """Shuyuan served by a werkzeug server thread on a free port of 127.0.0.1."""
    with serve(app) as base:
        yield base


@pytest.fixture
def platform(live):
    sim = Platform().start()
    sim.tool_jwks_url = live + "/lti/jwks.json"
    yield sim
    sim.stop()


@pytest.fixture
def registered(platform, orgs):
    """The simulator registered and approved for ``orgs.school``."""
    deployment = registrations.add_platform(
        None, platform.registration(orgs.school.code), system=True
    )
    commit()
    return deployment


@pytest.fixture
def browser():
    with requests.Session() as session:
        yield session


@pytest.fixture
def week_plan(orgs, make_user):
    """The demo maths volume planned over the autumn term with two resources aligned to
    the lessons of week 3."""
    from app.catalog import services as catalog
    from app.catalog.models import Resource
    from app.curriculum import case
    from app.curriculum import services as curriculum
    from app.extensions import db
    from tests.curriculum.conftest import TERM, demo_package

    report = case.import_package(demo_package(), district_id=orgs.district.id)
    db.session.commit()
    from app.curriculum.models import Level, Node

    volume = db.session.execute(
        db.select(Node).where(Node.edition == "pep", Node.level == Level.VOLUME)
    ).scalar_one()
    admin = make_user("district_admin")
    calendar = curriculum.create_calendar(
        admin, {**TERM, "volume_id": volume.id, "district_id": orgs.district.id}
    )
    db.session.commit()
    author = make_user("teacher")
    lessons = curriculum.lessons_for_week(admin, calendar.id, 3)
    assert lessons
    content_ids = []
    for title, kind in (("第三周微课", "video"), ("第三周练习", "exercise")):
        data = {"kind": kind, "title": title, "subject": "math", "visibility": "district"}
        resource = catalog.create_content(author, Resource, data)
        catalog.submit_content(author, Resource, resource.content_id)
        curriculum.align(author, lessons[0].id, "resource", resource.content_id)
        content_ids.append(resource.content_id)
    db.session.commit()
    return {
        "calendar_id": calendar.id,
        "week": 3,
        "content_ids": content_ids,
        "framework": report.framework_id,
    }


@pytest.fixture(autouse=True)
def _registration_may_reach_loopback(request):
    """Every LMS of these tests runs on 127.0.0.1, which dynamic registration refuses
    unless allowed by config (as an operator allows an on-premises LMS)."""
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    before = app.config.get("LTI_REGISTRATION_ALLOW_HOSTS")
    app.config["LTI_REGISTRATION_ALLOW_HOSTS"] = ["127.0.0.1"]
    yield
    app.config["LTI_REGISTRATION_ALLOW_HOSTS"] = before
