"""What every browser test shares: Debian's Chromium driven by Playwright, and a real
HTTP server for an app on a port chosen at run time.

Use the fixtures ``browser`` (one Chromium for the whole session) and ``live_server``
(the ``app`` fixture served over HTTP) from ``tests/conftest.py``, or a module's own
seeded app (:func:`site_fixture`), mark the module with ``pytestmark = NEEDS_CHROMIUM``,
and wait on conditions (Playwright's ``expect`` or ``page.wait_for_function``), never
for a fixed time.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.accounts import services as accounts
from app.extensions import db
from app.search.analysis import warm_up

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

NEEDS_CHROMIUM = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    ),
]


@contextlib.contextmanager
def launch_chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    """Serve ``app`` (threaded werkzeug) on a free loopback port; yields the base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


PASSWORD = "password123"  # every user a browser test seeds has it
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def site_fixture(name: str, seed: Callable[[], dict | None], *, warm_search=False, **config):
    """A browser test module's ``site`` fixture (``site = site_fixture(...)``): an app on its
    own SQLite file, seeded by ``seed()`` in its context (then committed) and served over
    HTTP for the module; it yields ``{"base": url, "app": app, **seed()}``.

    ``warm_search`` loads jieba's dictionary before serving, as the production server does
    at start, rather than inside the first request that indexes on a loaded machine."""

    @pytest.fixture(scope="module")
    def site(tmp_path_factory) -> Iterator[dict]:
        # tests.conftest imports this module for its own fixtures: importing it at the
        # top would be circular.
        from tests.conftest import make_app

        instance = tmp_path_factory.mktemp(name)
        app = make_app(f"sqlite:///{instance / 'site.db'}", str(instance), **config)
        with app.app_context():
            db.create_all()
            seeded = seed() or {}
            db.session.commit()
        if warm_search:
            warm_up()
        with serve(app) as base:
            yield {"base": base, "app": app, **seeded}
        with app.app_context():
            db.engine.dispose()

    return site


def add_user(email: str, name: str, role, **scope):
    """A user with ``role`` in ``scope`` (``school=`` or ``district=``; none for a platform
    role), who belongs to that school or district and logs in with :data:`PASSWORD`."""
    user = accounts.create_user(email, name, PASSWORD, **scope)
    accounts.assign_role(user, role, **scope)
    return user


def log_in(page, base: str, email: str, password: str = PASSWORD):
    """Log in through the login form (in any language) and wait for the home page."""
    page.goto(f"{base}/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url(f"{base}/")
    return page


def logged_in(browser, base: str, email: str, *, locale: str, viewport: dict):
    """A page of a new browser context in ``locale`` and ``viewport``, logged in as
    ``email`` (close it with ``page.context.close()``)."""
    return log_in(browser.new_context(locale=locale, viewport=viewport).new_page(), base, email)


def field(page, text: str):
    """The form control labelled ``text`` (a required field's label ends in "*").  Only
    inputs, selects and text areas: the rich-text editor's toolbar has buttons with
    aria-labels too (its heading picker is "标题", like the title field)."""
    return page.get_by_label(re.compile(rf"^{re.escape(text)}( \*)?$")).and_(
        page.locator("input, select, textarea")
    )


def shot(page, name: str) -> None:
    """Full-page screenshot into $SHUYUAN_SCREENSHOTS, for looking at the layout."""
    folder = os.environ.get("SHUYUAN_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=True)
