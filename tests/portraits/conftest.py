"""Fixtures of the portraits tests: the demo curriculum, a class with a calendar, a day
pinned inside the term."""

from __future__ import annotations

import pytest

from tests.curriculum.conftest import TERM, curriculum, klass, publish  # noqa: F401

# A Wednesday in week 6 of the autumn term (after the National Day holiday).
DAY = "2026-10-14"


@pytest.fixture(autouse=True)
def _pinned_day(request):
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    app.config["PORTRAITS_TODAY"] = DAY
    yield
    app.config.pop("PORTRAITS_TODAY", None)
