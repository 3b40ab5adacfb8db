"""District pages (issue 16 item 5): an administrator reaches every class's "this week"
and calendar; "This week" lets her pick a class instead of saying her class has no
calendar; review and exam weeks; the week grid's form; the compact coverage map."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.curriculum import services
from app.curriculum.models import CalendarWeek, TeachingCalendar
from app.extensions import db
from tests.conftest import csrf_token_from

WEEK = "date=2026-11-23"


def _chinese(client):
    client.get("/lang/zh_CN")


def test_this_week_lets_a_district_admin_pick_a_class(client, login, klass):
    login(klass.admin)
    _chinese(client)
    page = client.get(f"/curriculum/this-week?{WEEK}").get_data(as_text=True)
    assert "你的班级本周没有教学日历" not in page
    assert f'href="/curriculum/classes/{klass.class_id}"' in page
    assert f'href="/curriculum/calendars/{klass.calendar_id}"' in page
    assert "七年级（3）班" in page
    # Her class's week is one click away.
    page = client.get(f"/curriculum/classes/{klass.class_id}?{WEEK}").get_data(as_text=True)
    assert "4.2" in page or "整式" in page


def test_curriculum_index_lists_the_district_classes_for_admins_only(
    client, login, klass, orgs, make_user
):
    login(klass.admin)
    page = client.get("/curriculum/").get_data(as_text=True)
    assert 'id="district-classes"' in page
    assert f'href="/curriculum/classes/{klass.class_id}"' in page
    assert f'href="/curriculum/calendars/{klass.calendar_id}"' in page
    client.post("/logout", data={"csrf_token": csrf_token_from(client, "/")})
    login(klass.teacher)
    assert 'id="district-classes"' not in client.get("/curriculum/").get_data(as_text=True)


def test_admin_of_another_district_sees_none_of_these_classes(klass, orgs, make_user):
    other = make_user("district_admin", district=orgs.review_district)
    assert services.district_classes(other) == []
    assert [c.school_class.id for c in services.district_class_calendars(klass.admin)] == [
        klass.class_id
    ]
    assert services.district_classes(klass.teacher) == []


def test_the_teacher_still_sees_her_own_week(client, login, klass):
    login(klass.teacher)
    _chinese(client)
    page = client.get(f"/curriculum/this-week?{WEEK}").get_data(as_text=True)
    assert 'id="district-classes"' not in page
    assert "七年级（3）班" in page


def test_review_and_exam_weeks_are_saved_as_a_version_and_shown(client, klass, token_for):
    admin = token_for(klass.admin)
    url = f"/api/v1/curriculum/calendars/{klass.calendar_id}"
    before = client.get(url, headers=admin).get_json()
    last = before["weeks"][-1]["week"]
    response = client.put(
        url,
        json={"kinds": {str(last): "exam", str(last - 1): "review"}, "note": "复习与考试"},
        headers=admin,
    )
    assert response.status_code == 200, response.get_json()
    weeks = {w["week"]: w for w in client.get(url, headers=admin).get_json()["weeks"]}
    assert weeks[last]["kind"] == "exam" and weeks[last - 1]["kind"] == "review"
    assert weeks[1]["kind"] == "teaching"
    # Spreading again leaves review and exam weeks free of new lessons.
    response = client.put(url, json={"regenerate": True}, headers=admin)
    assert response.status_code == 200
    weeks = {w["week"]: w for w in client.get(url, headers=admin).get_json()["weeks"]}
    assert weeks[last]["lessons"] == [] and weeks[last - 1]["lessons"] == []
    assert weeks[last]["kind"] == "exam"
    every = [n["id"] for w in weeks.values() for n in w["lessons"]]
    assert len(every) == len(set(every)) > 0
    # The kind is part of every saved version, so restoring brings it back.
    versions = client.get(f"{url}/versions", headers=admin).get_json()
    first = min(v["version"] for v in versions)
    client.post(f"{url}/restore", json={"version": first}, headers=admin)
    weeks = {w["week"]: w for w in client.get(url, headers=admin).get_json()["weeks"]}
    assert weeks[last]["kind"] == "teaching"


def test_unknown_week_kind_is_refused(client, klass, token_for):
    admin = token_for(klass.admin)
    url = f"/api/v1/curriculum/calendars/{klass.calendar_id}"
    response = client.put(url, json={"kinds": {"3": "holiday"}}, headers=admin)
    assert response.status_code == 422
    response = client.put(url, json={"kinds": {"99": "exam"}}, headers=admin)
    assert response.status_code == 422
    kinds = db.session.execute(
        select(CalendarWeek.kind).where(CalendarWeek.calendar_id == klass.calendar_id)
    ).scalars()
    assert {k.value for k in kinds} == {"teaching"}


def test_the_week_grid_form_moves_orders_and_marks_weeks(client, login, klass):
    login(klass.admin)
    url = f"/curriculum/calendars/{klass.calendar_id}"
    page = client.get(url).get_data(as_text=True)
    assert 'class="cal-grid"' in page and "data-editable" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    plan = services.calendar_plan(db.session.get(TeachingCalendar, klass.calendar_id))
    week3 = next(p for p in plan if p["week"] == 3)
    week4 = next(p for p in plan if p["week"] == 4)
    moving = week3["lessons"][0].id
    form = {"csrf_token": token, "action": "save", "kind-5": "review"}
    for p in plan:
        for i, n in enumerate(p["lessons"]):
            form[f"lesson-{n.id}"] = str(p["week"])
            form[f"order-{n.id}"] = str(i + 1)
    # The first lesson of week 3 goes to the front of week 4.
    form[f"lesson-{moving}"] = "4"
    form[f"order-{moving}"] = "0"
    response = client.post(url, data=form)
    assert response.status_code == 302
    db.session.expire_all()
    plan = services.calendar_plan(db.session.get(TeachingCalendar, klass.calendar_id))
    by_week = {p["week"]: p for p in plan}
    assert [n.id for n in by_week[4]["lessons"]][0] == moving
    assert moving not in [n.id for n in by_week[3]["lessons"]]
    assert len(by_week[4]["lessons"]) == len(week4["lessons"]) + 1
    assert by_week[5]["kind"] == "review"
    # A junk kind from a tampered form changes nothing.
    response = client.post(url, data={**form, "kind-6": "party"})
    assert response.status_code == 302
    db.session.expire_all()
    plan = services.calendar_plan(db.session.get(TeachingCalendar, klass.calendar_id))
    assert {p["week"]: p["kind"] for p in plan}[6] == "teaching"


def test_the_week_view_says_when_it_is_a_review_week(client, login, klass, token_for):
    admin = token_for(klass.admin)
    url = f"/api/v1/curriculum/calendars/{klass.calendar_id}"
    client.put(url, json={"kinds": {"13": "review"}}, headers=admin)
    login(klass.student)
    _chinese(client)
    page = client.get(f"/curriculum/this-week?{WEEK}").get_data(as_text=True)
    assert "复习周" in page
    response = client.get(
        f"/api/v1/curriculum/me/this-week?{WEEK}", headers=token_for(klass.student)
    )
    assert response.get_json()[0]["kind"] == "review"


def test_coverage_map_is_compact_with_knowledge_points_on_demand(client, login, klass, curriculum):
    login(klass.admin)
    volume = curriculum.volume("pep")
    page = client.get(f"/curriculum/volumes/{volume.id}/coverage").get_data(as_text=True)
    assert 'class="heat compact"' in page and 'id="heat-kp"' in page
    assert 'class="heat-wrap"' in page


def test_a_new_calendar_can_reserve_review_and_exam_weeks(
    client, klass, curriculum, orgs, token_for
):
    admin = token_for(klass.admin)
    body = {
        "term": "2027-2028-1",
        "term_start": "2027-09-01",
        "term_end": "2028-01-21",
        "volume_id": curriculum.volume("bnu").id,
        "district_id": orgs.district.id,
        "kinds": {"19": "review", "20": "exam"},
    }
    response = client.post("/api/v1/curriculum/calendars", json=body, headers=admin)
    assert response.status_code == 201, response.get_json()
    detail = client.get(
        f"/api/v1/curriculum/calendars/{response.get_json()['id']}", headers=admin
    ).get_json()
    weeks = {w["week"]: w for w in detail["weeks"]}
    assert weeks[19]["kind"] == "review" and weeks[20]["kind"] == "exam"
    assert weeks[19]["lessons"] == [] and weeks[20]["lessons"] == []
    bad = client.post(
        "/api/v1/curriculum/calendars",
        json={**body, "term": "x", "kinds": {"45": "exam"}},
        headers=admin,
    )
    assert bad.status_code == 422
