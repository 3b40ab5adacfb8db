"""Enrolment in extended courses: capacity, waiting list, and real concurrent races."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from app.accounts.models import User
from app.catalog import services
from app.catalog.models import Course, CourseSeats, Enrolment
from app.common.events import commit
from app.extensions import db
from tests.catalog.helpers import assert_error, make_content


def _students(make_user, orgs, n):
    return [make_user("student", school=orgs.school, password=None) for _ in range(n)]


def _counts(content_id):
    db.session.expire_all()
    rows = db.session.execute(
        select(Enrolment.status, func.count())
        .where(Enrolment.course_content_id == content_id)
        .group_by(Enrolment.status)
    ).all()
    seats = db.session.get(CourseSeats, content_id)
    return {str(status): n for status, n in rows}, seats.taken


def test_enrol_waitlist_and_fifo_promotion(api, people, orgs, make_user):
    cid = make_content(people.owner, Course, "published", capacity=2, visibility="school")
    s = _students(make_user, orgs, 4)
    path = f"/api/v1/courses/{cid}/enrolment"
    assert_error(api.get(path, s[0]), 404)
    first = api.post(path, s[0])
    assert first.status_code == 201, first.json
    assert (first.json["status"], first.json["waitlist_position"]) == ("enrolled", None)
    assert_error(api.post(path, s[0]), 409, "already_enrolled")
    assert api.post(path, s[1]).json["status"] == "enrolled"
    third = api.post(path, s[2]).json
    assert (third["status"], third["waitlist_position"]) == ("waitlisted", 1)
    assert api.post(path, s[3]).json["waitlist_position"] == 2
    assert_error(api.post(path, s[3]), 409, "already_enrolled")
    assert api.get(f"/api/v1/courses/{cid}/seats", s[0]).json == {"capacity": 2, "taken": 2}

    # The owner sees the list; a colleague does not.
    listed = api.get(f"/api/v1/courses/{cid}/enrolments", people.owner).json
    assert [(e["status"], e["waitlist_position"]) for e in listed] == [
        ("enrolled", None),
        ("enrolled", None),
        ("waitlisted", 1),
        ("waitlisted", 2),
    ]
    assert_error(api.get(f"/api/v1/courses/{cid}/enrolments", people.teacher_same_school), 403)

    # Leaving frees the seat for the FIRST waitlisted student.
    assert api.delete(path, s[0]).json["status"] == "left"
    assert api.get(path, s[2]).json["status"] == "enrolled"
    assert api.get(path, s[3]).json["waitlist_position"] == 1
    assert _counts(cid) == ({"enrolled": 2, "waitlisted": 1, "left": 1}, 2)
    assert_error(api.delete(path, s[0]), 404)
    assert_error(api.get(path, s[0]), 404)

    # A waitlisted student leaving changes no seat; rejoining puts you at the back.
    assert api.delete(path, s[3]).json["status"] == "left"
    assert _counts(cid)[1] == 2
    assert api.post(path, s[0]).json["waitlist_position"] == 1


def test_larger_capacity_in_a_new_version_promotes(api, people, orgs, make_user):
    cid = make_content(people.owner, Course, "published", capacity=1)
    s = _students(make_user, orgs, 3)
    for student in s:
        api.post(f"/api/v1/courses/{cid}/enrolment", student)
    api.patch(f"/api/v1/courses/{cid}", people.owner, json={"capacity": 3})
    assert _counts(cid)[1] == 1  # a draft changes nothing
    api.post(f"/api/v1/courses/{cid}/submit", people.owner)
    assert _counts(cid) == ({"enrolled": 3}, 3)


def test_who_cannot_enrol(api, people, orgs, make_user):
    cid = make_content(people.owner, Course, "published", capacity=5, visibility="school")
    path = f"/api/v1/courses/{cid}/enrolment"
    assert_error(api.post(path), 401)
    assert_error(api.post(path, people.owner), 403)
    assert_error(api.post(path, people.student_other_school), 404)  # cannot see a school course
    curriculum = make_content(
        people.owner,
        Course,
        "published",
        kind="curriculum",
        category=None,
        subject="math",
        grade="g7",
    )
    assert_error(api.post(f"/api/v1/courses/{curriculum}/enrolment", people.student_same), 409)
    closed = make_content(people.owner, Course, "published", enrolment_open=False)
    assert_error(api.post(f"/api/v1/courses/{closed}/enrolment", people.student_same), 409)
    draft = make_content(people.owner, Course, "draft")
    assert_error(api.post(f"/api/v1/courses/{draft}/enrolment", people.student_same), 404)
    archived = make_content(people.owner, Course, "archived")
    assert_error(api.post(f"/api/v1/courses/{archived}/enrolment", people.student_same), 404)
    assert_error(api.post("/api/v1/courses/no-such-course/enrolment", people.student_same), 404)
    assert_error(api.delete("/api/v1/courses/no-such-course/enrolment", people.student_same), 404)
    assert db.session.execute(select(func.count(Enrolment.id))).scalar_one() == 0


def test_my_enrolments_service(people, orgs):
    cid = make_content(people.owner, Course, "published", capacity=1)
    student = db.session.get(User, people.student_same.id)
    services.enrol(student, cid)
    commit()
    [(enrolment, course)] = services.my_enrolments(student)
    assert (enrolment.status, course.content_id) == ("enrolled", cid)


def _race(app, user_ids, content_id, action):
    """Run ``action`` for every user at the same moment, each thread with its own app
    context and database session, as separate gunicorn workers would."""
    barrier = threading.Barrier(len(user_ids))
    results, errors = {}, []

    def work(user_id):
        with app.app_context():
            user = db.session.get(User, user_id)
            barrier.wait()
            try:
                results[user_id] = action(user, content_id).status.value
                commit()
            except Exception as exc:  # collected and asserted below
                db.session.rollback()
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(uid,)) for uid in user_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


def _enrolled_students(make_user, orgs, content_id, count: int) -> list:
    """``count`` new students, enrolled in turn (one commit each, so in that order)."""
    students = _students(make_user, orgs, count)
    for student in students:
        services.enrol(db.session.get(User, student.id), content_id)
        commit()
    return students


def test_race_for_the_last_seat(app, people, orgs, make_user):
    cid = make_content(people.owner, Course, "published", capacity=3)
    _enrolled_students(make_user, orgs, cid, 2)
    racers = _students(make_user, orgs, 6)
    results, errors = _race(app, [s.id for s in racers], cid, services.enrol)
    assert errors == []
    assert sorted(results.values()) == ["enrolled"] + ["waitlisted"] * 5
    assert _counts(cid) == ({"enrolled": 3, "waitlisted": 5}, 3)
    # The waiting list has distinct positions 1..5.
    positions = sorted(
        services.waitlist_position(e)
        for e in db.session.execute(
            select(Enrolment).where(Enrolment.status == "waitlisted")
        ).scalars()
    )
    assert positions == [1, 2, 3, 4, 5]


def test_same_student_enrolling_twice_at_once(app, people, orgs, make_user):
    cid = make_content(people.owner, Course, "published", capacity=10)
    # The id is read here: the threads must not touch the test's session's objects.
    student_id = people.student_same.id
    barrier = threading.Barrier(2)
    outcomes = []

    def work():
        with app.app_context():
            user = db.session.get(User, student_id)
            barrier.wait()
            try:
                services.enrol(user, cid)
                commit()
                outcomes.append("enrolled")
            except Exception as exc:
                db.session.rollback()
                outcomes.append(getattr(exc, "code", type(exc).__name__))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes) == ["already_enrolled", "enrolled"]
    assert _counts(cid) == ({"enrolled": 1}, 1)


def test_concurrent_leaves_promote_distinct_students(app, people, orgs, make_user):
    cid = make_content(people.owner, Course, "published", capacity=3)
    students = _enrolled_students(make_user, orgs, cid, 7)
    leavers, queue = students[:3], students[3:]
    results, errors = _race(app, [s.id for s in leavers], cid, services.leave)
    assert errors == []
    assert set(results.values()) == {"left"}
    db.session.expire_all()
    status = {e.student_id: e.status.value for e in db.session.execute(select(Enrolment)).scalars()}
    # The first three of the queue moved up, in order; the fourth still waits.
    assert [status[s.id] for s in queue] == ["enrolled", "enrolled", "enrolled", "waitlisted"]
    assert _counts(cid) == ({"enrolled": 3, "waitlisted": 1, "left": 3}, 3)
