"""Fixtures of the search tests: every test starts from an empty index.

The ``app`` fixture runs each test on SQLite and on PostgreSQL; ``SEARCH_BACKEND``
defaults to Whoosh on SQLite and to the PostgreSQL backend on PostgreSQL, so every
search test (the judged relevance set included) runs against both backends."""

from __future__ import annotations

import pytest

from app.catalog.models import Resource
from app.extensions import db
from app.search import services
from tests.search.helpers import publish


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


@pytest.fixture
def people(orgs, make_user):
    class People:
        teacher = make_user("teacher", school=orgs.school)
        colleague = make_user("teacher", school=orgs.other_school)  # same district
        outsider = make_user("teacher", school=orgs.review_school)  # other district
        student = make_user("student", school=orgs.school)
        district_admin = make_user("district_admin", district=orgs.district)
        platform_admin = make_user("platform_admin")

    return People


@pytest.fixture
def visibility_catalog(people):
    """One 京剧 resource per visibility, all by the teacher of orgs.school."""
    ids = {}
    for visibility, grades in (
        ("region", ["g7"]),
        ("district", ["g7", "g8"]),
        ("school", ["g8"]),
        ("private", ["g9"]),
    ):
        ids[visibility] = publish(
            people.teacher,
            Resource,
            title=f"京剧 {visibility}",
            kind="video",
            visibility=visibility,
            subject="music",
            grades=grades,
        )
    return ids
