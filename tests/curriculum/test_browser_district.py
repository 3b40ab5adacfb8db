"""Chromium on the district pages: a district admin picks a class from "This week",
opens its calendar, moves lessons by keyboard and by drag and drop, marks an exam
week, saves; the coverage map stays compact with its header in view."""

from __future__ import annotations

from playwright.sync_api import expect

from app.accounts.models import Role
from app.curriculum import case, services
from app.curriculum.models import TeachingCalendar
from app.extensions import db
from tests.browser import DESKTOP, NEEDS_CHROMIUM, PHONE, add_user, logged_in, shot, site_fixture
from tests.conftest import Orgs
from tests.curriculum.conftest import TERM, demo_package

pytestmark = NEEDS_CHROMIUM


def _seed():
    orgs = Orgs()
    admin = add_user(
        "district@browser.test", "区管理员", Role.DISTRICT_ADMIN, district=orgs.district
    )
    case.import_package(demo_package(), district_id=orgs.district.id)
    school_class = services.get_or_create_class(orgs.school, "七年级（3）班", grade="g7")
    services.set_class_edition(admin, school_class.id, "math", "pep")
    volume = next(v for v in services.list_volumes("math", "pep"))
    calendar = services.create_calendar(
        admin, {**TERM, "volume_id": volume.id, "district_id": orgs.district.id}
    )
    return {"calendar": calendar.id, "volume": volume.id, "class": school_class.id}


site = site_fixture("district-browser", _seed)


def _weeks_of(site) -> dict[int, list[int]]:
    with site["app"].app_context():
        calendar = db.session.get(TeachingCalendar, site["calendar"])
        return {p["week"]: [n.id for n in p["lessons"]] for p in services.calendar_plan(calendar)}


def test_district_admin_moves_lessons_by_keyboard_and_drag_and_marks_an_exam_week(site, browser):
    base = site["base"]
    page = logged_in(browser, base, "district@browser.test", locale="zh-CN", viewport=DESKTOP)
    page.get_by_role("link", name="本周", exact=True).click()
    expect(page.locator("body")).not_to_contain_text("你的班级本周没有教学日历")
    picker = page.locator("#district-classes")
    expect(picker).to_contain_text("七年级（3）班")
    picker.locator(f'a[href="/curriculum/calendars/{site["calendar"]}"]').click()
    grid = page.locator(".cal-grid.js-on")
    expect(grid).to_be_visible()
    before = _weeks_of(site)

    # Keyboard: the first lesson of week 3 goes one week later with ↓.
    first = page.locator("#week-3 .cal-lesson").first
    node = int(first.get_attribute("data-node"))
    first.focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator(f'#week-4 .cal-lesson[data-node="{node}"]')).to_be_focused()
    expect(page.locator("#cal-live")).to_contain_text("第 4 周")
    expect(page.locator(f'select[name="lesson-{node}"]')).to_have_value("4")

    # Drag and drop: the first lesson of week 6 onto week 9 (both on the screen).
    page.set_viewport_size({"width": 1280, "height": 1800})
    page.locator("#week-6").scroll_into_view_if_needed()
    dragged = page.locator("#week-6 .cal-lesson").first
    dragged_node = int(dragged.get_attribute("data-node"))
    dragged.drag_to(page.locator("#week-9 .cal-lessons"), source_position={"x": 3, "y": 3})
    expect(page.locator(f'#week-9 .cal-lesson[data-node="{dragged_node}"]')).to_be_visible()
    expect(page.locator("#cal-dirty")).to_be_visible()

    # The last week becomes an exam week.
    last = max(before)
    page.locator(f'select[name="kind-{last}"]').select_option("exam")
    shot(page, "calendar-grid-before-save.png")
    page.get_by_role("button", name="保存为新版本").click()
    expect(page.locator(".flash-success")).to_be_visible()

    after = _weeks_of(site)
    assert node in after[4] and node not in after[3]
    assert dragged_node in after[9] and dragged_node not in after[6]
    expect(page.locator(f"#week-{last}.kind-exam")).to_be_visible()
    shot(page, "calendar-grid-saved.png")
    page.context.close()


def test_keyboard_alone_in_english(site, browser):
    base = site["base"]
    page = logged_in(browser, base, "district@browser.test", locale="en", viewport=PHONE)
    page.goto(f"{base}/curriculum/calendars/{site['calendar']}?lang=en")
    lesson = page.locator("#week-10 .cal-lesson").first
    node = int(lesson.get_attribute("data-node"))
    lesson.focus()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(page.locator(f'#week-8 .cal-lesson[data-node="{node}"]')).to_be_focused()
    expect(page.locator("#cal-live")).to_contain_text("week 8")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.locator(".flash-success")).to_be_visible()
    assert node in _weeks_of(site)[8]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.context.close()


def test_coverage_map_is_compact_and_its_header_sticks(site, browser):
    base = site["base"]
    page = logged_in(browser, base, "district@browser.test", locale="zh-CN", viewport=DESKTOP)
    page.goto(f"{base}/curriculum/volumes/{site['volume']}/coverage")
    wrap = page.locator("#heat-wrap")
    expect(wrap).to_be_visible()
    # The whole table was 2,873 px tall; it now fits in a scroll box within the screen.
    assert wrap.bounding_box()["height"] <= 900
    lessons = page.locator("table.heat tbody tr:not(.kp):not(.unit)").count()
    table_height = page.locator("table.heat").bounding_box()["height"]
    assert table_height / max(lessons, 1) < 40  # one compact line per lesson
    # Scrolled down, the header row is still at the top of the box.
    wrap.evaluate("el => el.scrollTop = el.scrollHeight")
    header = page.locator("table.heat thead th").first.bounding_box()
    assert abs(header["y"] - wrap.bounding_box()["y"]) < 4
    # Knowledge points appear on demand.
    assert page.locator("table.heat tr.kp").first.is_hidden()
    page.get_by_label("显示知识点").check()
    expect(page.locator("table.heat tr.kp").first).to_be_visible()
    shot(page, "coverage-compact.png")
    page.context.close()
