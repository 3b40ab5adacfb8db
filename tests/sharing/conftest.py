from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.catalog import services as catalog
from app.catalog.models import Course, Resource
from app.common.events import commit
from tests.catalog.helpers import Api


class SharingApi(Api):
    def put(self, path, user=None, **kw):
        return self("PUT", path, user, **kw)


@pytest.fixture
def api(client, token_for):
    return SharingApi(client, token_for)


@pytest.fixture
def people(orgs, make_user):
    """Publisher district ``orgs.district`` (Xihu), subscriber ``orgs.review_district``."""
    return SimpleNamespace(
        author=make_user("teacher", school=orgs.school, password=None),
        pub_admin=make_user("district_admin", district=orgs.district, password=None),
        sub_admin=make_user("district_admin", district=orgs.review_district),
        sub_teacher=make_user("teacher", school=orgs.review_school, password=None),
    )


@pytest.fixture
def publish(people):
    """``publish("resource", title=..., subject=...)`` → content id of a published
    district-visible item of the publisher district."""

    def make(kind="resource", **fields):
        model = Course if kind == "course" else Resource
        data = {
            "title": "一元一次方程",
            "kind": "video" if model is Resource else "curriculum",
            "visibility": "district",
            "subject": "math",
            "url": "https://example.org/v",
        }
        if model is Course:
            data.pop("url")
            data.setdefault("grade", "g7")
        data.update(fields)
        obj = catalog.create_content(people.author, model, data)
        catalog.submit_content(people.author, model, obj.content_id)
        commit()
        return obj.content_id

    return make


@pytest.fixture
def revise(people):
    """Publish a new version of a resource with changed fields."""

    def change(content_id, model=Resource, **fields):
        catalog.update_content(people.author, model, content_id, fields)
        catalog.submit_content(people.author, model, content_id)
        commit()

    return change


@pytest.fixture(autouse=True)
def _empty_search_index(request):
    """The search index outlives a test's rows: start each test from an empty one."""
    if "app" not in request.fixturenames:
        yield
        return
    from app.search import services as search

    with request.getfixturevalue("app").app_context():
        search.get_backend().clear()
    yield
