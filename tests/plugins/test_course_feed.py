"""The shipped course_feed plugin: Atom feeds of region-public content."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405  (parses our own feed in tests)

import pytest

from app.catalog.models import Course, Resource
from app.hooks import registry
from tests.catalog.helpers import Api, make_content

NS = {"a": "http://www.w3.org/2005/Atom"}


@pytest.fixture
def api(client, token_for):
    return Api(client, token_for)


@pytest.fixture
def teacher(orgs, make_user):
    return make_user("teacher", school=orgs.school, password=None)


def _feed(api, path="courses.atom", **headers):
    response = api.get(f"/plugins/course_feed/{path}", headers=headers)
    return response, (ET.fromstring(response.data) if response.status_code == 200 else None)  # noqa: S314


def _entries(feed):
    return [
        {
            "id": e.findtext("a:id", namespaces=NS),
            "title": e.findtext("a:title", namespaces=NS),
            "link": e.find("a:link", NS).get("href"),
            "author": e.findtext("a:author/a:name", namespaces=NS),
            "categories": [c.get("term") for c in e.findall("a:category", NS)],
            "updated": e.findtext("a:updated", namespaces=NS),
        }
        for e in feed.findall("a:entry", NS)
    ]


def test_plugin_is_loaded_in_the_app(app):
    assert "course_feed" in registry(app).plugins


def test_feed_lists_only_region_public_published_courses(api, teacher):
    public = make_content(
        teacher,
        Course,
        "published",
        title="天文观测",
        tags=["星空"],
        translations={"en": {"title": "Stargazing"}},
    )
    for visibility in ("private", "school", "district"):
        make_content(
            teacher, Course, "published", title=f"隐藏 {visibility}", visibility=visibility
        )
    make_content(teacher, Course, "draft", title="草稿")
    make_content(teacher, Course, "archived", title="归档")
    make_content(teacher, Resource, "published", title="资源不在课程源里")

    response, feed = _feed(api)
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    assert feed.tag == "{http://www.w3.org/2005/Atom}feed"
    for required in ("a:id", "a:title", "a:updated"):
        assert feed.findtext(required, namespaces=NS)
    [entry] = _entries(feed)
    assert entry["id"] == f"urn:uuid:{public}"
    assert entry["title"] == "天文观测"
    assert entry["link"].endswith(f"/courses/{public}") and entry["link"].startswith("http")
    assert entry["author"] == teacher.name
    assert {"extended", "opera", "星空"} <= set(entry["categories"])
    assert entry["updated"].endswith("Z")
    english = ET.fromstring(api.get("/plugins/course_feed/courses.atom?lang=en").data)  # noqa: S314
    assert _entries(english)[0]["title"] == "Stargazing"
    # The feed is public: a logged-in reader gets the same (no private content leaks in).
    assert api.get("/plugins/course_feed/courses.atom", teacher).data == response.data


def test_feed_follows_publishing(api, teacher):
    _, feed = _feed(api)
    assert _entries(feed) == []
    cid = make_content(teacher, Course, "draft", title="书法入门")
    assert _entries(_feed(api)[1]) == []
    assert api.post(f"/api/v1/courses/{cid}/submit", teacher).status_code == 200
    assert [e["title"] for e in _entries(_feed(api)[1])] == ["书法入门"]
    # A new version replaces the entry (same id), it does not add one.
    api.patch(f"/api/v1/courses/{cid}", teacher, json={"title": "书法进阶"})
    api.post(f"/api/v1/courses/{cid}/submit", teacher)
    entries = _entries(_feed(api)[1])
    assert [(e["id"], e["title"]) for e in entries] == [(f"urn:uuid:{cid}", "书法进阶")]
    # Archiving removes it.
    api.post(f"/api/v1/courses/{cid}/archive", teacher)
    assert _entries(_feed(api)[1]) == []


def test_conditional_get(api, teacher):
    make_content(teacher, Course, "published", title="围棋")
    first, _ = _feed(api)
    etag = first.headers["ETag"]
    again, _ = _feed(api, **{"If-None-Match": etag})
    assert again.status_code == 304
    make_content(teacher, Course, "published", title="剪纸")
    changed, feed = _feed(api, **{"If-None-Match": etag})
    assert changed.status_code == 200
    assert [e["title"] for e in _entries(feed)] == ["剪纸", "围棋"]  # newest first


def test_resources_feed_and_kind_filter(api, teacher):
    video = make_content(teacher, Resource, "published", title="视频", kind="video")
    make_content(
        teacher, Resource, "published", title="链接", kind="link", url="https://example.org"
    )
    make_content(teacher, Resource, "published", title="私有", visibility="private")
    _, feed = _feed(api, "resources.atom")
    assert sorted(e["title"] for e in _entries(feed)) == ["视频", "链接"]
    _, videos = _feed(api, "resources.atom?kind=video")
    assert [e["id"] for e in _entries(videos)] == [f"urn:uuid:{video}"]
    assert api.get("/plugins/course_feed/resources.atom?kind=<script>").status_code == 400
    assert api.get("/plugins/course_feed/courses.atom?kind=" + "x" * 50).status_code == 400


def test_hostile_titles_are_escaped(api, teacher):
    make_content(teacher, Course, "published", title='<script>alert("x")</script> & ]]>')
    response, feed = _feed(api)
    assert b"<script>" not in response.data
    assert _entries(feed)[0]["title"] == '<script>alert("x")</script> & ]]>'
