"""Helpers for page tests: compiled catalogues, logged-in clients, form posts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def compile_catalogues() -> None:
    """Compile every .po that is newer than its .mo (``make`` does this too), so the
    Chinese pages can be tested from a plain ``pytest`` run."""
    for po in list(ROOT.glob("app/translations/*/LC_MESSAGES/messages.po")) + list(
        ROOT.glob("app/*/translations/*/LC_MESSAGES/messages.po")
    ):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source)
        with mo.open("wb") as target:
            write_mo(target, catalog)


@pytest.fixture(scope="session", autouse=True)
def _catalogues():
    compile_catalogues()


class PageClient:
    """A test client logged in through the real login form."""

    def __init__(self, app, user=None, password="password123"):
        self.app = app
        self.client = app.test_client()
        if user is not None:
            response = self.post(
                "/login", {"email": user.email, "password": password}, page="/login"
            )
            assert response.status_code == 302, response.get_data(as_text=True)[:500]

    _csrf: str | None = None

    def token(self, page: str = "/login") -> str:
        """The session's CSRF token, read once from a real form page."""
        if self._csrf is None:
            html = self.get(page).get_data(as_text=True)
            self._csrf = CSRF.search(html).group(1)
        return self._csrf

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, page: str = "/login", csrf: bool = True):
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = self.token(page)
        return self.client.post(path, data=data)


@pytest.fixture
def page_client(app):
    def make(user=None):
        return PageClient(app, user)

    return make


@pytest.fixture
def pc(page_client, make_user):
    """A page client logged in as a new teacher (made before the test's own users)."""
    return page_client(make_user("teacher"))


def field_errors(html: str) -> dict[str, str]:
    """{field id: error text} of a rendered form."""
    return dict(
        re.findall(r'<p class="field-error" id="([\w-]+)-error" role="alert">([^<]*)</p>', html)
    )
