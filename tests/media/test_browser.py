"""Chromium uploads a video through the page (progress bar, direct PUT to the signed
URL), then plays and seeks it in the resource page's player; the player reports events."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import threading
import wave

import pytest
from sqlalchemy import select

from app.extensions import db
from app.media.models import ProgressEvent

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _media_file(tmp_path) -> tuple[str, str]:
    """A 4-second WebM made with ffmpeg, or a WAV tone when ffmpeg is missing."""
    if shutil.which("ffmpeg"):
        path = tmp_path / "课堂实验.webm"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=10",
                "-t",
                "4",
                "-c:v",
                "libvpx",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-b:v",
                "100k",
                str(path),
            ],
            check=True,
            timeout=120,
        )
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


@pytest.fixture
def live_server(app, tmp_path):
    from werkzeug.serving import make_server

    port = _free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def _login(page, base, user):
    page.goto(f"{base}/login")
    page.fill("#email", user.email)
    page.fill("#password", "password123")
    page.click("main form button[type=submit]")
    page.wait_for_load_state()


def test_upload_through_the_page_then_play_and_seek(
    live_server, make_user, make_resource, tmp_path
):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    path, kind = _media_file(tmp_path)
    teacher = make_user("teacher")
    teacher_email = teacher.email
    content_id = make_resource(teacher, kind, title="光的折射实验")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            page = browser.new_page()
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
            reader.eval_on_selector(selector, "e => { e.muted = true; return e.play(); }")
            element = f"document.querySelector('{selector}')"
            reader.wait_for_function(f"() => {element}.currentTime > 0.2", timeout=30_000)
            reader.eval_on_selector(selector, "e => { e.currentTime = 2.5; }")
            reader.wait_for_function(
                f"() => !{element}.seeking && {element}.currentTime >= 2.5", timeout=30_000
            )
            # The player reports asynchronously: wait until both reports are stored.
            _wait_for_verbs(db, content_id, {"played", "seeked"})
        finally:
            browser.close()


def test_pdf_viewer_renders_and_reports(live_server, make_user, make_resource, token_for, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    from PIL import Image
    from playwright.sync_api import sync_playwright

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
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page()
            _login(page, live_server, type("U", (), {"email": email}))
            page.goto(f"{live_server}/resources/{content_id}?version=latest")
            page.wait_for_selector(".pdf-viewer[data-rendered='1']", timeout=30_000)
            assert page.text_content(".pdf-page") == "1 / 2"
            page.click(".pdf-next")
            page.wait_for_selector(".pdf-viewer[data-rendered='2']", timeout=30_000)
            _wait_for_verbs(_db, content_id, {"opened", "completed"})
        finally:
            browser.close()


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
