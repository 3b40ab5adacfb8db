"""Fixtures of the search tests: every test starts from an empty index."""

from __future__ import annotations

import pytest

from app.search import services


@pytest.fixture(autouse=True)
def _empty_index(request):
    if "app" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        services.get_backend().clear()
    yield


@pytest.fixture
def search_api(client, token_for):
    def get(user=None, **params):
        headers = token_for(user) if user is not None else {}
        return client.get("/api/v1/search", query_string=params, headers=headers)

    return get
