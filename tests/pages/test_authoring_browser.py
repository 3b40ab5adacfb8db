"""Chromium drives the authoring pages of issue 16: the resource editor's upload (byte
progress, resumed after a lost connection with only the missing parts sent, refused
before any byte while the resource waits for review, in Chinese and English), the
section item picker, reordering items with the keyboard and by dragging, and cover
pictures and video posters on the catalog cards."""

from __future__ import annotations

import contextlib
import io
import re
import shutil

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.catalog import services as catalog
from app.catalog.models import Course, Resource
from app.common.events import commit
from app.extensions import db
from tests.browser import DESKTOP, NEEDS_CHROMIUM, log_in
from tests.catalog.helpers import fresh, make_content
from tests.media.conftest import webm_clip

pytestmark = NEEDS_CHROMIUM

WEBM_HEAD = (
    b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
    b"\x42\x82\x84webm"
)


@contextlib.contextmanager
def _signed_in(browser, base: str, email: str, english: bool = False):
    """A desktop page (Chinese, or English) logged in as ``email``, with the list its
    script errors are collected in; its browser context is closed afterwards."""
    context = browser.new_context(locale="en-US" if english else "zh-CN", viewport=DESKTOP)
    try:
        page = context.new_page()
        errors = _errors(page)
        log_in(page, base, email)
        yield page, errors
    finally:
        context.close()


def _errors(page) -> list[str]:
    """Script errors of the page (refused requests the test provokes are not errors)."""
    found: list[str] = []
    page.on("pageerror", lambda exc: found.append(str(exc)))
    page.on(
        "console",
        lambda m: (
            found.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    return found


def _working(model, content_id):
    db.session.expire_all()
    return list(
        db.session.execute(
            select(model).filter_by(content_id=content_id).order_by(model.version)
        ).scalars()
    )[-1]


def test_upload_from_the_editor_shows_progress_and_resumes_with_the_missing_parts(
    browser, live_server, make_user, tmp_path
):
    teacher = make_user("teacher")
    email = teacher.email
    content_id = make_content(teacher, Resource, "draft", kind="video", title="京剧身段")
    # 17 MiB: three parts of the multipart upload (8 + 8 + 1 MiB).
    path = tmp_path / "京剧身段.webm"
    path.write_bytes(WEBM_HEAD + bytes(17 * 1024 * 1024 - len(WEBM_HEAD)))
    with _signed_in(browser, live_server, email) as (page, errors):
        page.goto(f"{live_server}/me/resources/{content_id}/edit")
        expect(page.locator("#files")).to_contain_text("把文件拖到这里")

        # The connection drops: one 8 MiB part gets through, the others are cut on the way
        # (the three parts start together, in no fixed order).
        passed: list[str] = []

        def first_part_only(route):
            if not passed and len(route.request.post_data_buffer or b"") == 8 * 1024 * 1024:
                passed.append(route.request.url)
                route.continue_()
            else:
                route.abort()

        page.route("**/media/local/up/**", first_part_only)
        page.set_input_files("#media-file", str(path))
        page.click("#media-submit")
        page.wait_for_selector("#media-upload[data-state=failed]", timeout=60_000)
        expect(page.locator("#media-status")).to_contain_text("连接已中断")
        # The bar counts bytes: the one stored part of 8 of 17 MiB.
        assert page.eval_on_selector("#media-progress", "e => e.value") == 47

        page.unroute("**/media/local/up/**")
        sent_again: list[str] = []
        page.on(
            "request",
            lambda r: sent_again.append(r.url) if "/media/local/up/" in r.url else None,
        )
        page.click("#media-submit")
        page.wait_for_selector("#media-upload[data-state=complete]", timeout=60_000)
        assert page.get_attribute("#media-upload", "data-resumed") == "1"
        assert len(sent_again) == 2  # only the two missing parts
        assert page.eval_on_selector("#media-progress", "e => e.value") == 100
        page.wait_for_selector("#files .current-name", timeout=30_000)
        expect(page.locator("#files .current-name")).to_have_text("京剧身段.webm")
        assert not errors, errors


@pytest.mark.parametrize("english", [False, True])
def test_an_upload_is_refused_before_any_byte_while_in_review(
    browser, live_server, make_user, orgs, english
):
    teacher = make_user("teacher", school=orgs.review_school)
    email = teacher.email
    waiting = make_content(teacher, Resource, "in_review", kind="video", title="待审核")
    changing = make_content(teacher, Resource, "draft", kind="video", title="稍后送审")
    expected = (
        "withdraw it from review before uploading a file. Nothing was sent."
        if english
        else "请先撤回审核，再上传文件。未发送任何数据。"
    )
    with _signed_in(browser, live_server, email, english) as (page, errors):
        if english:
            page.goto(f"{live_server}/lang/en")
        requests: list[str] = []
        page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))

        # Waiting for review when the page is shown: it says so, and a dropped file is
        # refused on the spot.
        page.goto(f"{live_server}/me/resources/{waiting}/edit")
        expect(page.locator("#media-refused")).to_be_visible()
        requests.clear()
        page.eval_on_selector(
            "#media-drop",
            """zone => {
                const data = new DataTransfer();
                data.items.add(new File([new Uint8Array(4096)], "clip.webm", {type: "video/webm"}));
                zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
            }""",
        )
        expect(page.locator("#media-status")).to_contain_text(expected)
        assert page.get_attribute("#media-upload", "data-state") == "refused"
        assert not [r for r in requests if "/media/" in r], requests

        # Sent to review after the page was shown: the API refuses before any byte.
        page.goto(f"{live_server}/me/resources/{changing}/edit")
        catalog.submit_content(fresh(teacher), Resource, changing)
        commit()
        requests.clear()
        page.set_input_files(
            "#media-file",
            files=[{"name": "clip.webm", "mimeType": "video/webm", "buffer": WEBM_HEAD * 100}],
        )
        page.click("#media-submit")
        page.wait_for_selector("#media-upload[data-state=refused]", timeout=30_000)
        expect(page.locator("#media-status")).to_contain_text(expected)
        assert [r for r in requests if "/media/" in r] == [
            f"POST {live_server}/api/v1/media/uploads"
        ], requests
        assert not errors, errors


def _course_with_items(teacher, titles: list[str]) -> tuple[str, list[str]]:
    resources = [
        make_content(teacher, Resource, "published", title=title, kind="document")
        for title in titles
    ]
    course = make_content(teacher, Course, "draft", title="京剧欣赏")
    catalog.add_section(
        fresh(teacher),
        course,
        {"title": "第一单元", "items": [{"resource_id": r} for r in resources]},
    )
    commit()
    return course, resources


def _item_titles(page) -> list[str]:
    return page.eval_on_selector_all(
        "#section-0 li.item .item-title", "nodes => nodes.map(n => n.textContent.trim())"
    )


def _stored_order(course: str) -> list[str]:
    return [i.resource_content_id for i in _working(Course, course).sections[0].items]


def test_the_item_picker_searches_and_adds_a_resource(browser, live_server, make_user):
    teacher = make_user("teacher")
    other = make_user("teacher")
    email = teacher.email
    course, _ = _course_with_items(teacher, [])
    for n in range(30):
        make_content(other, Resource, "published", title=f"京剧唱段 {n}", kind="audio")
    wanted = make_content(other, Resource, "published", title="西湖龙井茶艺", kind="video")
    with _signed_in(browser, live_server, email) as (page, errors):
        page.goto(f"{live_server}/me/courses/{course}/edit")
        page.click("#section-0 details summary")
        picker = page.locator("#picker-0")
        expect(picker).to_be_visible()
        picker.fill("龙井")
        option = page.locator("#picker-0-list [role=option]")
        expect(option).to_have_count(1)
        expect(option.first).to_contain_text("西湖龙井茶艺")
        picker.press("ArrowDown")
        expect(picker).to_have_attribute("aria-activedescendant", "picker-0-list-0")
        picker.press("Enter")
        expect(page.locator("#section-0 .picker-status")).to_contain_text("已选择：西湖龙井茶艺")
        page.click("#section-0 form.add-item button[type=submit]")
        page.wait_for_load_state()
        expect(page.locator("#section-0 li.item")).to_contain_text(["西湖龙井茶艺"])
        assert _stored_order(course) == [wanted]
        assert not errors, errors


def test_the_picker_keeps_the_keyboard_choice_when_the_typed_search_answers_late(
    browser, live_server, make_user
):
    """Focusing the picker searches at once, typing searches again 200 ms later; when
    the second answer arrives after the user moved onto an option of the first, that
    option stays highlighted and Enter chooses it.  (It used to reset the highlight, and
    Enter then sent the form with no resource: the walkthrough failed that way on a
    loaded machine.)"""
    teacher = make_user("teacher")
    other = make_user("teacher")
    email = teacher.email
    course, _ = _course_with_items(teacher, [])
    for n in range(3):
        make_content(other, Resource, "published", title=f"龙井茶 {n}", kind="audio")
    held = []

    def hold_the_typed_search(route):
        if "q=%E9%BE%99" in route.request.url:  # "龙…": the search for what was typed
            held.append(route)
        else:
            route.continue_()

    with _signed_in(browser, live_server, email) as (page, errors):
        page.goto(f"{live_server}/me/courses/{course}/edit")
        page.route("**/resource-choices*", hold_the_typed_search)
        page.click("#section-0 details summary")
        picker = page.locator("#picker-0")
        picker.fill("龙井")
        listbox = page.locator("#picker-0-list")
        expect(listbox.locator("[role=option]")).to_have_count(3)  # the answer to the focus
        expect(listbox).to_have_attribute("aria-busy", "true")  # the typed one is held
        picker.press("ArrowDown")
        picker.press("ArrowDown")
        expect(picker).to_have_attribute("aria-activedescendant", "picker-0-list-1")
        second = listbox.locator("[role=option]").nth(1).get_attribute("data-title")
        for _ in range(50):
            if held:
                break
            page.wait_for_timeout(100)
        assert len(held) == 1, "the typed search never left the page"
        held[0].continue_()
        expect(listbox).to_have_attribute("aria-busy", "false")
        active = picker.get_attribute("aria-activedescendant")
        assert page.locator(f"#{active}").get_attribute("data-title") == second
        picker.press("Enter")
        expect(page.locator("#section-0 .picker-status")).to_contain_text(f"已选择：{second}")
        assert page.url.endswith("/edit"), "Enter sent the form"

        # Enter with nothing chosen does not send the form without a resource.
        page.unroute("**/resource-choices*")
        picker.fill("茶")
        expect(listbox).to_have_attribute("aria-busy", "false")
        picker.press("Enter")
        expect(page.locator("#section-0 li.item")).to_have_count(0)
        assert page.url.endswith("/edit")
        assert not errors, errors


def test_items_reorder_with_the_keyboard_and_by_dragging(browser, live_server, make_user):
    teacher = make_user("teacher")
    email = teacher.email
    course, (a, b, c) = _course_with_items(teacher, ["生角", "旦角", "丑角"])
    with _signed_in(browser, live_server, email) as (page, errors):
        page.goto(f"{live_server}/me/courses/{course}/edit")
        status = page.locator("#reorder-status")

        # The "down" button of the first item, from the keyboard.
        page.get_by_role("button", name="下移“生角”").focus()
        page.keyboard.press("Enter")
        expect(status).to_have_text(re.compile("“生角”现在是“第一单元”中的第 2 项"))
        assert _item_titles(page) == ["旦角", "生角", "丑角"]
        assert _stored_order(course) == [b, a, c]
        # Focus stays on the button that moved, so pressing again moves it again.
        page.keyboard.press("Enter")
        expect(status).to_have_text(re.compile("第 3 项"))
        assert _stored_order(course) == [b, c, a]

        # Alt+↑ on a focused item.
        page.locator("#section-0 li.item", has_text="生角").focus()
        page.keyboard.press("Alt+ArrowUp")
        expect(status).to_have_text(re.compile("“生角”现在是“第一单元”中的第 2 项"))
        assert _stored_order(course) == [b, a, c]

        # Dragging the last item onto the first.
        page.locator("#section-0 li.item", has_text="丑角").drag_to(
            page.locator("#section-0 li.item", has_text="旦角"), target_position={"x": 5, "y": 2}
        )
        expect(status).to_have_text(re.compile("“丑角”现在是“第一单元”中的第 1 项"))
        assert _stored_order(course) == [c, b, a]

        # The page's forms point at the new positions: removing "生角" removes it.
        page.once("dialog", lambda d: d.accept())
        page.get_by_role("button", name="从章节中删除“生角”").click()
        page.wait_for_load_state()
        assert _stored_order(course) == [c, b]
        page.reload()
        assert _item_titles(page) == ["丑角", "旦角"]
        assert not errors, errors


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1600, 1200), (180, 40, 40)).save(out, "PNG")
    return out.getvalue()


def test_cover_pictures_and_video_posters_on_the_catalog_cards(
    browser, live_server, make_user, token_for, tmp_path
):
    from flask import current_app

    from tests.media.conftest import upload_file

    teacher = make_user("teacher")
    email = teacher.email
    course = make_content(teacher, Course, "draft", title="京剧脸谱")
    cover = tmp_path / "脸谱.png"
    cover.write_bytes(_png())
    video = None
    if shutil.which("ffmpeg"):
        clip = webm_clip(tmp_path / "clip.webm", size="320x240")
        video = make_content(teacher, Resource, "draft", kind="video", title="亮相")
        client = current_app.test_client()
        response = upload_file(client, token_for(teacher), video, "clip.webm", clip.read_bytes())
        assert response.status_code == 200
        catalog.submit_content(fresh(teacher), Resource, video)
        commit()
    with _signed_in(browser, live_server, email) as (page, errors):
        page.goto(f"{live_server}/me/courses/{course}/edit")
        page.set_input_files("#cover-file", str(cover))
        page.click("#cover button[type=submit]")
        page.wait_for_load_state()
        preview = page.locator("#cover img.cover-preview")
        expect(preview).to_be_visible()
        page.get_by_role("button", name="发布").first.click()
        page.wait_for_load_state()

        page.goto(f"{live_server}/")
        card = page.locator("article.course-card", has_text="京剧脸谱")
        picture = card.locator("img.card-picture")
        expect(picture).to_be_visible()
        expect(picture).to_have_js_property("complete", True)
        assert picture.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [640, 360]
        expect(card.locator(".card-kind")).to_contain_text("拓展课程")
        if video is not None:
            page.goto(f"{live_server}/resources")
            card = page.locator("article.course-card", has_text="亮相")
            poster = card.locator("img.card-picture")
            expect(poster).to_be_visible()
            expect(poster).to_have_js_property("complete", True)
            assert poster.evaluate("img => img.naturalWidth") == 320
            expect(card.locator(".card-duration")).to_have_text("0:03")
            expect(card.locator(".card-kind")).to_contain_text("视频")
        assert not errors, errors


def test_descriptions_are_written_in_the_rich_text_editor(browser, live_server, make_user):
    teacher = make_user("teacher")
    email = teacher.email
    course = make_content(
        teacher, Course, "draft", title="京剧入门", description_html="<p>旧的</p>"
    )
    with _signed_in(browser, live_server, email) as (page, errors):
        page.goto(f"{live_server}/me/courses/{course}/edit")
        editor = page.locator("#description_html-editor")
        expect(editor).to_have_text("旧的")  # the stored HTML is shown in the editor
        assert page.locator("textarea#description_html").is_hidden()
        # The toolbar speaks the page's language (Quill's own words are English).
        expect(page.locator("#details .ql-toolbar button.ql-bold").first).to_have_attribute(
            "aria-label", "粗体"
        )
        expect(page.locator("#details .ql-header .ql-picker-label").first).to_have_attribute(
            "data-label", "正文"
        )
        page.get_by_label("详细介绍", exact=True).click()  # the label leads to the editor
        page.keyboard.press("Control+A")
        page.keyboard.type("唱念做打 四功")
        page.keyboard.press("Control+A")
        page.keyboard.press("Control+B")
        page.click("#details button[type=submit]")
        page.wait_for_load_state()
        stored = _working(Course, course).description_html
        assert stored == "<p><strong>唱念做打 四功</strong></p>", stored
        assert not errors, errors
