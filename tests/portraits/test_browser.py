"""Headless Chromium: on a phone, a student answers a quiz with the keyboard, sees the
explanations, and her portrait's knowledge map changes."""

from __future__ import annotations

from app.accounts.models import Role
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.curriculum import case
from app.curriculum import services as curriculum
from app.extensions import db
from app.portraits import sources
from tests.browser import NEEDS_CHROMIUM, add_user, log_in, site_fixture
from tests.conftest import Orgs
from tests.curriculum.conftest import TERM, demo_package
from tests.portraits.conftest import DAY

pytestmark = NEEDS_CHROMIUM


def _seed():
    orgs = Orgs()
    people = {
        Role.TEACHER: add_user("teacher@quiz.test", "王老师", Role.TEACHER, school=orgs.school),
        Role.STUDENT: add_user("student@quiz.test", "李同学", Role.STUDENT, school=orgs.school),
        Role.DISTRICT_ADMIN: add_user(
            "admin@quiz.test", "区管理员", Role.DISTRICT_ADMIN, district=orgs.district
        ),
    }
    case.import_package(demo_package(), district_id=orgs.district.id)
    school_class = curriculum.get_or_create_class(orgs.school, "七年级（1）班", grade="g7")
    curriculum.add_class_member(school_class, people[Role.TEACHER], "teacher")
    curriculum.add_class_member(school_class, people[Role.STUDENT], "student")
    admin = people[Role.DISTRICT_ADMIN]
    curriculum.set_class_edition(admin, school_class.id, "math", "pep")
    volume = [v for v in curriculum.list_volumes("math", "pep")][0]
    curriculum.create_calendar(
        admin, {**TERM, "volume_id": volume.id, "district_id": orgs.district.id}
    )
    db.session.commit()
    kp = next(
        lesson["knowledge_points"][0]
        for view in sources.weeks_of(people[Role.STUDENT], 0)
        for lesson in view.lessons
        if lesson["knowledge_points"]
    )
    questions = [
        {
            "id": "q1",
            "type": "single_choice",
            "prompt": "下列哪个数是负数？",
            "options": ["3", "-2", "0"],
            "answer": 1,
            "explanation": "小于零的数是负数。",
            "knowledge_points": [kp.identifier],
        },
        {
            "id": "q2",
            "type": "true_false",
            "prompt": "0 是正数。",
            "answer": False,
            "explanation": "0 既不是正数也不是负数。",
            "knowledge_points": [kp.identifier],
        },
        {
            "id": "q3",
            "type": "numeric",
            "prompt": "(-3) + 5 = ?",
            "answer": 2,
            "explanation": "异号相加。",
            "knowledge_points": [kp.identifier],
        },
    ]
    teacher = people[Role.TEACHER]
    quiz = catalog.create_content(
        teacher,
        Resource,
        {
            "kind": "exercise",
            "title": "课堂小测",
            "visibility": "region",
            "data": {"questions": questions},
        },
    )
    orgs.district.requires_review = False
    catalog.submit_content(teacher, Resource, quiz.content_id)
    return {
        "quiz": quiz.content_id,
        "skill": sources.canonical_skills({kp.identifier})[kp.identifier],
        "kp": kp.title,
    }


site = site_fixture("portraits-browser", _seed, PORTRAITS_TODAY=DAY)


def test_student_answers_a_quiz_and_her_portrait_changes(site, browser):
    from playwright.sync_api import expect

    base, info = site["base"], site
    context = browser.new_context(
        locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    log_in(page, base, "student@quiz.test")

    page.goto(f"{base}/portraits/")
    cell = page.locator(f'.pt-kp[data-skill="{info["skill"]}"]').first
    expect(cell).to_have_attribute("data-mastery", "")
    before_answers = page.locator("#answer-count").inner_text()

    page.goto(f"{base}/resources/{info['quiz']}")
    html = page.content()
    assert "小于零的数是负数" not in html  # explanations arrive only after submission
    # Keyboard only: focus the first option, arrow to the second, then the others.
    page.locator('input[name="q-q1"]').first.focus()
    page.keyboard.press("ArrowDown")
    page.locator('input[name="q-q2"][value="false"]').focus()
    page.keyboard.press("Space")
    page.locator('input[name="q-q3"]').focus()
    page.keyboard.type("2")
    page.locator(".exercise-submit").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".exercise-score")).to_contain_text("3")
    expect(page.locator('fieldset[data-question="q1"] .exercise-feedback')).to_contain_text(
        "小于零的数是负数"
    )
    expect(page.locator('fieldset[data-question="q1"]')).to_have_class("exercise-question is-right")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    page.goto(f"{base}/portraits/")
    cell = page.locator(f'.pt-kp[data-skill="{info["skill"]}"]').first
    expect(cell).not_to_have_attribute("data-mastery", "")
    assert float(cell.get_attribute("data-mastery")) > 0.5
    assert page.locator("#answer-count").inner_text() != before_answers
    expect(page.locator(f'#skills tr[data-skill="{info["skill"]}"]')).to_contain_text("3/3")
    context.close()
