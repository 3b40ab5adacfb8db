"""Issue 16's "done when": the four users of the demo go through their task in Chromium,
on a phone (390 px) and a desktop (1280 px), in Chinese and in English.

Each user is a list of :class:`Step` (add one to extend a walk).  After every step:

- no error page (the document answered < 400 and has no ``.error-page``),
- in Chinese, no English prose on the page (tests/english.py, names and codes allowed),
- the page fits the screen width,
- axe-core finds no serious or critical violation (once per page and viewport),
- a full-page screenshot lands in ``test-artifacts/walkthrough/`` (git-ignored; set
  ``SHUYUAN_ARTIFACTS`` to put them elsewhere), named user-lang-width-step.png.

The demo content (content/) is loaded once into a SQLite file for the module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.config import PROJECT_ROOT
from tests import axe
from tests.browser import NEEDS_CHROMIUM, site_fixture
from tests.english import english_in
from tests.media.conftest import webm_clip

pytestmark = NEEDS_CHROMIUM

ARTIFACTS = Path(
    os.environ.get("SHUYUAN_ARTIFACTS") or PROJECT_ROOT / "test-artifacts" / "walkthrough"
)
VIEWPORTS = {"390": {"width": 390, "height": 844}, "1280": {"width": 1280, "height": 900}}
LANGUAGES = {"zh_CN": "zh-CN", "en": "en"}

# A tiny valid PDF for the teacher's handout.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@dataclass
class Step:
    name: str
    act: Callable  # act(page, walk) -> None; leaves the page to be checked


@dataclass
class Walk:
    base: str
    lang: str
    width: str
    user: str
    tmp: Path
    made: dict = field(default_factory=dict)  # what earlier steps created (ids)

    @property
    def zh(self) -> bool:
        return self.lang == "zh_CN"

    def text(self, zh: str, en: str) -> str:
        return zh if self.zh else en

    def go(self, page, path: str):
        response = page.goto(f"{self.base}{path}")
        assert response is not None and response.status < 400, (path, response and response.status)


# ------------------------------------------------------------------ steps of each user
def log_in(email: str, password: str) -> Step:
    def act(page, walk: Walk):
        walk.go(page, f"/login?lang={walk.lang}")
        expect(page.locator("#email")).to_be_focused()  # the first field has the focus
        page.locator("#email").fill(email)
        page.locator("#password").fill(password)
        page.locator("main form button[type=submit]").click()
        page.wait_for_url(re.compile(r".*/(\?.*)?$"))

    return Step("login", act)


def open_nav(zh: str, en: str) -> Callable:
    def act(page, walk: Walk):
        nav = page.locator("nav.main-nav")
        link = nav.get_by_role("link", name=walk.text(zh, en), exact=True)
        expect(link).to_be_visible()  # in the menu, not scrolled away, in both languages
        link.click()
        page.wait_for_load_state()

    return act


def video_clip(folder: Path) -> Path:
    """Three seconds of test picture, made by ffmpeg (installed by make system-deps)."""
    clip = folder / "liangxiang.webm"
    return clip if clip.exists() else webm_clip(clip, size="320x240")


def teacher_steps() -> list[Step]:
    def new_resource(key: str, kind: str, title: str, summary: str):
        def act(page, walk: Walk):
            walk.go(page, "/me/resources/new")
            page.locator("#kind").select_option(kind)
            page.locator("#title").fill(title)  # her content is Chinese in either UI
            page.locator("#summary").fill(summary)
            page.locator("main form button[type=submit]").first.click()
            page.wait_for_load_state()
            match = re.search(r"/me/resources/([^/]+)/edit", page.url)
            assert match, page.url
            walk.made[key] = match.group(1)

        return act

    def upload(key: str, make_file: Callable[[Walk], Path]):
        def act(page, walk: Walk):
            # In the resource editor: the file goes up with a progress bar, then the
            # editor shows it with its remove button.
            walk.go(page, f"/me/resources/{walk.made[key]}/edit")
            page.locator("#media-file").set_input_files(str(make_file(walk)))
            page.locator("#media-submit").click()
            expect(page.locator("form[action$='/media/remove']")).to_be_visible(timeout=90_000)

        return act

    def handout(walk: Walk) -> Path:
        pdf = walk.tmp / "handout.pdf"
        pdf.write_bytes(PDF)
        return pdf

    def publish(key: str):
        def act(page, walk: Walk):
            walk.go(page, f"/me/resources/{walk.made[key]}/edit")
            page.get_by_role("button", name=walk.text("发布", "Publish"), exact=True).click()
            expect(page.locator(".flash-success")).to_be_visible()

        return act

    def my_courses(page, walk: Walk):
        open_nav("我的课程", "My courses")(page, walk)

    def new_course(page, walk: Walk):
        walk.go(page, "/me/courses/new")
        page.locator("#kind").select_option("extended")
        page.locator("#title").fill("京剧赏析")
        page.locator("#summary").fill("看懂一出戏。")
        page.locator("#visibility").select_option("region")
        page.locator("#category").select_option(index=1)
        page.locator("main form button[type=submit]").first.click()
        expect(page.locator(".flash-success")).to_be_visible()

    def add_section_and_publish(page, walk: Walk):
        page.locator("#new-section-title").fill("第一讲 脸谱")
        page.locator("#new-section-title").press("Enter")
        expect(page.locator("#sections-list")).to_contain_text("脸谱")
        # The video and the handout go into the section through the searchable picker.
        for query, title in (("亮相", "亮相：京剧身段"), ("脸谱讲义", "京剧脸谱讲义")):
            page.click("#section-0 details summary")
            picker = page.locator("#picker-0")
            picker.fill(query)
            # The answer for what was typed, not the one made on focus (aria-busy).
            expect(page.locator("#picker-0-list")).to_have_attribute("aria-busy", "false")
            expect(page.locator("#picker-0-list [role=option]").first).to_contain_text(title)
            # The list must be open when the keys arrive (ArrowDown on a closed list only
            # searches again), and the choice made before the form is sent.
            expect(page.locator("#picker-0-list")).to_be_visible()
            picker.press("ArrowDown")
            picker.press("Enter")
            expect(picker).to_have_value(title)
            page.click("#section-0 form.add-item button[type=submit]")
            page.wait_for_load_state()
            expect(page.locator("#section-0 li.item").last).to_contain_text(title)
        page.get_by_role("button", name=walk.text("发布", "Publish"), exact=True).click()
        expect(page.locator(".flash-success")).to_be_visible()

    return [
        log_in("teacher@shuyuan.test", "shuyuan-teacher"),
        Step("my-courses", my_courses),
        Step("new-video", new_resource("video", "video", "亮相：京剧身段", "看名角的亮相。")),
        Step("upload-video", upload("video", lambda walk: video_clip(walk.tmp))),
        Step("publish-video", publish("video")),
        Step("new-pdf", new_resource("pdf", "document", "京剧脸谱讲义", "认识生旦净丑的脸谱。")),
        Step("upload-pdf", upload("pdf", handout)),
        Step("publish-pdf", publish("pdf")),
        Step("new-course", new_course),
        Step("publish-course", add_section_and_publish),
    ]


def student_steps() -> list[Step]:
    def catalog(page, walk: Walk):
        open_nav("课程", "Courses")(page, walk)
        expect(page.locator("#course-list")).to_be_visible()

    def course(page, walk: Walk):
        page.locator("#course-list").get_by_role(
            "link", name=re.compile("京剧启蒙|Peking Opera for Beginners")
        ).first.click()
        page.wait_for_load_state()
        expect(page.locator("h1")).to_contain_text(re.compile("京剧|Peking Opera"))

    def search(page, walk: Walk):
        walk.go(page, "/search?q=京剧")
        expect(page.locator(".search-results")).to_be_visible()
        if walk.width == "390":
            # Results first: the first hit starts on the first screen, the filters folded.
            top = page.locator(".search-hit").first.bounding_box()
            assert top and top["y"] < 844, top

    def play(page, walk: Walk):
        page.locator(".search-hit h3 a").first.click()
        page.wait_for_load_state()

    def textbooks(page, walk: Walk):
        open_nav("教材", "Textbooks")(page, walk)
        expect(page.locator("#tb-select")).to_be_visible()

    return [
        log_in("student@shuyuan.test", "shuyuan-student"),
        Step("textbooks", textbooks),
        Step("catalog", catalog),
        Step("course", course),
        Step("search", search),
        Step("resource", play),
        Step("enrolments", open_nav("我的报名", "My enrolments")),
    ]


def district_steps() -> list[Step]:
    def curriculum(page, walk: Walk):
        walk.go(page, "/curriculum/")

    def calendar(page, walk: Walk):
        page.locator("a[href*='/curriculum/calendars/']").first.click()
        page.wait_for_load_state()

    def coverage(page, walk: Walk):
        walk.go(page, "/curriculum/")
        page.locator("a[href*='/coverage']").first.click()
        page.wait_for_load_state()

    def pending_release(page, walk: Walk):
        open_nav("共享", "Sharing")(page, walk)
        links = page.locator("main a[href*='/sharing/subscriptions/']")
        hrefs = {links.nth(i).get_attribute("href") for i in range(links.count())}
        for href in sorted(h for h in hrefs if h):
            walk.go(page, href)
            if page.locator("#pending-release").count():
                break
        # The demo's subscription to Wuhan's grade 7 maths has release 2 waiting.
        expect(page.locator("#pending-release table.diff")).to_be_visible()

    return [
        log_in("district@shuyuan.test", "shuyuan-district"),
        Step("reviews", open_nav("审核", "Review")),
        Step("pending-release", pending_release),
        Step("curriculum", curriculum),
        Step("calendar", calendar),
        Step("coverage", coverage),
        Step("this-week", lambda page, walk: walk.go(page, "/curriculum/this-week")),
    ]


def platform_admin_steps() -> list[Step]:
    def lti_admin(page, walk: Walk):
        walk.go(page, "/lti/admin")

    def registration_link(page, walk: Walk):
        page.locator("#lti-link-note").fill("区教育网 Moodle")
        page.locator("form[action$='/admin/registration-links'] button[type=submit]").click()
        page.wait_for_load_state()

    def lrs_credentials(page, walk: Walk):
        walk.go(page, "/admin/lrs/")
        page.locator("#lrs-name").fill("区平台学习记录")
        page.locator("#lrs-client-form button[type=submit]").click()
        page.wait_for_load_state()
        expect(page.locator("#lrs-new-secret-value")).to_be_visible()

    return [
        log_in("admin@shuyuan.test", "shuyuan-admin"),
        Step("administration", open_nav("管理", "Administration")),
        Step("lrs-credentials", lrs_credentials),
        Step("lti-admin", lti_admin),
        Step("registration-link", registration_link),
        Step("my-content", open_nav("我的课程", "My courses")),
    ]


USERS = {
    "teacher": teacher_steps,
    "student": student_steps,
    "district": district_steps,
    "platform-admin": platform_admin_steps,
}


# ------------------------------------------------------------------------------ runner
def _seed():
    from app.common.events import commit
    from app.demo import services as demo

    demo.load_content(PROJECT_ROOT / "content")
    commit()


site = site_fixture("walkthrough", _seed, warm_search=True)


_axe_checked: set[tuple[str, str]] = set()


def _check(page, walk: Walk, step: str, problems: list[str]) -> None:
    where = f"{walk.user}/{walk.lang}/{walk.width}/{step} {page.url}"
    if page.locator(".error-page").count():
        problems.append(f"{where}: error page: {page.locator('main').inner_text()[:200]}")
    if walk.zh:
        english = english_in(page.locator("body").inner_text())
        if english:
            problems.append(f"{where}: English in the Chinese page: {english[:8]}")
    if not page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"):
        problems.append(f"{where}: wider than the screen")
    page_kind = re.sub(r"[0-9a-f-]{8,}|\d+", "N", page.url.split("?")[0].replace(walk.base, ""))
    if (page_kind, walk.width) not in _axe_checked:
        _axe_checked.add((page_kind, walk.width))
        for v in axe.violations(page):
            problems.append(f"{where}: axe {v['impact']} {v['id']}: {v['help']} {v['targets']}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(ARTIFACTS / f"{walk.user}-{walk.lang}-{walk.width}-{step}.png"), full_page=True
    )


@pytest.mark.parametrize("width", list(VIEWPORTS))
@pytest.mark.parametrize("lang", list(LANGUAGES))
@pytest.mark.parametrize("user", list(USERS))
def test_walkthrough(site, browser, tmp_path, user, lang, width):
    context = browser.new_context(
        locale=LANGUAGES[lang],
        viewport=VIEWPORTS[width],
        is_mobile=width == "390",
        has_touch=width == "390",
        bypass_csp=True,  # lets axe-core in; the CSP has tests of its own
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    walk = Walk(site["base"], lang, width, user, tmp_path)
    problems: list[str] = []
    report = ARTIFACTS / f"problems-{user}-{lang}-{width}.txt"
    report.unlink(missing_ok=True)
    current = "start"
    try:
        walk.go(page, f"/lang/{lang}?next=/")
        for step in USERS[user]():
            current = step.name
            step.act(page, walk)
            _check(page, walk, step.name, problems)
    except Exception as exc:
        problems.append(f"{user}/{lang}/{width}/{current} {page.url}: {type(exc).__name__}: {exc}")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{user}-{lang}-{width}-{current}-failed.png"))
    finally:
        context.close()
    if problems:  # kept beside the screenshots, for whoever looks at them
        report.write_text("\n".join(problems) + "\n", encoding="utf-8")
    assert not problems, "\n".join(problems)
