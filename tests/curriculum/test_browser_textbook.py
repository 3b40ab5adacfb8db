"""Chromium on the textbook-tree browser: choose stage, subject, edition and volume,
open a chapter of the table of contents, see each lesson's resources with counts, reach
a lesson in one click; then filter the resource catalog and search by chapter."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.accounts.models import Role
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.common.events import commit
from app.curriculum import case, services
from app.curriculum.models import Level, Node
from app.extensions import db
from tests.browser import NEEDS_CHROMIUM, add_user, shot, site_fixture
from tests.conftest import Orgs
from tests.curriculum.conftest import demo_package, lessons_of_unit

pytestmark = NEEDS_CHROMIUM


def _seed():
    orgs = Orgs()
    teacher = add_user("teacher@browser.test", "王老师", Role.TEACHER, school=orgs.school)
    case.import_package(demo_package(), district_id=orgs.district.id)
    db.session.commit()
    units = list(
        db.session.execute(
            select(Node)
            .where(Node.level == Level.UNIT, Node.edition == "pep")
            .order_by(Node.position, Node.seq)
        ).scalars()
    )
    second = units[1]
    lesson = lessons_of_unit(second)[0]
    made = {}
    for title, kind in (("加法微课", "video"), ("加法练习", "exercise")):
        resource = catalog.create_content(
            teacher,
            Resource,
            {"kind": kind, "title": title, "subject": "math", "visibility": "region"},
        )
        catalog.submit_content(teacher, Resource, resource.content_id)
        services.align(teacher, lesson.id, "resource", resource.content_id)
        made[title] = resource.content_id
    other = catalog.create_content(
        teacher,
        Resource,
        {
            "kind": "document",
            "title": "加法讲义（未对齐）",
            "subject": "math",
            "visibility": "region",
        },
    )
    catalog.submit_content(teacher, Resource, other.content_id)
    commit()
    return {
        "unit": second.id,
        "unit_title": second.title,
        "lesson": lesson.id,
        "lesson_title": lesson.title,
    }


site = site_fixture("textbook-browser", _seed, warm_search=True)


@pytest.mark.parametrize(
    "viewport",
    [{"width": 1280, "height": 900}, {"width": 390, "height": 844}],
    ids=["desktop", "phone"],
)
def test_browse_the_textbook_tree_to_a_lesson(site, browser, viewport):
    base = site["base"]
    context = browser.new_context(locale="zh-CN", viewport=viewport)
    page = context.new_page()
    page.goto(f"{base}/curriculum/?lang=zh_CN")
    page.get_by_role("link", name="按教材目录浏览").click()
    for chosen in ("初中", "数学", "人教版"):
        expect(page.locator(".chip.on", has_text=chosen)).to_be_visible()
    toc = page.locator(".tb-toc")
    expect(toc).to_contain_text(site["unit_title"])
    # The chapter with resources says how many; one click opens it beside the tree.
    chapter = toc.locator(f'a[data-node="{site["unit"]}"]')
    expect(chapter.locator("xpath=following-sibling::span[1]")).to_have_text("2")
    chapter.click()
    lesson = page.locator(f'.tb-lesson[data-node="{site["lesson"]}"]')
    expect(lesson).to_contain_text("加法微课")
    expect(lesson).to_contain_text("加法练习")
    shot(page, f"textbook-browser-{viewport['width']}.png")
    # The lesson is one click away.
    lesson.get_by_role("link", name=site["lesson_title"]).click()
    expect(page).to_have_url(f"{base}/curriculum/nodes/{site['lesson']}")
    # Another edition from the selector.
    page.goto(f"{base}/curriculum/browse")
    page.locator(".chip", has_text="北师大版").click()
    expect(page.locator(".chip.on", has_text="北师大版")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    context.close()


def test_catalog_and_search_filter_by_chapter(site, browser):
    base = site["base"]
    context = browser.new_context(locale="en", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    for url, results, chapter, form in (
        (f"{base}/resources?lang=en", ".grid", "#f-chapter", "form.filters"),
        (f"{base}/search?q=加法&lang=en", ".search-results", "#s-chapter", "form.chapter-filter"),
    ):
        # Both lessons' resources first; the unit's chapter keeps only its own.
        page.goto(url)
        expect(page.locator(results)).to_contain_text("加法讲义")
        page.locator(chapter).select_option(str(site["unit"]))
        page.locator(f"{form} button[type=submit]").click()
        expect(page.locator(results)).to_contain_text("加法微课")
        expect(page.locator(results)).not_to_contain_text("加法讲义")
        if results == ".grid":
            expect(page.locator("#result-count")).to_contain_text("2")
    shot(page, "search-chapter-filter.png")
    context.close()
    # The long chapter names fit a phone's filter panel.
    phone = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    page = phone.new_page()
    page.goto(f"{base}/resources?chapter={site['unit']}&lang=zh_CN")
    expect(page.locator("#f-chapter")).to_have_value(str(site["unit"]))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    phone.close()
