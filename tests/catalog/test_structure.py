"""A course's sessions, sections and items edited one at a time through the JSON API
(the same services the editor page uses), and the rules pages and API now share."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from app.catalog.models import Course, Resource
from app.common.transaction import savepoint
from app.extensions import db
from tests.catalog.helpers import assert_error, make_content, rows_of, snapshot
from tests.pages.conftest import PageClient

SESSION = {
    "starts_at": "2026-09-08T15:30:00",
    "ends_at": "2026-09-08T16:30:00",
    "place": "音乐教室",
}


@pytest.fixture
def course(people):
    return make_content(people.owner, Course, "published")


def test_build_a_course_part_by_part(api, people, course):
    rid = make_content(people.owner, Resource, "published")
    other = make_content(people.owner, Resource, "published", title="第二个视频")
    base = f"/api/v1/courses/{course}"
    owner = people.owner

    response = api.post(f"{base}/sessions", owner, json=SESSION)
    assert response.status_code == 201, response.json
    assert response.json["version"] == 2 and response.json["state"] == "draft"
    earlier = {**SESSION, "starts_at": "2026-09-01T15:30:00", "ends_at": "2026-09-01T16:30:00"}
    sessions = api.post(f"{base}/sessions", owner, json=earlier).json["sessions"]
    assert [s["starts_at"][:10] for s in sessions] == ["2026-09-01", "2026-09-08"]  # by time
    moved = api.patch(f"{base}/sessions/0", owner, json={"place": "礼堂"}).json["sessions"]
    assert moved[0]["place"] == "礼堂" and moved[1]["place"] == "音乐教室"
    assert len(api.delete(f"{base}/sessions/1", owner).json["sessions"]) == 1

    for title in ("唱腔", "身段"):
        assert api.post(f"{base}/sections", owner, json={"title": title}).status_code == 201
    sections = api.post(f"{base}/sections/1/move", owner, json={"to": 0}).json["sections"]
    assert [s["title"] for s in sections] == ["身段", "唱腔"]
    renamed = api.patch(f"{base}/sections/0", owner, json={"title": "身段基础", "summary": "站姿"})
    assert renamed.json["sections"][0] == {"title": "身段基础", "summary": "站姿", "items": []}

    api.post(f"{base}/sections/0/items", owner, json={"resource_id": rid})
    items = api.post(f"{base}/sections/0/items", owner, json={"title": "课堂练习"}).json
    items = items["sections"][0]["items"]
    assert [i["resource_id"] for i in items] == [rid, None]
    key = items[0]["item_key"]
    # Moving into another section keeps the item's key (alignments refer to it).
    moved = api.post(f"{base}/sections/0/items/0/move", owner, json={"section": 1, "to": 0}).json
    assert [i["item_key"] for i in moved["sections"][1]["items"]] == [key]
    changed = api.patch(f"{base}/sections/1/items/0", owner, json={"resource_id": other}).json
    assert changed["sections"][1]["items"][0] == {
        "item_key": key,
        "title": None,
        "resource_id": other,
    }
    after = api.delete(f"{base}/sections/0/items/0", owner).json
    assert after["sections"][0]["items"] == []
    assert [s["title"] for s in api.delete(f"{base}/sections/0", owner).json["sections"]] == [
        "唱腔"
    ]

    # Still one draft (version 2); the published version 1 never changed.
    rows = rows_of(Course, course)
    assert [(r.version, r.state) for r in rows] == [(1, "published"), (2, "draft")]
    assert rows[0].sections == [] and rows[0].sessions == []
    assert [i.item_key for s in rows[1].sections for i in s.items] == [key]


def test_refusals_change_nothing(api, people, course):
    hidden = make_content(people.teacher_other_district, Resource, "draft")
    base = f"/api/v1/courses/{course}"
    api.post(f"{base}/sections", people.owner, json={"title": "第一讲"})
    before = snapshot(Course, course)
    cases = [
        ("post", f"{base}/sessions", {**SESSION, "ends_at": "2026-09-08T15:00:00"}, 422),
        ("post", f"{base}/sessions", {"starts_at": "soon"}, 422),
        ("post", f"{base}/sessions", ["not", "an", "object"], 422),
        ("patch", f"{base}/sessions/0", {"place": "x"}, 404),
        ("post", f"{base}/sections", {"title": "  "}, 422),
        ("post", f"{base}/sections", {"title": "x" * 201}, 422),
        ("patch", f"{base}/sections/5", {"title": "x"}, 404),
        ("delete", f"{base}/sections/99999999999999999999", None, 404),
        ("post", f"{base}/sections/0/move", {"to": -1}, 422),
        ("post", f"{base}/sections/0/items", {"resource_id": hidden}, 422),
        ("post", f"{base}/sections/0/items", {}, 422),
        ("post", f"{base}/sections/0/items", {"resource_id": "short"}, 422),
        ("post", f"{base}/sections/0/items/0/move", {"to": 0}, 404),
        ("delete", f"{base}/sections/0/items/0", None, 404),
    ]
    for method, path, body, status in cases:
        kwargs = {"json": body} if body is not None else {}
        response = getattr(api, method)(path, people.owner, **kwargs)
        assert_error(response, status)
        assert snapshot(Course, course) == before, (method, path, body)


def test_only_editors_change_parts(api, people, course):
    base = f"/api/v1/courses/{course}"
    assert_error(api.post(f"{base}/sections", None, json={"title": "x"}), 401)
    assert_error(api.post(f"{base}/sections", people.teacher_same_school, json={"title": "x"}), 403)
    private = make_content(people.owner, Course, "draft")
    assert_error(
        api.post(f"/api/v1/courses/{private}/sections", people.student_same, json={"title": "x"}),
        404,
    )
    response = api.post(f"{base}/sections", people.dadmin_own, json={"title": "区里补充"})
    assert response.status_code == 201


def test_parts_are_in_the_openapi_document(api):
    paths = api.get("/api/v1/openapi.json").json["paths"]
    assert {"patch", "delete"} <= set(paths["/api/v1/courses/{content_id}/sections/{index}"])
    assert "post" in paths["/api/v1/courses/{content_id}/sections/{index}/items/{item}/move"]


# --- one rule for the review note -------------------------------------------------------


def test_a_long_review_note_is_refused_by_page_api_and_service_alike(app, api, people, make_user):
    from app.catalog import services
    from app.errors import Invalid

    cid = make_content(people.owner, Course, "in_review")
    too_long = "改" * 1001
    base = f"/api/v1/courses/{cid}"
    assert_error(api.post(f"{base}/reject", people.dadmin_own, json={"note": too_long}), 422)
    with pytest.raises(Invalid):
        services.reject_content(people.dadmin_own, Course, cid, too_long)
    db.session.rollback()
    pc = PageClient(app, make_user("district_admin"))
    pc.post(f"/reviews/courses/{cid}/reject", {"note": too_long}, page="/reviews")
    assert [r.state for r in rows_of(Course, cid)] == ["in_review"]
    ok = api.post(f"{base}/reject", people.dadmin_own, json={"note": "改" * 1000})
    assert ok.status_code == 200 and len(ok.json["review_note"]) == 1000


# --- timestamps and savepoints ----------------------------------------------------------


def test_timestamps_carry_an_offset(api, people, course):
    body = api.get(f"/api/v1/courses/{course}", people.owner).json
    assert body["updated_at"].endswith("+00:00") and body["published_at"].endswith("+00:00")


def test_a_savepoint_before_any_write_does_not_commit_the_request(app):
    """On SQLite a SAVEPOINT opened before the first write used to open the transaction,
    and its release committed everything so far."""
    with app.app_context():
        db.session.execute(text("CREATE TABLE IF NOT EXISTS savepoint_probe (x INTEGER)"))
        db.session.commit()
        try:
            db.session.execute(select(1))
            with savepoint():
                db.session.execute(text("INSERT INTO savepoint_probe VALUES (1)"))
            db.session.execute(text("INSERT INTO savepoint_probe VALUES (2)"))
            db.session.rollback()
            rows = db.session.execute(text("SELECT x FROM savepoint_probe")).all()
            assert rows == []
        finally:
            db.session.rollback()
            db.session.execute(text("DROP TABLE savepoint_probe"))
            db.session.commit()
