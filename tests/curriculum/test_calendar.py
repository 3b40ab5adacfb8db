"""Classes, teaching calendars, "this week", progress and the interfaces other features use."""

from __future__ import annotations

from datetime import date

from flask import g
from sqlalchemy import func, select

from app.curriculum import services
from app.curriculum.models import CalendarVersion, SchoolClass
from app.extensions import db

from .conftest import TERM

MONDAY = date(2026, 11, 23)  # week 13 of the autumn term


def _get(client, url, headers):
    g.pop("_login_user", None)  # the test's app context outlives each request
    return client.get(url, headers=headers)


def _send(client, method, url, headers, json):
    g.pop("_login_user", None)
    return client.open(url, method=method, headers=headers, json=json)


def test_default_plan_spreads_every_lesson_once_in_order(client, klass, curriculum, token_for):
    detail = _get(
        client, f"/api/v1/curriculum/calendars/{klass.calendar_id}", token_for(klass.admin)
    ).get_json()
    weeks = detail["weeks"]
    assert weeks[0]["starts_on"] == "2026-09-01" and weeks[-1]["ends_on"] == "2027-01-22"
    scheduled = [lesson["order_in_volume"] for w in weeks for lesson in w["lessons"]]
    assert scheduled == list(range(1, 29))  # the 28 lessons (节 or 小节) of the volume
    # 1 to 7 October is the holiday: the week of 5 October has two school days only.
    holiday_week = next(w for w in weeks if w["starts_on"] == "2026-10-05")
    assert len(holiday_week["lessons"]) <= 1
    assert detail["current_version"] == 1


def test_student_sees_this_week_and_the_moved_calendar(
    client, klass, curriculum, publish, token_for
):
    week13 = services.lessons_for_week(klass.admin, klass.calendar_id, 13)
    assert week13, "week 13 has lessons"
    content_id = publish(klass.teacher, "本周微课")
    services.align(klass.teacher, week13[0].id, "resource", content_id, "teaches")
    db.session.commit()
    student = token_for(klass.student)

    body = _get(client, f"/api/v1/curriculum/me/this-week?date={MONDAY}", student).get_json()
    assert len(body) == 1
    assert body[0]["week"] == 13 and body[0]["edition"] == "pep"
    assert [lesson["node"]["id"] for lesson in body[0]["lessons"]] == [n.id for n in week13]
    assert body[0]["lessons"][0]["resources"][0]["content_id"] == content_id

    # The teacher adapts the district calendar for her class and moves it one week later.
    teacher = token_for(klass.teacher)
    copy = _send(
        client,
        "POST",
        f"/api/v1/curriculum/calendars/{klass.calendar_id}/override",
        teacher,
        {"class_id": klass.class_id},
    )
    assert copy.status_code == 201, copy.get_json()
    copy_id = copy.get_json()["id"]
    moved = _send(
        client,
        "POST",
        f"/api/v1/curriculum/calendars/{copy_id}/shift",
        teacher,
        {"by": 1, "from_week": 1},
    )
    assert moved.status_code == 200, moved.get_json()

    after = _get(client, f"/api/v1/curriculum/me/this-week?date={MONDAY}", student).get_json()
    week12 = services.lessons_for_week(klass.admin, klass.calendar_id, 12)
    assert after[0]["calendar_id"] == copy_id
    assert [lesson["node"]["id"] for lesson in after[0]["lessons"]] == [n.id for n in week12]
    nxt = _get(
        client, f"/api/v1/curriculum/me/this-week?date={MONDAY}&offset=1", student
    ).get_json()
    assert [lesson["node"]["id"] for lesson in nxt[0]["lessons"]] == [n.id for n in week13]
    assert nxt[0]["lessons"][0]["resources"][0]["content_id"] == content_id
    last = _get(
        client, f"/api/v1/curriculum/me/this-week?date={MONDAY}&offset=-1", student
    ).get_json()
    assert last[0]["week"] == 12

    # The district calendar itself did not move.
    assert services.lessons_for_week(klass.admin, klass.calendar_id, 13) == week13
    versions = _get(client, f"/api/v1/curriculum/calendars/{copy_id}/versions", teacher).get_json()
    assert [v["version"] for v in versions] == [2, 1]


def test_district_sets_the_calendar_for_all_classes(client, klass, orgs, make_user, token_for):
    other = services.get_or_create_class(orgs.school, "七年级（5）班", grade="g7")
    services.set_class_edition(klass.admin, other.id, "math", "pep")
    student = make_user("student")
    services.add_class_member(other, student, "student")
    db.session.commit()
    before = services.this_week(student, on=MONDAY)[0]
    response = _send(
        client,
        "POST",
        f"/api/v1/curriculum/calendars/{klass.calendar_id}/shift",
        token_for(klass.admin),
        {"by": -1, "from_week": 1},
    )
    assert response.status_code == 200
    after = services.this_week(student, on=MONDAY)[0]
    assert [lesson["node"].id for lesson in after.lessons] == [
        n.id for n in services.lessons_for_week(klass.admin, klass.calendar_id, 13)
    ]
    assert after.lessons != before.lessons


def _weeks(detail):
    return [
        {
            "week": w["week"],
            "starts_on": w["starts_on"],
            "ends_on": w["ends_on"],
            "lessons": [lesson["id"] for lesson in w["lessons"]],
        }
        for w in detail["weeks"]
    ]


def test_invalid_calendars_are_rejected_with_clear_messages(client, klass, token_for):
    admin = token_for(klass.admin)
    url = f"/api/v1/curriculum/calendars/{klass.calendar_id}"
    detail = _get(client, url, admin).get_json()
    versions_before = db.session.execute(select(func.count(CalendarVersion.id))).scalar_one()

    overlapping = _weeks(detail)
    overlapping[1]["starts_on"] = overlapping[0]["ends_on"]
    twice = _weeks(detail)
    twice[5]["lessons"].append(twice[0]["lessons"][0])
    outside = _weeks(detail)
    outside[-1]["ends_on"] = "2027-02-03"
    before_term = _weeks(detail)
    before_term[0]["starts_on"] = "2026-08-20"
    foreign = _weeks(detail)
    foreign[0]["lessons"].append(999999)
    cases = [
        ({"weeks": overlapping}, "overlaps week"),
        ({"weeks": twice}, "is scheduled twice"),
        ({"weeks": outside}, "is outside the term"),
        ({"weeks": before_term}, "is outside the term"),
        ({"weeks": foreign}, "is not a lesson of this volume"),
        (
            {"holidays": [{"name": "寒假", "start": "2027-01-20", "end": "2027-02-20"}]},
            "is outside the term",
        ),
        ({"term_start": "2027-02-01"}, "ends before it starts"),
        ({"weeks": [{"week": 1, "lessons": []}, {"week": 1, "lessons": []}]}, "appears twice"),
    ]
    for body, expected in cases:
        response = _send(client, "PUT", url, admin, body)
        assert response.status_code == 422, (body, response.get_json())
        error = response.get_json()["error"]
        assert error["code"] == "validation_error"
        assert expected in str(error["fields"]), (expected, error)
    bad_create = _send(
        client,
        "POST",
        "/api/v1/curriculum/calendars",
        admin,
        {**TERM, "volume_id": detail["volume_id"], "term_end": "2026-08-01"},
    )
    assert bad_create.status_code == 422
    assert (
        db.session.execute(select(func.count(CalendarVersion.id))).scalar_one() == versions_before
    )
    assert _get(client, url, admin).get_json() == detail


def test_editing_weeks_keeps_versions_and_restores(client, klass, token_for):
    admin = token_for(klass.admin)
    url = f"/api/v1/curriculum/calendars/{klass.calendar_id}"
    detail = _get(client, url, admin).get_json()
    weeks = _weeks(detail)
    first_lesson = weeks[0]["lessons"].pop(0)
    weeks[1]["lessons"].insert(0, first_lesson)
    saved = _send(client, "PUT", url, admin, {"weeks": weeks, "note": "慢一点"}).get_json()
    assert saved["current_version"] == 2
    assert (
        saved["weeks"][0]["lessons"] == [] and saved["weeks"][1]["lessons"][0]["id"] == first_lesson
    )
    moved = _send(
        client, "POST", url + "/move", admin, {"node_id": first_lesson, "week": 3}
    ).get_json()
    assert moved["weeks"][2]["lessons"][-1]["id"] == first_lesson
    restored = _send(client, "POST", url + "/restore", admin, {"version": 1}).get_json()
    assert restored["current_version"] == 4
    assert restored["weeks"] == detail["weeks"]
    assert _send(client, "POST", url + "/restore", admin, {"version": 99}).status_code == 404


def test_calendar_permissions(client, klass, orgs, make_user, token_for):
    url = f"/api/v1/curriculum/calendars/{klass.calendar_id}"
    student = token_for(klass.student)
    assert _get(client, url, student).status_code == 200
    assert _send(client, "POST", url + "/shift", student, {"by": 1}).status_code == 403
    assert (
        _send(client, "POST", url + "/shift", token_for(klass.teacher), {"by": 1}).status_code
        == 403
    )
    outsider = make_user("teacher", school=orgs.review_school)
    assert _get(client, url, token_for(outsider)).status_code == 404
    assert _get(client, url, {}).status_code == 401
    create = _send(
        client,
        "POST",
        "/api/v1/curriculum/calendars",
        token_for(klass.teacher),
        {**TERM, "volume_id": klass.calendar.volume_id},
    )
    assert create.status_code == 403


def test_progress_and_classes_api(client, klass, curriculum, token_for):
    teacher = token_for(klass.teacher)
    lesson = curriculum.lesson("pep", "5.1.1")
    response = _send(
        client,
        "PUT",
        f"/api/v1/curriculum/classes/{klass.class_id}/progress",
        teacher,
        {"node_id": lesson.id},
    )
    assert response.status_code == 200
    assert response.get_json()["progress"]["math"]["id"] == lesson.id
    view = services.this_week(klass.student, on=MONDAY)[0]
    assert view.progress.id == lesson.id and view.progress_delta > 0
    not_lesson = _send(
        client,
        "PUT",
        f"/api/v1/curriculum/classes/{klass.class_id}/progress",
        teacher,
        {"node_id": curriculum.volume("pep").id},
    )
    assert not_lesson.status_code == 422
    student = token_for(klass.student)
    assert (
        _send(
            client,
            "PUT",
            f"/api/v1/curriculum/classes/{klass.class_id}/progress",
            student,
            {"node_id": lesson.id},
        ).status_code
        == 403
    )
    mine = _get(client, "/api/v1/curriculum/classes", student).get_json()
    assert [c["id"] for c in mine] == [klass.class_id]
    bad = _send(
        client,
        "PUT",
        f"/api/v1/curriculum/classes/{klass.class_id}/editions",
        teacher,
        {"subject": "math", "edition": "nope"},
    )
    assert bad.status_code == 422
    created = _send(
        client,
        "POST",
        "/api/v1/curriculum/classes",
        teacher,
        {"name": "数学兴趣班", "grade": "g7", "editions": {"math": "bnu"}},
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["editions"] == [{"subject": "math", "edition": "bnu"}]


def test_interfaces_for_other_features(klass, orgs, make_user, curriculum, publish):
    ref = "lti:https://lms.example:ctx-42"
    first = services.get_or_create_class(orgs.school, "LMS 7A", grade="g7", external_ref=ref)
    again = services.get_or_create_class(orgs.school, "LMS 7A renamed", external_ref=ref)
    assert first.id == again.id and again.name == "LMS 7A renamed"
    student = make_user("student")
    services.add_class_member(first, student, "student")
    services.add_class_member(first, student, "student")
    db.session.commit()
    assert db.session.execute(select(func.count(SchoolClass.id))).scalar_one() == 2

    calendars = services.list_calendars(klass.teacher)
    assert [c.id for c in calendars] == [klass.calendar_id]
    assert services.list_calendars(make_user("teacher", school=orgs.review_school)) == []
    lessons = services.lessons_for_week(klass.teacher, klass.calendar_id, 13)
    shown = publish(klass.teacher, "可见")
    hidden = publish(klass.teacher, "仅自己", visibility="private")
    services.align(klass.teacher, lessons[0].id, "resource", shown)
    services.align(klass.teacher, lessons[0].id, "resource", hidden)
    db.session.commit()
    assert [
        r.content_id for r in services.resources_for_week(klass.student, klass.calendar_id, 13)
    ] == [shown]
    assert {
        r.content_id for r in services.resources_for_week(klass.teacher, klass.calendar_id, 13)
    } == {shown, hidden}
    aligned = services.alignments_for_resource(shown)
    assert aligned[0].node_id == lessons[0].id
    assert (aligned[0].subject, aligned[0].grade, aligned[0].edition) == ("math", "g7", "pep")
    assert aligned[0].title == lessons[0].title and aligned[0].volume == "七年级上册"
    assert lessons[0].title in aligned[0].terms and "七年级上册" in aligned[0].terms


def test_this_week_statement_count_does_not_grow_with_resources(app, klass, curriculum, publish):
    """ "This week" reads a fixed number of statements (issue 14): the classes with their
    editions, progress, calendar, the week with its lessons, knowledge points (children
    and links), the exactMatchOf equivalents (one recursive statement) and the aligned
    resources (as plain rows, not entities): 7 in all."""
    from tests.catalog.test_queries import count_statements

    week13 = services.lessons_for_week(klass.admin, klass.calendar_id, 13)
    week13_ids = [n.id for n in week13]
    student_id, user_type = klass.student.id, type(klass.student)

    def statements_for_week() -> int:
        db.session.commit()  # everything expired: read afresh, as a new request would
        student = db.session.get(user_type, student_id)
        student.roles  # noqa: B018  (the request's login loads them, not "this week")
        with count_statements(app) as statements:
            views = services.this_week(student, on=MONDAY)
        assert [lesson["node"].id for lesson in views[0].lessons] == week13_ids
        assert views[0].starts_on == date(2026, 11, 23)
        return len(statements), sum(len(lesson["resources"]) for lesson in views[0].lessons)

    publish_one = publish(klass.teacher, "本周微课 0")
    services.align(klass.teacher, week13_ids[0], "resource", publish_one, "teaches")
    db.session.commit()
    few, shown_few = statements_for_week()
    for n in range(1, 6):
        content_id = publish(klass.teacher, f"本周微课 {n}")
        services.align(klass.teacher, week13_ids[-1], "resource", content_id, "teaches")
    db.session.commit()
    many, shown_many = statements_for_week()
    assert shown_many == shown_few + 5
    assert many == few == 7, (few, many)


def test_this_week_lists_resources_as_rows_with_the_entity_names(app, klass, curriculum, publish):
    """The week's resources are read-only rows (services.ResourceSummary) that answer
    what the pages, the API and the recommendations read of a Resource."""
    from app.catalog.models import Resource

    week13 = services.lessons_for_week(klass.admin, klass.calendar_id, 13)
    content_id = publish(klass.teacher, "本周微课")
    services.align(klass.teacher, week13[0].id, "resource", content_id, "teaches")
    db.session.commit()
    [view] = services.this_week(klass.student, on=MONDAY)
    [entry] = view.lessons[0]["resources"]
    entity = db.session.execute(
        select(Resource).filter_by(content_id=content_id, state="published")
    ).scalar_one()
    assert isinstance(entry.resource, services.ResourceSummary)
    for name in ("id", "content_id", "version", "title", "summary", "kind", "url"):
        assert getattr(entry.resource, name) == getattr(entity, name), name
    assert entry.resource.translated("title", "en") == entity.translated("title", "en")

    # Rows or not, the reader's visibility applies and only published versions show.
    from app.catalog import services as catalog

    private = publish(klass.teacher, "仅自己", visibility="private")
    archived = publish(klass.teacher, "已下架")
    for hidden in (private, archived):
        services.align(klass.teacher, week13[0].id, "resource", hidden, "teaches")
    catalog.archive_content(klass.teacher, Resource, archived)
    db.session.commit()

    def shown(user) -> set[str]:
        [view] = services.this_week(user, on=MONDAY)
        return {e.resource.content_id for e in view.lessons[0]["resources"]}

    assert shown(klass.student) == {content_id}
    assert shown(klass.teacher) == {content_id, private}


def test_equivalents_follow_exact_matches_both_ways_up_to_three_links(app, curriculum):
    """A chain a → b ← c → d → e of exactMatchOf: from a, b, c and d (three links), not e;
    from c, every one of them (two links each way); other association types are not
    followed.  One statement, however many links."""
    from app.curriculum.models import Association
    from tests.catalog.test_queries import count_statements

    framework_id = db.session.execute(select(func.min(Association.framework_id))).scalar()
    chain = [("a", "b"), ("c", "b"), ("c", "d"), ("d", "e")]
    for n, (origin, destination) in enumerate(chain + [("a", "z")]):
        db.session.add(
            Association(
                framework_id=framework_id,
                identifier=f"eq-test-{n}",
                association_type="exactMatchOf" if n < len(chain) else "isRelatedTo",
                origin_identifier=f"eq-{origin}",
                destination_identifier=f"eq-{destination}",
            )
        )
    db.session.flush()
    with count_statements(app) as statements:
        found = services.equivalents({"eq-a", "eq-c", "eq-lonely"})
    assert len(statements) == 1
    assert found["eq-a"] == {"eq-a", "eq-b", "eq-c", "eq-d"}
    assert found["eq-c"] == {"eq-a", "eq-b", "eq-c", "eq-d", "eq-e"}
    assert found["eq-lonely"] == {"eq-lonely"}
    db.session.rollback()


def test_followed_calendars_are_each_class_and_subjects_effective_calendar(
    klass, orgs, make_user, curriculum
):
    """``followed_calendars`` (one statement, rows) gives what ``classes_of`` and
    ``effective_calendar`` give class by class and subject by subject: the class's own
    calendar before its school's before its district's, the newest first, a class with a
    grade only on calendars of no grade or its grade, in class name then subject order
    (issue 14, seventh round)."""
    from datetime import timedelta

    admin, student, volume = klass.admin, klass.student, curriculum.volume("pep")

    def calendar(**where):
        return services.create_calendar(admin, {**TERM, "volume_id": volume.id, **where})

    school_calendar = calendar(school_id=orgs.school.id)  # klass's over the district's
    other_grade = services.get_or_create_class(orgs.other_school, "七年级（1）班", grade="g8")
    no_grade = services.get_or_create_class(orgs.school, "七年级（2）班")
    own = services.get_or_create_class(orgs.school, "七年级（4）班", grade="g7")
    no_edition = services.get_or_create_class(orgs.school, "七年级（6）班", grade="g7")
    for school_class, role in (
        (other_grade, "student"),
        (no_grade, "teacher"),
        (own, "student"),
        (no_edition, "student"),
    ):
        services.add_class_member(school_class, student, role)
        if school_class is not no_edition:
            services.set_class_edition(admin, school_class.id, "math", "pep")
    any_grade = calendar(district_id=orgs.district.id)  # the g8 class's: no grade
    any_grade.grade = None
    newer = calendar(district_id=orgs.district.id)  # the newest, but of grade g7
    class_calendar = calendar(class_id=own.id, term="2026-2027-1b")
    db.session.commit()
    assert volume.grade == "g7"

    def expected(day):
        return [
            (c.id, e.subject, found.id, found.term_start)
            for c in services.classes_of(student)
            for e in c.editions
            if (found := services.effective_calendar(c, e.subject, day)) is not None
        ]

    on = MONDAY
    rows = services.followed_calendars(student, on)
    assert [tuple(row) for row in rows] == expected(on)
    chosen = {row.class_id: row.calendar_id for row in rows}
    assert chosen == {
        klass.school_class.id: school_calendar.id,
        other_grade.id: any_grade.id,
        no_grade.id: school_calendar.id,
        own.id: class_calendar.id,
    }
    assert newer.id not in chosen.values()
    assert services.week_number(rows[0], on) == services.week_number(school_calendar, on)
    after = date(2027, 1, 22) + timedelta(days=1)
    assert services.followed_calendars(student, after) == expected(after) == []
    assert services.followed_calendars(None, on) == []
