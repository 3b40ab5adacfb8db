"""Headless Chromium drives the real pages over HTTP: a teacher builds and publishes an
extended course in Chinese, a student finds it in the catalog and enrols, and the
catalog and course page fit a phone screen."""

from __future__ import annotations

from playwright.sync_api import expect

from app.accounts.models import Role
from tests.browser import NEEDS_CHROMIUM, add_user, field, log_in, site_fixture
from tests.browser import shot as _shot  # under the name the test body uses
from tests.conftest import Orgs

pytestmark = NEEDS_CHROMIUM


def _seed():
    """A teacher and a student of one school."""
    orgs = Orgs()
    add_user("teacher@browser.test", "王老师", Role.TEACHER, school=orgs.school)
    add_user("student@browser.test", "李同学", Role.STUDENT, school=orgs.school)


# Publishing indexes the course: jieba's dictionary is loaded before serving.
site = site_fixture("browser-instance", _seed, warm_search=True)


def _fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_teacher_publishes_and_student_enrols(site, browser):
    base = site["base"]
    # The teacher works on a phone too: the forms must fit a 390px screen.
    teacher = browser.new_context(
        locale="zh-CN",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    page = teacher.new_page()
    # Which elements took the focus on each page, to catch scripts that steal it.
    page.add_init_script(
        "window.__focused = [];"
        "addEventListener('focusin', e => __focused.push(e.target.className), true);"
    )
    page.set_default_timeout(30_000)
    log_in(page, base, "teacher@browser.test")
    expect(page.locator(".flash-success")).to_contain_text("欢迎，王老师")

    page.get_by_role("link", name="我的课程").first.click()
    page.get_by_role("link", name="新建课程").click()
    field(page, "类型").select_option("extended")
    field(page, "标题").fill("书法入门")
    field(page, "简介").fill("从握笔开始，学写楷书。")
    # The description is written in the rich-text editor (Quill): bold by keyboard, and
    # markup typed as text must come back as text, never as an element.
    page.locator(".ql-editor").first.click()
    page.keyboard.type("每周一次，")
    page.keyboard.press("Control+b")
    page.keyboard.type("自带毛笔")
    page.keyboard.press("Control+b")
    page.keyboard.type("。<script>alert(1)</script>")
    field(page, "可见范围").select_option("region")
    field(page, "类别").select_option("calligraphy")
    field(page, "名额").fill("1")
    field(page, "标签").fill("书法，楷书")
    assert _fits_the_screen(page), "the new-course form is wider than a phone screen"
    _shot(page, "new-course-390.png")
    page.get_by_role("button", name="保存草稿").click()
    expect(page.locator(".flash-success")).to_contain_text("草稿已保存")
    expect(page.locator("h1")).to_have_text("书法入门")

    field(page, "日期").fill("2026-09-01")
    field(page, "开始").fill("15:30")
    field(page, "结束").fill("16:30")
    field(page, "地点").fill("书法教室")
    page.get_by_role("button", name="添加课次").click()
    expect(page.locator(".flash-success")).to_contain_text("课次已添加")
    expect(page.locator("#sessions")).to_contain_text("书法教室")

    # The rich-text editor starts without taking the focus: typing into another field while
    # the page's scripts load must stay in that field (CI once lost the section title to it).
    # (Quill's dangerouslyPasteHTML focused the editor for a moment on every page load.)
    expect(page.locator(".ql-editor").first).to_be_attached()
    page.wait_for_load_state("load")
    assert "ql-editor" not in page.evaluate("window.__focused.join(' ')")
    page.locator("#new-section-title").fill("第一讲 握笔")
    page.get_by_role("button", name="添加章节").click()
    expect(page.locator("#sections-list")).to_contain_text("第一讲 握笔")

    assert _fits_the_screen(page), "the course editor is wider than a phone screen"
    _shot(page, "editor-390.png")
    page.get_by_role("button", name="发布", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("已发布为第 1 版")
    expect(page.locator("#state")).to_have_text("已发布")

    page.get_by_role("link", name="课程", exact=True).click()
    expect(page.locator("#course-list")).to_contain_text("书法入门")
    page.get_by_role("link", name="书法入门").click()
    expect(page.locator(".description strong")).to_have_text("自带毛笔")
    assert "<script>" not in page.content().split('class="description"')[1].split("</div>")[0]
    teacher.close()

    student = browser.new_context(
        locale="zh-CN",
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    phone = student.new_page()
    phone.set_default_timeout(30_000)
    log_in(phone, base, "student@browser.test")
    expect(phone.locator("#course-list")).to_contain_text("书法入门")
    assert _fits_the_screen(phone), "the catalog is wider than a phone screen"
    _shot(phone, "catalog-390.png")

    phone.get_by_role("link", name="书法入门").click()
    expect(phone.locator("#enrolment")).to_contain_text("书法教室")
    phone.get_by_role("button", name="报名", exact=True).click()
    expect(phone.locator(".enrolment-status")).to_contain_text("你已报名成功")
    expect(phone.locator("#enrolment")).to_contain_text("已报 1 人，共 1 个名额")
    assert _fits_the_screen(phone), "the course page is wider than a phone screen"
    _shot(phone, "course-390.png")

    phone.get_by_role("link", name="English").click()
    expect(phone.locator(".enrolment-status")).to_contain_text("You are enrolled.")
    expect(phone.get_by_role("button", name="Leave")).to_be_visible()
    student.close()
