"""Inputs a hostile sweep found to reach a 500, and races between concurrent editors."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from app.accounts.models import User
from app.curriculum import services
from app.curriculum.models import Association, Node, TeachingCalendar
from app.extensions import db
from tests.curriculum.conftest import TERM

API = "/api/v1/curriculum"


# --- one calendar per class, subject and term -------------------------------------------


def test_override_after_the_class_got_its_own_calendar_is_not_a_500(
    client, token_for, klass, curriculum
):
    teacher = token_for(klass.teacher)
    first = client.post(
        f"{API}/calendars/{klass.calendar_id}/override",
        json={"class_id": klass.class_id},
        headers=teacher,
    )
    assert first.status_code == 201, first.get_json()
    # A second calendar of the class for the same subject and term is refused...
    second = client.post(
        f"{API}/calendars",
        json={**TERM, "volume_id": curriculum.volume("pep").id, "class_id": klass.class_id},
        headers=teacher,
    )
    assert second.status_code == 409, second.get_json()
    assert second.get_json()["error"]["code"] == "conflict"
    # ...so overriding again finds the one copy (a second one made this a 500).
    again = client.post(
        f"{API}/calendars/{klass.calendar_id}/override",
        json={"class_id": klass.class_id},
        headers=teacher,
    )
    assert again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    count = db.session.execute(
        select(func.count(TeachingCalendar.id)).where(TeachingCalendar.class_id == klass.class_id)
    ).scalar_one()
    assert count == 1


def test_a_class_calendar_of_another_term_is_fine(client, token_for, klass, curriculum):
    teacher = token_for(klass.teacher)
    response = client.post(
        f"{API}/calendars",
        json={
            **TERM,
            "term": "2027-2028-1",
            "volume_id": curriculum.volume("pep").id,
            "class_id": klass.class_id,
        },
        headers=teacher,
    )
    assert response.status_code == 201, response.get_json()


def test_concurrent_overrides_give_one_copy(app, klass):
    """Two requests of the same teacher race to adapt the calendar: one copy, no 500."""
    outcomes: list = []
    barrier = threading.Barrier(2)
    teacher_id = klass.teacher.id

    def override():
        with app.app_context():
            try:
                teacher = db.session.get(User, teacher_id)
                barrier.wait(timeout=60)
                copy = services.override_calendar(teacher, klass.calendar_id, klass.class_id)
                db.session.commit()
                outcomes.append(copy.id)
            except Exception as exc:  # recorded: the assertion below names it
                db.session.rollback()
                outcomes.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=override) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(o, int) for o in outcomes), outcomes
    assert len(set(outcomes)) == 1


# --- frameworks -------------------------------------------------------------------------


def test_unknown_district_when_creating_a_framework_is_422(client, make_user, token_for):
    headers = token_for(make_user("platform_admin"))
    for district_id in (987_654, 2**31 - 1):
        response = client.post(
            f"{API}/frameworks", json={"title": "数学", "district_id": district_id}, headers=headers
        )
        assert response.status_code == 422, response.get_json()
        assert "district_id" in response.get_json()["error"]["fields"]
    response = client.post(
        f"{API}/frameworks", json={"title": "数学", "district_id": 2**40}, headers=headers
    )
    assert response.status_code == 422


def test_unknown_district_when_importing_is_422(client, make_user, token_for, package):
    headers = token_for(make_user("platform_admin"))
    response = client.post(
        f"{API}/frameworks/import?district_id=987654", json=package, headers=headers
    )
    assert response.status_code == 422, response.get_json()
    assert "district_id" in response.get_json()["error"]["fields"]


def test_concurrent_node_additions_neither_deadlock_nor_share_numbers(
    app, client, make_user, token_for
):
    """Eight editors add nodes under the same parent at the same moment (real threads,
    real transactions): every node lands, with distinct sequence numbers."""
    admin = make_user("district_admin")
    framework = client.post(
        f"{API}/frameworks", json={"title": "并发", "subject": "math"}, headers=token_for(admin)
    ).get_json()
    root = services.add_node(admin, framework["id"], {"level": "subject", "title": "数学"})
    db.session.commit()
    # Plain values: the threads must not touch this session's objects.
    admin_id, root_id, root_identifier = admin.id, root.id, root.identifier
    workers, per_worker = 8, 3
    barrier = threading.Barrier(workers)
    errors: list = []

    def add(worker: int):
        with app.app_context():
            user = db.session.get(User, admin_id)
            barrier.wait(timeout=60)
            for n in range(per_worker):
                try:
                    services.add_node(
                        user,
                        framework["id"],
                        {"level": "unit", "title": f"单元 {worker}-{n}", "parent_id": root_id},
                    )
                    db.session.commit()
                except Exception as exc:  # recorded: the assertion below names it
                    db.session.rollback()
                    errors.append(repr(exc))
            db.session.remove()

    threads = [threading.Thread(target=add, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    db.session.expire_all()
    seqs = (
        db.session.execute(select(Node.seq).where(Node.framework_id == framework["id"]))
        .scalars()
        .all()
    )
    assert len(seqs) == 1 + workers * per_worker
    assert len(set(seqs)) == len(seqs)
    children = (
        db.session.execute(
            select(Association.sequence_number).where(
                Association.association_type == "isChildOf",
                Association.destination_identifier == root_identifier,
            )
        )
        .scalars()
        .all()
    )
    assert sorted(children) == list(range(1, workers * per_worker + 1))


# --- ids past the integer range, timestamps ---------------------------------------------

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/frameworks/{HUGE}",
        f"{API}/frameworks/{HUGE}/case",
        f"{API}/volumes/{HUGE}/lessons",
        f"{API}/volumes/{HUGE}/coverage",
        f"{API}/nodes/{HUGE}",
        f"{API}/classes/{HUGE}",
        f"{API}/classes/{HUGE}/this-week",
        f"{API}/calendars/{HUGE}",
        f"{API}/calendars/{HUGE}/versions",
        f"{API}/calendars/1/weeks/{HUGE}",
        f"{API}/frameworks/2147483648",
        "/curriculum/nodes/" + HUGE,
        "/curriculum/frameworks/" + HUGE,
        "/curriculum/classes/" + HUGE,
        "/curriculum/calendars/" + HUGE,
        "/curriculum/volumes/" + HUGE + "/coverage",
    ],
)
def test_out_of_range_ids_in_paths_are_404(client, make_user, token_for, path):
    response = client.get(path, headers=token_for(make_user("platform_admin")))
    assert response.status_code == 404


def test_out_of_range_ids_in_bodies_and_queries_are_422(client, make_user, token_for, klass):
    headers = token_for(make_user("platform_admin"))
    for path, body in (
        (f"{API}/alignments", {"node_id": 2**40, "resource_id": "0" * 36}),
        (f"{API}/associations", {"origin_id": 2**40, "destination_id": 1, "type": "precedes"}),
        (f"{API}/calendars/{klass.calendar_id}/override", {"class_id": 2**40}),
        (f"{API}/calendars/{klass.calendar_id}/move", {"node_id": 2**40, "week": 1}),
        (f"{API}/classes/{klass.class_id}/progress", {"node_id": 2**40}),
    ):
        method = client.put if path.endswith("progress") else client.post
        assert method(path, json=body, headers=headers).status_code == 422, path
    assert client.get(f"{API}/me/this-week?class_id={2**40}", headers=headers).status_code == 422
    page = client.get(f"/curriculum/this-week?class_id={2**40}", headers=headers)
    assert page.status_code in (302, 404)  # not logged in through the page: login redirect


def test_version_timestamps_carry_an_offset(client, token_for, klass):
    versions = client.get(
        f"{API}/calendars/{klass.calendar_id}/versions", headers=token_for(klass.admin)
    ).get_json()
    assert versions and all(v["created_at"].endswith("+00:00") for v in versions)


def test_one_week_of_a_calendar(client, token_for, klass, publish, curriculum):
    lesson = services.lessons_for_week(klass.admin, klass.calendar_id, 13)[0]
    shown = publish(klass.teacher, "整式的加减 视频")
    services.align(klass.teacher, lesson.id, "resource", shown)
    db.session.commit()
    week = client.get(
        f"{API}/calendars/{klass.calendar_id}/weeks/13", headers=token_for(klass.student)
    ).get_json()
    assert week[0]["node"]["id"] == lesson.id
    assert [r["content_id"] for r in week[0]["resources"]] == [shown]
    assert all({"node", "knowledge_points", "resources"} <= set(w) for w in week)
