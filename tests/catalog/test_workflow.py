"""Publishing workflow: draft → (review) → published → archived, with immutable versions."""

from __future__ import annotations

from app import signals
from app.catalog.models import Course, Resource
from tests.catalog.helpers import assert_error, content_data, make_content, rows_of, snapshot


def test_publish_edit_supersede_cycle(api, people, app):
    owner, reader = people.owner, people.student_other_district
    published = []

    def record(sender, **kw):
        published.append(kw["course"].version)

    signals.course_published.connect(record, sender=app)
    try:
        created = api.post(
            "/api/v1/courses", owner, json=content_data(Course, title="茶艺 v1", capacity=30)
        )
        assert created.status_code == 201, created.json
        cid = created.json["id"]
        base = f"/api/v1/courses/{cid}"
        assert_error(api.get(base, reader), 404)  # a draft is not readable
        assert api.post(f"{base}/submit", owner).json["state"] == "published"
        assert published == [1]  # delivered after the commit
        assert api.get(base, reader).json["title"] == "茶艺 v1"
        v1_before = snapshot(Course, cid)

        # Editing after publishing opens draft v2; readers still see v1.
        edited = api.patch(base, owner, json={"title": "茶艺 v2", "tags": ["Tea", "tea ", "茶"]})
        assert edited.status_code == 200, edited.json
        assert (edited.json["version"], edited.json["state"]) == (2, "draft")
        assert edited.json["tags"] == ["tea", "茶"]
        assert snapshot(Course, cid)[0] == v1_before[0]  # the published row is untouched
        assert api.get(base, reader).json["title"] == "茶艺 v1"
        assert api.get(base, owner).json["version"] == 1
        assert api.get(f"{base}?version=latest", owner).json["title"] == "茶艺 v2"
        assert_error(api.get(f"{base}?version=latest", reader), 404)
        assert_error(api.get(f"{base}?version=2", reader), 404)
        assert_error(api.get(f"{base}?version=abc", owner), 422)

        # A second edit changes the same draft, not a third version.
        assert api.patch(base, owner, json={"summary": "更多"}).json["version"] == 2
        assert [v["version"] for v in api.get(f"{base}/versions", owner).json] == [1, 2]
        assert [v["version"] for v in api.get(f"{base}/versions", reader).json] == [1]

        # Publishing v2 supersedes v1, which stays readable by number.
        assert api.post(f"{base}/submit", owner).json["version"] == 2
        assert published == [1, 2]
        assert api.get(base, reader).json["title"] == "茶艺 v2"
        old = api.get(f"{base}?version=1", reader).json
        assert (old["state"], old["title"]) == ("superseded", "茶艺 v1")
        assert [r.state for r in rows_of(Course, cid)] == ["superseded", "published"]
        assert_error(api.post(f"{base}/submit", owner), 409, "conflict")  # nothing to publish

        # Discarding a draft brings back nothing but the published version.
        assert api.patch(base, owner, json={"title": "草稿"}).json["version"] == 3
        assert api.delete(f"{base}/draft", owner).status_code == 204
        assert [v["version"] for v in api.get(f"{base}/versions", owner).json] == [1, 2]
        assert_error(api.delete(f"{base}/draft", owner), 409)

        # Archive / restore.
        assert api.post(f"{base}/archive", owner).json["state"] == "archived"
        assert_error(api.get(base, reader), 404)
        assert cid not in {c["id"] for c in api.get("/api/v1/courses", reader).json["items"]}
        assert_error(api.post(f"{base}/archive", owner), 409)
        assert api.post(f"{base}/restore", owner).json["state"] == "published"
        assert_error(api.post(f"{base}/restore", owner), 409)
        assert cid in {c["id"] for c in api.get("/api/v1/courses", reader).json["items"]}

        # Delete removes every version.
        assert api.delete(base, owner).status_code == 204
        assert rows_of(Course, cid) == []
        assert_error(api.get(base, owner), 404)
        assert_error(api.delete(base, owner), 404)
    finally:
        signals.course_published.disconnect(record, sender=app)


def test_discard_needs_a_published_version(api, people):
    cid = make_content(people.owner, Resource, "draft")
    assert_error(api.delete(f"/api/v1/resources/{cid}/draft", people.owner), 409)
    assert len(rows_of(Resource, cid)) == 1


def test_review_district_workflow(api, people, orgs, make_user):
    author = make_user("teacher", school=orgs.review_school, password=None)
    reviewer, stranger = people.dadmin_other, people.dadmin_own
    reader = people.student_other_district
    cid = api.post("/api/v1/resources", author, json=content_data(Resource, title="天文 v1")).json[
        "id"
    ]
    base = f"/api/v1/resources/{cid}"

    assert api.post(f"{base}/submit", author).json["state"] == "in_review"
    assert_error(api.get(base, reader), 404)
    assert [r["id"] for r in api.get("/api/v1/reviews", reviewer).json["resources"]["items"]] == [
        cid
    ]
    assert_error(api.patch(base, author, json={"title": "x"}), 409)  # frozen while in review
    assert_error(api.post(f"{base}/submit", author), 409)

    # The author withdraws and resubmits; a reviewer of another district cannot even see it.
    assert api.post(f"{base}/withdraw", author).json["state"] == "draft"
    assert_error(api.post(f"{base}/withdraw", author), 409)
    assert api.post(f"{base}/submit", author).json["state"] == "in_review"
    assert_error(api.post(f"{base}/approve", stranger), 404)
    assert_error(api.post(f"{base}/approve", author), 403)

    # Reject needs a note; the note reaches the author and the content goes back to draft.
    before = snapshot(Resource, cid)
    assert_error(api.post(f"{base}/reject", reviewer, json={}), 422)
    assert_error(api.post(f"{base}/reject", reviewer, json={"note": "   "}), 422)
    assert_error(api.post(f"{base}/reject", reviewer, json={"note": "x" * 1001}), 422)
    assert snapshot(Resource, cid) == before
    rejected = api.post(f"{base}/reject", reviewer, json={"note": "请补充字幕"}).json
    assert (rejected["state"], rejected["review_note"]) == ("draft", "请补充字幕")
    assert_error(api.post(f"{base}/approve", reviewer), 409)

    assert api.patch(base, author, json={"summary": "已补充"}).json["version"] == 1
    assert api.post(f"{base}/submit", author).json["review_note"] is None
    approved = api.post(f"{base}/approve", reviewer).json
    assert (approved["state"], approved["version"]) == ("published", 1)
    assert api.get(base, reader).json["title"] == "天文 v1"

    # v2 goes through review too; readers keep v1 until it is approved.
    assert api.patch(base, author, json={"title": "天文 v2"}).json["version"] == 2
    assert api.post(f"{base}/submit", author).json["state"] == "in_review"
    assert api.get(base, reader).json["title"] == "天文 v1"
    assert api.post(f"{base}/approve", people.padmin).json["version"] == 2
    assert api.get(base, reader).json["title"] == "天文 v2"


def test_reviewers_publish_their_own_work_directly(api, people, orgs):
    cid = make_content(people.dadmin_other, Course, "draft")
    assert (
        api.post(f"/api/v1/courses/{cid}/submit", people.dadmin_other).json["state"] == "published"
    )


def test_publishing_checks_required_fields(api, people):
    cid = api.post(
        "/api/v1/courses", people.owner, json={"title": "无类别", "kind": "extended"}
    ).json["id"]
    error = assert_error(api.post(f"/api/v1/courses/{cid}/submit", people.owner), 422)
    assert "category" in error["fields"]
    rid = api.post("/api/v1/resources", people.owner, json={"title": "链接", "kind": "link"}).json[
        "id"
    ]
    assert (
        "url"
        in assert_error(api.post(f"/api/v1/resources/{rid}/submit", people.owner), 422)["fields"]
    )
    assert [r.state for r in rows_of(Course, cid)] == ["draft"]


def test_sections_reference_visible_resources_and_keep_item_keys(api, people):
    rid = make_content(people.owner, Resource, "published")
    hidden = make_content(people.teacher_other_district, Resource, "draft")
    cid = make_content(people.owner, Course, "published")
    base = f"/api/v1/courses/{cid}"
    sections = [{"title": "第一单元", "items": [{"title": "视频", "resource_id": rid}]}]
    draft = api.patch(base, people.owner, json={"sections": sections}).json
    key = draft["sections"][0]["items"][0]["item_key"]
    assert draft["sections"][0]["items"][0]["resource_id"] == rid
    api.post(f"{base}/submit", people.owner)
    v3 = api.patch(base, people.owner, json={"title": "新标题"}).json
    assert v3["sections"][0]["items"][0]["item_key"] == key  # stable across versions
    error = assert_error(
        api.patch(
            base,
            people.owner,
            json={"sections": [{"title": "x", "items": [{"resource_id": hidden}]}]},
        ),
        422,
    )
    assert "sections" in error["fields"]
    assert len(api.get(f"{base}?version=latest", people.owner).json["sections"][0]["items"]) == 1


def test_concurrent_first_edits_open_one_draft(app, people):
    """Two editors opening the next version at once: one draft v2, the other gets 409."""
    import threading

    from app.catalog import services
    from app.common.events import commit
    from app.errors import Conflict
    from app.extensions import db
    from tests.catalog.helpers import fresh

    cid = make_content(people.owner, Course, "published")
    barrier = threading.Barrier(2)
    results = []

    def edit(user_id, title):
        with app.app_context():
            from app.accounts.models import User

            user = db.session.get(User, user_id)
            barrier.wait()
            try:
                services.update_content(user, Course, cid, {"title": title})
                commit()
                results.append("ok")
            except Conflict:
                results.append("conflict")

    threads = [
        threading.Thread(target=edit, args=(u.id, u.name))
        for u in (fresh(people.owner), fresh(people.dadmin_own))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Either both hit the same draft one after the other, or one lost the race to create it.
    assert sorted(results) in (["conflict", "ok"], ["ok", "ok"])
    assert [r.version for r in rows_of(Course, cid)] == [1, 2]
