"""Fixtures of the search tests: every test starts from an empty index.

The ``app`` fixture runs each test on SQLite and on PostgreSQL; ``SEARCH_BACKEND``
defaults to Whoosh on SQLite and to the PostgreSQL backend on PostgreSQL, so every
search test (the judged relevance set included) runs against both backends."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.search import services


@pytest.fixture(autouse=True)
def _empty_index(request):
    if "app" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        services.get_backend().clear()
        db.session.commit()  # the PostgreSQL backend clears in the session
    yield


@pytest.fixture
def search_api(client, token_for):
    def get(user=None, **params):
        headers = token_for(user) if user is not None else {}
        return client.get("/api/v1/search", query_string=params, headers=headers)

    return get
