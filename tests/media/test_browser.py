"""Chromium uploads a video through the page (progress bar, direct PUT to the signed
URL), then plays and seeks it in the resource page's player; the player reports events."""

from __future__ import annotations

import io
import os
import shutil
import wave

from sqlalchemy import select

from app.extensions import db
from app.media.models import ProgressEvent
from tests.browser import NEEDS_CHROMIUM
from tests.media.conftest import webm_clip

pytestmark = NEEDS_CHROMIUM


def _media_file(tmp_path) -> tuple[str, str]:
    """A 4-second WebM made with ffmpeg, or a WAV tone when ffmpeg is missing."""
    if shutil.which("ffmpeg"):
        path = webm_clip(tmp_path / "课堂实验.webm", seconds=4)
        return str(path), "video"
    path = tmp_path / "课堂录音.wav"
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(8000 * 2 * 4))
    path.write_bytes(buffer.getvalue())
    return str(path), "audio"


def _login(page, base, user):
    page.goto(f"{base}/login")
    page.fill("#email", user.email)
    page.fill("#password", "password123")
    page.click("main form button[type=submit]")
    page.wait_for_load_state()


def test_upload_through_the_page_then_play_and_seek(
    browser, live_server, make_user, make_resource, tmp_path
):
    path, kind = _media_file(tmp_path)
    teacher = make_user("teacher")
    teacher_email = teacher.email
    content_id = make_resource(teacher, kind, title="光的折射实验")
    context = browser.new_context()
    try:
        page = context.new_page()
        _login(page, live_server, type("U", (), {"email": teacher_email}))
        page.goto(f"{live_server}/resources/{content_id}/media")
        page.set_input_files("#media-file", path)
        page.click("#media-submit")
        page.wait_for_selector("#media-upload[data-state=complete]", timeout=60_000)
        assert page.eval_on_selector("#media-progress", "e => e.value") == 100
        page.wait_for_selector(".current-name", timeout=30_000)
        assert page.text_content(".current-name") == os.path.basename(path)

        # The teacher plays her draft on the resource page (publishing is tested elsewhere).
        reader = page
        reader.goto(f"{live_server}/resources/{content_id}?version=latest")
        selector = "video.player-media" if kind == "video" else "audio.player-media"
        reader.wait_for_selector(selector)
        # The page's CSP forbids eval, so no wait_for_function: the media element's own
        # events mark it, and the test waits for the mark.  Muted play needs no gesture.
        reader.eval_on_selector(
            selector,
            """e => {
                e.addEventListener('timeupdate', () => {
                    if (e.currentTime > 0.2) e.dataset.testPlayed = '1';
                });
                e.muted = true;
                return e.play();
            }""",
        )
        reader.wait_for_selector(f"{selector}[data-test-played]", timeout=30_000)
        reader.eval_on_selector(
            selector,
            """e => {
                e.addEventListener('seeked', () => {
                    if (e.currentTime >= 2.5) e.dataset.testSeeked = '1';
                });
                e.currentTime = 2.5;
            }""",
        )
        reader.wait_for_selector(f"{selector}[data-test-seeked]", timeout=30_000)
        # The player reports asynchronously: wait until both reports are stored.
        _wait_for_verbs(db, content_id, {"played", "seeked"})
    finally:
        context.close()


def test_pdf_viewer_renders_and_reports(
    browser, live_server, make_user, make_resource, token_for, tmp_path
):
    from PIL import Image

    from app.extensions import db as _db
    from tests.media.conftest import upload_file

    pages = [Image.new("RGB", (300, 400), color) for color in ((255, 255, 255), (200, 220, 255))]
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", save_all=True, append_images=pages[1:])
    teacher = make_user("teacher")
    email = teacher.email
    content_id = make_resource(teacher, "document", title="讲义")
    from flask import current_app

    client = current_app.test_client()
    assert (
        upload_file(
            client, token_for(teacher), content_id, "讲义.pdf", buffer.getvalue()
        ).status_code
        == 200
    )
    context = browser.new_context()
    try:
        page = context.new_page()
        _login(page, live_server, type("U", (), {"email": email}))
        page.goto(f"{live_server}/resources/{content_id}?version=latest")
        page.wait_for_selector(".pdf-viewer[data-rendered='1']", timeout=30_000)
        assert page.text_content(".pdf-page") == "1 / 2"
        page.click(".pdf-next")
        page.wait_for_selector(".pdf-viewer[data-rendered='2']", timeout=30_000)
        _wait_for_verbs(_db, content_id, {"opened", "completed"})
    finally:
        context.close()


def _wait_for_verbs(database, content_id: str, wanted: set[str], seconds: float = 30) -> None:
    """Poll the stored progress events until ``wanted`` are all there (no fixed sleep)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        database.session.expire_all()
        verbs = set(
            database.session.execute(
                select(ProgressEvent.verb).filter_by(content_id=content_id)
            ).scalars()
        )
        if wanted <= verbs or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert wanted <= verbs, verbs
