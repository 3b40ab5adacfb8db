"""Authorisation matrix: every role and scope × every visibility × every state.

The rules under test (see the docstring of app/catalog/services.py):
- published content is read by its visibility scope; drafts, reviews and archived
  content only by editors (the author, her district's admins, platform admins);
- a write by someone who cannot read the content is 404, by a reader who is not an
  editor 403, without a user 401.
"""

from __future__ import annotations

import pytest

from app.catalog.models import State
from tests.catalog.helpers import MODELS, assert_error, make_content, snapshot

ACTORS = [
    "anon",
    "student_same",
    "student_other_school",
    "student_other_district",
    "owner",
    "teacher_same_school",
    "teacher_other_district",
    "dadmin_own",
    "dadmin_other",
    "padmin",
]
EDITORS = {"owner", "dadmin_own", "padmin"}
READERS = {
    "region": set(ACTORS),
    "district": {
        "student_same",
        "student_other_school",
        "owner",
        "teacher_same_school",
        "dadmin_own",
        "padmin",
    },
    "school": {"student_same", "owner", "teacher_same_school", "dadmin_own", "padmin"},
    "private": EDITORS,
}
STATES = ["draft", "in_review", "published", "archived"]


def can_read(actor: str, visibility: str, state: str) -> bool:
    return actor in EDITORS or (state == "published" and actor in READERS[visibility])


def write_status(actor: str, visibility: str, state: str) -> int:
    """What a write by ``actor`` that she is not allowed to make must return."""
    if actor == "anon":
        return 401
    return 403 if can_read(actor, visibility, state) else 404


@pytest.mark.parametrize("path", ["courses", "resources"])
@pytest.mark.parametrize("visibility", ["region", "district", "school", "private"])
def test_read_and_list(api, people, path, visibility):
    model = MODELS[path]
    ids = {
        state: make_content(people.owner, model, state, visibility=visibility) for state in STATES
    }
    for actor in ACTORS:
        user = getattr(people, actor)
        listed = api.get(f"/api/v1/{path}?per_page=100", user)
        assert listed.status_code == 200, listed.json
        listed_ids = {item["id"] for item in listed.json["items"]}
        for state, content_id in ids.items():
            readable = can_read(actor, visibility, state)
            one = api.get(f"/api/v1/{path}/{content_id}", user)
            versions = api.get(f"/api/v1/{path}/{content_id}/versions", user)
            if readable:
                assert one.status_code == 200, (actor, state, one.json)
                assert one.json["state"] == state
                assert versions.status_code == 200
            else:
                assert_error(one, 404, "not_found")
                assert_error(versions, 404, "not_found")
            # Only published content is listed, and only to its readers (editors too).
            in_list = state == "published" and actor in READERS[visibility]
            assert (content_id in listed_ids) == in_list, (actor, state, visibility)
        assert listed.json["total"] == len(listed_ids)


WRITES = [
    ("PATCH", "", {"title": "Changed"}),
    ("POST", "/submit", None),
    ("POST", "/withdraw", None),
    ("POST", "/archive", None),
    ("POST", "/restore", None),
    ("DELETE", "/draft", None),
    ("DELETE", "", None),
]


@pytest.mark.parametrize("visibility", ["region", "district", "school", "private"])
def test_non_editors_cannot_write(api, people, visibility):
    model = MODELS["courses"]
    ids = {
        state: make_content(people.owner, model, state, visibility=visibility) for state in STATES
    }
    before = {state: snapshot(model, content_id) for state, content_id in ids.items()}
    for state, content_id in ids.items():
        for actor in sorted(set(ACTORS) - EDITORS):
            user = getattr(people, actor)
            expected = write_status(actor, visibility, state)
            # Every write goes through the same check; the full set runs on published
            # content, a representative three on the other states (keeps the suite fast).
            writes = WRITES if state == "published" else [WRITES[0], WRITES[1], WRITES[-1]]
            for method, suffix, body in writes:
                response = api(method, f"/api/v1/courses/{content_id}{suffix}", user, json=body)
                assert_error(response, expected)
            for action, body in (("approve", None), ("reject", {"note": "no"})):
                response = api.post(f"/api/v1/courses/{content_id}/{action}", user, json=body)
                # Only the owner's district admins review; everyone else is refused alike.
                assert_error(response, expected)
    assert {state: snapshot(model, content_id) for state, content_id in ids.items()} == before


@pytest.mark.parametrize("editor", sorted(EDITORS))
def test_editors_can_do_everything(api, people, editor):
    user = getattr(people, editor)
    content_id = make_content(people.owner, MODELS["courses"], "published", visibility="private")
    base = f"/api/v1/courses/{content_id}"
    response = api.patch(base, user, json={"title": f"Edited by {editor}"})
    assert response.status_code == 200, response.json
    assert response.json["version"] == 2 and response.json["state"] == "draft"
    # The author stays the author, whoever edits.
    assert response.json["author"]["id"] == people.owner.public_id
    assert api.post(f"{base}/submit", user).json["state"] == "published"
    assert api.post(f"{base}/archive", user).json["state"] == "archived"
    assert api.post(f"{base}/restore", user).json["state"] == "published"
    assert api.delete(base, user).status_code == 204
    assert_error(api.get(base, people.owner), 404)


def test_teacher_edits_only_her_own_and_district_admin_her_district(api, people, orgs, make_user):
    mine = make_content(
        people.teacher_same_school, MODELS["courses"], "published", visibility="school"
    )
    other_district = make_content(
        people.teacher_other_district, MODELS["courses"], "draft", visibility="region"
    )
    # The owner (a teacher) cannot edit a colleague's course she can read: 403.
    assert_error(
        api.patch(f"/api/v1/courses/{mine}", people.owner, json={"title": "x"}), 403, "forbidden"
    )
    # A district admin edits her district's content, not another district's draft (unseen: 404).
    assert (
        api.patch(f"/api/v1/courses/{mine}", people.dadmin_own, json={"title": "ok"}).status_code
        == 200
    )
    assert_error(
        api.patch(f"/api/v1/courses/{other_district}", people.dadmin_own, json={"title": "x"}), 404
    )
    assert (
        api.patch(
            f"/api/v1/courses/{other_district}", people.dadmin_other, json={"title": "ok"}
        ).status_code
        == 200
    )


def test_only_authors_create_content(api, people):
    for actor, expected in (("anon", 401), ("student_same", 403)):
        response = api.post(
            "/api/v1/courses", getattr(people, actor), json={"title": "x", "kind": "extended"}
        )
        assert_error(response, expected)
    for actor in ("owner", "dadmin_own"):
        response = api.post(
            "/api/v1/courses",
            getattr(people, actor),
            json={"title": "Mine", "kind": "extended", "category": "tea"},
        )
        assert response.status_code == 201, response.json
        assert response.json["state"] == "draft" and response.json["version"] == 1
    # A platform admin without a school or district cannot own content.
    assert_error(
        api.post("/api/v1/courses", people.padmin, json={"title": "x", "kind": "extended"}), 403
    )


def test_my_content_and_review_queue_scopes(api, people, orgs):
    own = make_content(people.owner, MODELS["courses"], "draft")
    other = make_content(people.teacher_other_district, MODELS["courses"], "in_review")
    mine = api.get("/api/v1/me/courses", people.owner).json
    assert [item["id"] for item in mine["items"]] == [own]
    admin = {item["id"] for item in api.get("/api/v1/me/courses", people.dadmin_own).json["items"]}
    assert admin == {own}
    assert_error(api.get("/api/v1/me/courses"), 401)
    assert_error(api.get("/api/v1/me/courses?state=bogus", people.owner), 422)
    queue = api.get("/api/v1/reviews", people.dadmin_other).json
    assert [item["id"] for item in queue["courses"]["items"]] == [other]
    assert api.get("/api/v1/reviews", people.dadmin_own).json["courses"]["items"] == []
    assert [
        c["id"] for c in api.get("/api/v1/reviews", people.padmin).json["courses"]["items"]
    ] == [other]
    assert_error(api.get("/api/v1/reviews", people.owner), 403)
    assert_error(api.get("/api/v1/reviews"), 401)


def test_old_versions_follow_the_current_visibility(api, people):
    """Making content private hides its old public versions from readers too."""
    content_id = make_content(people.owner, MODELS["courses"], "published", visibility="region")
    base = f"/api/v1/courses/{content_id}"
    assert api.patch(base, people.owner, json={"visibility": "private"}).status_code == 200
    assert api.post(f"{base}/submit", people.owner).json["state"] == "published"
    assert_error(api.get(f"{base}?version=1"), 404)
    assert_error(api.get(f"{base}/versions"), 404)
    assert [v["state"] for v in api.get(f"{base}/versions", people.owner).json] == [
        "superseded",
        "published",
    ]


def test_archived_content_is_hidden_from_readers(api, people):
    content_id = make_content(people.owner, MODELS["resources"], "published")
    assert api.post(f"/api/v1/resources/{content_id}/archive", people.owner).status_code == 200
    assert_error(api.get(f"/api/v1/resources/{content_id}?version=1", people.student_same), 404)
    assert api.get(f"/api/v1/resources/{content_id}", people.owner).json["state"] == State.ARCHIVED
