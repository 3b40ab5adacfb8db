"""Authoring helpers of issue 16: the section picker's JSON endpoint, "sent back" states,
an author's course preview listing her unpublished resources, item moves from the page,
and descriptions written by the rich-text editor surviving the sanitiser."""

from __future__ import annotations

import re

import pytest

from app.catalog import services
from app.catalog.models import Course, Resource
from app.common.events import commit
from app.common.sanitize import sanitize_html
from tests.catalog.helpers import assert_error, fresh, make_content, rows_of

CHOICES = "/api/v1/me/resource-choices"


@pytest.fixture
def page_client(app):
    """A client logged in through the login form (users made with a password)."""
    from tests.pages.conftest import PageClient, compile_catalogues

    compile_catalogues()
    return lambda user=None: PageClient(app, user)


def test_choices_list_her_own_first_then_what_she_may_read(api, people, orgs, make_user):
    draft = make_content(people.owner, Resource, "draft", title="我的京剧草稿")
    mine = make_content(people.owner, Resource, "published", title="我的京剧视频")
    public = make_content(people.teacher_same_school, Resource, "published", title="京剧脸谱")
    hidden = make_content(
        people.teacher_other_district,
        Resource,
        "published",
        title="京剧私有",
        visibility="private",
    )
    other_draft = make_content(people.teacher_same_school, Resource, "draft", title="京剧别人草稿")

    response = api.get(f"{CHOICES}?q=京剧", people.owner)
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = response.json
    ids = [row["id"] for row in rows]
    assert set(ids[:2]) == {draft, mine}  # her own first, drafts included
    assert public in ids
    assert hidden not in ids and other_draft not in ids
    first = next(row for row in rows if row["id"] == draft)
    assert first["own"] is True and first["state"] == "draft" and first["kind"] == "video"
    assert next(row for row in rows if row["id"] == public)["own"] is False

    narrowed = api.get(f"{CHOICES}?q=脸谱", people.owner).json
    assert [row["id"] for row in narrowed] == [public]
    assert len(api.get(f"{CHOICES}?limit=1", people.owner).json) == 1


def test_choices_refuse_the_anonymous_and_bad_arguments(api, people):
    assert_error(api.get(CHOICES), 401)
    assert_error(api.get(f"{CHOICES}?limit=0", people.owner), 422)
    assert_error(api.get(f"{CHOICES}?limit=x", people.owner), 422)
    assert_error(api.get(f"{CHOICES}?q=" + "长" * 201, people.owner), 422)


def test_sent_back_is_what_the_author_reads(api, people, orgs, make_user, page_client):
    reviewer = make_user("district_admin", district=orgs.review_district)
    author = make_user("teacher", school=orgs.review_school)
    content_id = make_content(author, Course, "in_review")
    services.reject_content(fresh(reviewer), Course, content_id, "请补充课程安排")
    commit()

    body = api.get(f"/api/v1/courses/{content_id}?version=latest", author).json
    assert body["state"] == "draft" and body["sent_back"] is True
    assert body["review_note"] == "请补充课程安排"

    client = page_client(author)
    for path in ("/me/content", f"/me/courses/{content_id}/edit"):
        html = client.get(path).get_data(as_text=True)
        assert "已退回：请补充课程安排" in html, path
    client.get("/lang/en")
    html = client.get(f"/me/courses/{content_id}/edit").get_data(as_text=True)
    assert "Sent back: 请补充课程安排" in html

    # Submitted again, it is no longer "sent back".
    services.submit_content(fresh(author), Course, content_id)
    commit()
    assert (
        api.get(f"/api/v1/courses/{content_id}?version=latest", author).json["sent_back"] is False
    )


def test_the_authors_preview_lists_her_unpublished_resources(make_user, page_client):
    owner, student = make_user("teacher"), make_user("student")
    resource = make_content(owner, Resource, "draft", title="尚未发布的讲义")
    course = make_content(owner, Course, "published")
    services.add_section(
        fresh(owner), course, {"title": "第一单元", "items": [{"resource_id": resource}]}
    )
    commit()
    owner_page = page_client(owner).get(f"/courses/{course}?version=latest")
    html = owner_page.get_data(as_text=True)
    assert "尚未发布的讲义" in html and "资源不可用" not in html
    assert f"/resources/{resource}?version=latest" in html
    # Readers never see someone's draft (the published course has no section yet, and the
    # item of the draft version shows nothing of the resource to a student).
    services.submit_content(fresh(owner), Course, course)
    commit()
    student_html = page_client(student).get(f"/courses/{course}").get_data(as_text=True)
    assert "尚未发布的讲义" not in student_html and "资源不可用" in student_html


def test_items_move_one_step_from_the_page_and_stay_put_at_the_ends(make_user, page_client):
    owner = make_user("teacher")
    resources = [make_content(owner, Resource, "published", title=f"R{n}") for n in range(3)]
    course = make_content(owner, Course, "draft")
    services.add_section(
        fresh(owner),
        course,
        {"title": "S", "items": [{"resource_id": r} for r in resources]},
    )
    commit()
    client = page_client(owner)
    page = f"/me/courses/{course}/edit"

    def order():
        return [i.resource_content_id for i in rows_of(Course, course)[-1].sections[0].items]

    def move(item: int, direction: str):
        return client.post(
            f"/me/courses/{course}/sections/0/items/{item}/move", {"direction": direction}, page
        )

    assert move(0, "down").status_code == 302
    assert order() == [resources[1], resources[0], resources[2]]
    assert move(0, "up").status_code == 302
    assert order() == [resources[1], resources[0], resources[2]]  # already first
    assert move(9, "up").status_code == 404
    assert order() == [resources[1], resources[0], resources[2]]


def test_the_rich_text_editors_output_survives_the_sanitiser():
    """What Quill's toolbar (app/static/js/richtext.js) produces is exactly kept;
    what it cannot produce is removed."""
    quill = (
        "<h2>京剧的行当</h2><p><strong>生</strong>、<em>旦</em>、<u>净</u>、<s>丑</s></p>"
        "<ol><li>唱</li><li>念</li></ol><ul><li>做</li><li>打</li></ul>"
        "<blockquote>梨园</blockquote><pre>code</pre><h3>小结</h3>"
        '<p><a href="https://example.org/jingju">链接</a></p>'
    )
    cleaned = sanitize_html(quill)
    for tag in ("h2", "h3", "strong", "em", "u", "s", "ol", "ul", "li", "blockquote", "pre", "a"):
        assert f"<{tag}" in cleaned, tag
    assert 'href="https://example.org/jingju"' in cleaned
    hostile = sanitize_html(
        '<p onclick="x()">a</p><script>alert(1)</script><a href="javascript:alert(1)">b</a>'
        '<pre data-language="plain" style="color:red">c</pre>'
    )
    assert not re.search(r"script|onclick|javascript|style=|data-language", hostile), hostile
