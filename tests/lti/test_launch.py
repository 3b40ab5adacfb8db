"""Login + launch over real HTTP between Shuyuan and the simulated LMS."""

from __future__ import annotations

from sqlalchemy import func, select

from app.accounts.models import User
from app.extensions import db
from app.lti.models import LtiContext, LtiContextMember, LtiGradeLink, LtiIdentity
from tests.lti.helpers import published_resource
from tests.lti.platform import INSTRUCTOR


def test_student_launch_opens_resource_logged_in(
    live, platform, registered, browser, make_user, orgs
):
    teacher = make_user("teacher")
    content_id = published_resource(teacher)
    hint = platform.prepare(sub="stu-42", name="韩梅梅", custom={"resource": content_id})
    response = platform.launch(browser, live, hint)
    assert response.status_code == 302, response.text[:800]
    assert response.headers["Location"].endswith(f"/resources/{content_id}")
    page = browser.get(live + response.headers["Location"])
    assert page.status_code == 200
    assert "韩梅梅" in page.text  # logged in as herself
    db.session.expire_all()
    identity = db.session.execute(
        select(LtiIdentity).filter_by(issuer=platform.issuer, sub="stu-42")
    ).scalar_one()
    user = db.session.get(User, identity.user_id)
    assert user.is_student and user.school_id == orgs.school.id and not user.is_teacher
    context = db.session.execute(select(LtiContext)).scalar_one()
    assert context.context_id == "course-1" and context.memberships_url.endswith("/memberships")
    assert db.session.execute(select(LtiContextMember)).scalar_one().user_id == user.id
    link = db.session.execute(select(LtiGradeLink)).scalar_one()
    assert link.content_id == content_id and link.lineitem_url.endswith("/lineitems/link-1")
    # The auth request carried what the spec asks for.
    auth = platform.auth_requests[-1]
    assert (
        auth["response_mode"] == "form_post"
        and auth["prompt"] == "none"
        and auth["scope"] == "openid"
    )


def test_second_launch_reuses_the_same_user_and_post_login_works(
    live, platform, registered, browser, make_user
):
    content_id = published_resource(make_user("teacher"))
    for method in ("GET", "POST"):
        hint = platform.prepare(sub="stu-7", custom={"resource": content_id}, roles=[INSTRUCTOR])
        with __import__("requests").Session() as fresh_browser:
            assert (
                platform.launch(fresh_browser, live, hint, login_method=method).status_code == 302
            )
    db.session.expire_all()
    assert db.session.execute(select(func.count(LtiIdentity.id))).scalar() == 1
    user = db.session.execute(select(LtiIdentity)).scalar_one().user
    assert user.is_teacher


def test_launch_without_target_opens_catalog(live, platform, registered, browser):
    response = platform.launch(browser, live, platform.prepare(sub="stu-1"))
    assert response.status_code == 302 and response.headers["Location"].endswith("/")
