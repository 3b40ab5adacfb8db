"""The loop: answers → evidence → mastery → explained recommendations; rebuilds,
equivalent knowledge points, privacy and access."""

from __future__ import annotations

import json

import numpy as np
import pytest
from flask import g
from shuyuan_plugins.exercise.models import Attempt
from sqlalchemy import func, select

from app.curriculum import services as curriculum
from app.extensions import db
from app.portraits import sources
from app.portraits.models import Feedback, Generation, Mastery, Observation, SkillParams, Snapshot
from app.portraits.services import bkt, ingest, model, queries, updates
from app.xapi.models import Statement
from tests.portraits.helpers import make_exercise, page_csrf


@pytest.fixture
def week(klass):
    """This week's first lesson with knowledge points, and one of them."""
    for view in sources.weeks_of(klass.student, 0):
        for lesson in view.lessons:
            if lesson["knowledge_points"]:
                return view.week, lesson["node"], lesson["knowledge_points"][0]
    pytest.fail("no lesson with knowledge points this week")


def _questions(kp_identifier: str) -> list[dict]:
    return [
        {
            "id": f"q{i}",
            "type": "true_false",
            "prompt": f"命题 {i}",
            "answer": True,
            "explanation": "因为…",
            "knowledge_points": [kp_identifier],
        }
        for i in range(1, 4)
    ]


@pytest.fixture
def material(klass, week, publish):
    week_number, lesson, kp = week
    exercise = make_exercise(
        klass.teacher, questions=_questions(kp.identifier), visibility="district"
    )
    video = publish(klass.teacher, "讲解微课", kind="video")
    # Aligned to the point, not the lesson: a lesson may have several points (the 2024
    # 节 4.2 has four), and a lesson resource is recommended once for each.
    curriculum.align(klass.teacher, kp.id, "resource", video, "teaches")
    curriculum.align(klass.teacher, kp.id, "resource", exercise, "assesses")
    db.session.commit()
    return {"exercise": exercise, "video": video, "kp": kp, "week": week_number, "lesson": lesson}


def _answer(client, exercise, value: bool):
    token = page_csrf(client, f"/resources/{exercise}")
    headers = {"X-CSRFToken": token}
    attempt = client.post(f"/plugins/exercise/{exercise}/attempts", headers=headers).json
    answers = {q["id"]: value for q in attempt["questions"]}
    response = client.post(
        f"/plugins/exercise/attempts/{attempt['id']}/submit",
        json={"answers": answers},
        headers=headers,
    )
    assert response.status_code == 200, response.json
    return response.json


def test_answers_change_mastery_and_explained_recommendations(client, login, klass, material):
    login(klass.student)
    _answer(client, material["exercise"], False)
    skill = sources.canonical_skills({material["kp"].identifier})[material["kp"].identifier]
    observations = (
        db.session.execute(select(Observation).where(Observation.user_id == klass.student.id))
        .scalars()
        .all()
    )
    assert len(observations) == 3 and {o.skill for o in observations} == {skill}
    assert not any(o.correct for o in observations)
    low = queries.mastery_of(klass.student.id)[skill]
    assert low.method == "elo" and low.p_known < 0.5 and low.answers == 3
    low_value = low.p_known

    api = client.get("/api/v1/recommendations").json
    recommended = {r["content_id"]: r for r in api["this_week"]}
    assert material["video"] in recommended
    rec = recommended[material["video"]]
    assert rec["skill"] == skill and rec["week"] == material["week"]
    assert material["kp"].title in rec["explanation"]
    assert (
        f"{rec['mastery']:.2f}" in rec["explanation"]
        and str(material["week"]) in rec["explanation"]
    )

    english = client.get("/api/v1/recommendations", headers={"Accept-Language": "en"}).json
    text = {r["content_id"]: r["explanation"] for r in english["this_week"]}[material["video"]]
    assert f"week {material['week']}" in text or "周" in text

    _answer(client, material["exercise"], True)
    _answer(client, material["exercise"], True)
    high = queries.mastery_of(klass.student.id)[skill]
    assert high.p_known > low_value and high.answers == 9
    assert db.session.get(Snapshot, (klass.student.id, observations[0].at.date())) is not None

    page = client.get(f"/portraits/students/{klass.student.id}").get_data(as_text=True)
    assert f'data-skill="{skill}"' in page and "<svg" in page


def test_recommendations_drop_what_she_knows_and_record_it_as_xapi(client, login, klass, material):
    login(klass.student)
    _answer(client, material["exercise"], False)
    token = page_csrf(client, f"/portraits/students/{klass.student.id}")
    response = client.post(
        "/api/v1/recommendations/feedback",
        json={"content_id": material["video"], "action": "known", "skill": 5},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 422
    skill = sources.canonical_skills({material["kp"].identifier})[material["kp"].identifier]
    response = client.post(
        "/api/v1/recommendations/feedback",
        json={"content_id": material["video"], "action": "known", "skill": skill},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 201, response.json
    ids = [r["content_id"] for r in client.get("/api/v1/recommendations").json["this_week"]]
    assert material["video"] not in ids
    verbs = [s.full["verb"]["id"] for s in db.session.execute(select(Statement)).scalars()]
    assert "http://id.tincanapi.com/verb/skipped" in verbs
    for bad in (
        [1],
        {"content_id": material["video"], "action": "love"},
        {"content_id": "x" * 37, "action": "clicked"},
    ):
        assert (
            client.post(
                "/api/v1/recommendations/feedback", json=bad, headers={"X-CSRFToken": token}
            ).status_code
            == 422
        )
    missing = client.post(
        "/api/v1/recommendations/feedback",
        json={"content_id": "no-such", "action": "clicked"},
        headers={"X-CSRFToken": token},
    )
    assert missing.status_code == 404
    go = client.get(f"/portraits/go/{material['video']}?skill={skill}")
    assert go.status_code == 302
    assert (
        db.session.execute(
            select(func.count()).select_from(Feedback).where(Feedback.action == "clicked")
        ).scalar_one()
        == 1
    )


def _simulated(users, skills, seed=3):
    """Observations straight from a known BKT model (bypassing the LRS)."""
    rng = np.random.default_rng(seed)
    truth = bkt.Params(0.3, 0.2, 0.2, 0.1)
    rows = []
    t = 0
    for user in users:
        for skill in skills:
            known = rng.random() < truth.prior
            for _ in range(8):
                correct = rng.random() > truth.slip if known else rng.random() < truth.guess
                t += 1
                rows.append(
                    Observation(
                        user_id=user.id,
                        skill=skill,
                        knowledge_point=skill,
                        item=f"i{t % 7}",
                        correct=bool(correct),
                        kind="answer",
                        statement_id=f"s{t}",
                        at=_at(t),
                    )
                )
                if not known and rng.random() < truth.learn:
                    known = True
    db.session.add_all(rows)
    db.session.commit()
    return truth


def _at(t):
    from datetime import datetime, timedelta

    return datetime(2026, 10, 1) + timedelta(minutes=t)


@pytest.fixture
def crowd(make_user, orgs):
    return [make_user("student", school=orgs.school) for _ in range(30)]


def test_rebuild_fits_bkt_and_an_interrupted_one_keeps_serving_the_old(app, crowd, monkeypatch):
    truth = _simulated(crowd, ["kp-a", "kp-b"])
    first = updates.rebuild()
    assert first.state == "active"
    params = {
        p.skill: p
        for p in db.session.execute(
            select(SkillParams).where(SkillParams.generation_id == first.id)
        ).scalars()
    }
    assert {p.method for p in params.values()} == {"bkt"}
    assert (
        abs(params["kp-a"].guess - truth.guess) < 0.15
        and abs(params["kp-a"].slip - truth.slip) < 0.15
    )
    served = {m.skill: m.p_known for m in queries.mastery_of(crowd[0].id).values()}
    assert set(served) == {"kp-a", "kp-b"}

    calls = {"n": 0}
    original = model.fit_skill

    def failing(generation_id, skill, method):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker died")
        return original(generation_id, skill, method)

    monkeypatch.setattr(model, "fit_skill", failing)
    with pytest.raises(RuntimeError):
        updates.rebuild()
    db.session.expire_all()
    assert model.active_generation(create=False).id == first.id
    assert {m.skill: m.p_known for m in queries.mastery_of(crowd[0].id).values()} == served
    states = dict(db.session.execute(select(Generation.id, Generation.state)).all())
    assert sorted(states.values()).count("active") == 1 and "failed" in states.values()
    monkeypatch.setattr(model, "fit_skill", original)
    assert updates.rebuild().state == "active"


def test_queued_rebuild_switches_when_the_last_job_finishes(app, crowd):
    _simulated(crowd[:12], ["kp-a"])
    generation = updates.rebuild(queue=True)  # JOBS_EAGER: the jobs ran in order
    db.session.expire_all()
    assert db.session.get(Generation, generation.id).state == "active"
    assert (
        db.session.execute(
            select(func.count()).select_from(Mastery).where(Mastery.generation_id == generation.id)
        ).scalar_one()
        == 12
    )


def test_online_update_equals_the_batch_filter(app, crowd):
    _simulated(crowd[:10], ["kp-a"])
    generation = updates.rebuild()
    p = db.session.get(SkillParams, (generation.id, "kp-a"))
    params = bkt.Params(p.prior, p.learn, p.guess, p.slip)
    user = crowd[0]
    answers = (
        db.session.execute(
            select(Observation.correct)
            .where(Observation.user_id == user.id)
            .order_by(Observation.at, Observation.id)
        )
        .scalars()
        .all()
    )
    value = params.prior
    for correct in answers:
        value = bkt.update(value, correct, params)
    assert queries.mastery_of(user.id)["kp-a"].p_known == pytest.approx(value)


def test_exact_match_knowledge_points_share_one_mastery(klass, curriculum):
    pep = curriculum.section("pep", "5.1").identifier
    bnu = curriculum.lesson("bnu", "5.1").identifier
    canonical = sources.canonical_skills({pep, bnu})
    assert canonical[pep] == canonical[bnu]
    prefix = sources.resource_activity_prefix()
    from app.xapi.emit import vocab

    statements = [
        {
            "actor": sources.actor_for(klass.student),
            "verb": {"id": ingest.ANSWERED},
            "object": {"objectType": "Activity", "id": f"{prefix}x#question={i}"},
            "result": {"success": True},
            "timestamp": f"2026-10-1{i}T08:00:00Z",
            "context": {"extensions": {vocab("extensions", "knowledge-points"): [kp]}},
        }
        for i, kp in enumerate([pep, bnu])
    ]
    sources.store_statements(klass.student, statements)
    db.session.commit()
    updates.ingest_job()
    rows = queries.mastery_of(klass.student.id)
    assert list(rows) == [canonical[pep]] and rows[canonical[pep]].answers == 2


def test_hostile_statement_fields_are_skipped_not_crashing(app, ctx):
    prefixes = ingest._prefixes()
    for junk in (
        [],
        "x",
        {"actor": []},
        {"actor": {"account": {"name": 1}}},
        {
            "actor": {"account": {"name": "a"}},
            "verb": {"id": "v"},
            "id": "i",
            "object": {"id": "o"},
            "timestamp": ["x"],
        },
    ):
        assert ingest.parse(junk, prefixes) is None
    odd = {
        "actor": {"account": {"name": "a"}},
        "verb": {"id": ingest.ANSWERED},
        "id": "i",
        "object": {"id": "o"},
        "timestamp": "2026-10-01T00:00:00Z",
        "result": {"success": "yes", "score": {"scaled": True}, "duration": ["PT1S"]},
        "context": {"extensions": [], "contextActivities": {"grouping": "x"}},
    }
    parsed = ingest.parse(odd, prefixes)
    assert (
        parsed.success is None
        and parsed.scaled is None
        and parsed.seconds == 0
        and parsed.knowledge_points == []
    )
    assert ingest.parse_duration("PT1M30S") == 90 and ingest.parse_duration("P1Y") == 0


def test_privacy_export_and_forget(app, client, login, klass, material):
    login(klass.student)
    _answer(client, material["exercise"], False)
    runner = app.test_cli_runner()
    exported = runner.invoke(args=["portraits", "export", "--student", klass.student.email])
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.output)
    assert len(data["observations"]) == 3 and len(data["exercise_attempts"]) == 1
    assert data["mastery"] and data["engagement"]
    forgotten = runner.invoke(
        args=["portraits", "forget", "--student", klass.student.public_id, "--yes"]
    )
    assert forgotten.exit_code == 0, forgotten.output
    db.session.expire_all()
    assert queries.mastery_of(klass.student.id) == {}
    assert db.session.execute(select(func.count()).select_from(Attempt)).scalar_one() == 0
    assert db.session.execute(select(func.count()).select_from(Observation)).scalar_one() == 0
    rebuilt = runner.invoke(args=["portraits", "rebuild", "--reingest"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert db.session.execute(select(func.count()).select_from(Observation)).scalar_one() == 0
    assert runner.invoke(args=["portraits", "export", "--student", "nobody@x"]).exit_code != 0


def test_who_sees_what(app, client, login, klass, material, make_user, orgs, token_for):
    login(klass.student)
    _answer(client, material["exercise"], False)
    student, teacher = klass.student, klass.teacher
    other_student = make_user("student")
    other_teacher = make_user("teacher")

    api = app.test_client()  # bearer tokens only, no session cookie

    def get(user, path):
        return api.get(path, headers=token_for(user))

    assert get(student, f"/api/v1/portraits/students/{student.id}").status_code == 200
    assert get(teacher, f"/api/v1/portraits/students/{student.id}").status_code == 200
    assert get(other_student, f"/api/v1/portraits/students/{student.id}").status_code == 404
    assert get(other_teacher, f"/api/v1/portraits/students/{student.id}").status_code == 404
    assert (
        get(other_teacher, f"/api/v1/portraits/classes/{klass.class_id}/heatmap").status_code == 404
    )
    heat = get(teacher, f"/api/v1/portraits/classes/{klass.class_id}/heatmap").json
    assert heat["columns"] and [r["student"]["id"] for r in heat["rows"]] == [student.id]
    assert (
        heat["rows"][0]["cells"][
            [c["identifier"] for c in heat["columns"]].index(material["kp"].identifier)
        ]["mastery"]
        is not None
    )

    assert get(student, f"/api/v1/portraits/districts/{orgs.district.id}").status_code == 403
    aggregates = get(klass.admin, f"/api/v1/portraits/districts/{orgs.district.id}").json
    assert (
        aggregates["min_group_size"] == 10
        and aggregates["groups"] == []
        and aggregates["hidden_groups"] >= 1
    )
    app.config["PORTRAITS_MIN_GROUP_SIZE"] = 1
    try:
        shown = get(klass.admin, f"/api/v1/portraits/districts/{orgs.district.id}").json
    finally:
        app.config.pop("PORTRAITS_MIN_GROUP_SIZE")
    assert shown["groups"] and student.name not in json.dumps(shown)

    skill = heat["columns"][0]["skill"]
    assigned = api.post(
        f"/api/v1/portraits/classes/{klass.class_id}/assignments",
        json={"content_id": material["video"], "skill": material["kp"].identifier},
        headers=token_for(teacher),
    )
    assert assigned.status_code == 201 and assigned.json["student_ids"] == [student.id]
    bad = api.post(
        f"/api/v1/portraits/classes/{klass.class_id}/assignments",
        json={"content_id": material["video"], "student_ids": [other_student.id]},
        headers=token_for(teacher),
    )
    assert bad.status_code == 422
    assert skill
    mine = get(student, "/api/v1/recommendations").json
    assert [a["content_id"] for a in mine["assigned"]] == [material["video"]]
    paths = api.get("/api/v1/openapi.json").json["paths"]
    assert "/api/v1/recommendations" in paths and "/api/v1/portraits/students/{student_id}" in paths


def test_scored_h5p_counts_at_resource_level_and_engagement_and_interests(
    klass, week, publish, teacher_course
):
    _number, lesson, kp = week
    h5p = publish(klass.teacher, "拖拽练习", kind="interactive")
    curriculum.align(klass.teacher, lesson.id, "resource", h5p, "assesses")
    db.session.commit()
    prefix = sources.resource_activity_prefix()
    actor = sources.actor_for(klass.student)
    statements = [
        {
            "actor": actor,
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
            "object": {"objectType": "Activity", "id": f"{prefix}{h5p}"},
            "result": {"score": {"scaled": 0.9}, "completion": True, "duration": "PT4M"},
            "timestamp": "2026-10-13T08:00:00Z",
        },
        {
            "actor": actor,
            "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
            "object": {"objectType": "Activity", "id": f"{prefix}{h5p}"},
            "context": {
                "contextActivities": {
                    "parent": [
                        {
                            "objectType": "Activity",
                            "id": f"{sources.course_activity_prefix()}{teacher_course}",
                        }
                    ]
                }
            },
            "result": {"duration": "PT10M"},
            "timestamp": "2026-10-14T08:00:00Z",
        },
    ]
    sources.store_statements(klass.student, statements)
    db.session.commit()
    updates.ingest_job()
    observations = (
        db.session.execute(select(Observation).where(Observation.user_id == klass.student.id))
        .scalars()
        .all()
    )
    lesson_kps = {k.identifier for k in curriculum.knowledge_points_of([lesson])[lesson.identifier]}
    assert observations and {o.knowledge_point for o in observations} == lesson_kps
    assert all(o.kind == "resource" and o.correct for o in observations)
    portrait = queries.portrait(klass.student, klass.student.id)
    assert portrait.engagement["active_days"] == 2 and portrait.engagement["seconds"] == 840
    assert portrait.engagement["completions"] == 1
    assert portrait.interests == [{"category": "opera", "seconds": 600, "events": 1}]


@pytest.fixture
def teacher_course(klass):
    from app.catalog.models import Course
    from tests.catalog.helpers import make_content

    return make_content(klass.teacher, Course, "published", category="opera")


def test_lti_week_page_shows_her_recommendations(client, login, klass, material):
    login(klass.student)
    _answer(client, material["exercise"], False)
    page = client.get(f"/lti/week/{klass.calendar_id}/{material['week']}")
    if page.status_code == 404:
        pytest.skip("the LTI week page needs an LTI context here")
    html = page.get_data(as_text=True)
    assert "为你推荐" in html and material["kp"].title in html


def test_teacher_and_district_pages(app, client, login, klass, material):
    login(klass.student)
    _answer(client, material["exercise"], False)
    mine = client.get("/portraits/", follow_redirects=True).get_data(as_text=True)
    assert 'role="img"' in mine and "pt-level-weak" in mine and "我已经会了" in mine
    assert material["kp"].title in mine
    teacher = app.test_client()
    g.pop("csrf_token", None)
    from tests.conftest import csrf_token_from

    token = csrf_token_from(teacher)
    teacher.post(
        "/login",
        data={"email": klass.teacher.email, "password": "password123", "csrf_token": token},
    )
    heat = teacher.get(f"/portraits/classes/{klass.class_id}").get_data(as_text=True)
    assert 'id="heatmap"' in heat and klass.student.name in heat
    assert teacher.get("/portraits/classes/999999").status_code == 404
    assert (
        teacher.get(f"/portraits/districts/{klass.school_class.school.district_id}").status_code
        == 403
    )
