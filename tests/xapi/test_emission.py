"""The platform's own actions become statements for the right student and tenant."""

from __future__ import annotations

from sqlalchemy import select

from app import hooks
from app.catalog import services as catalog
from app.catalog.models import Course, Resource
from app.common.events import commit
from app.extensions import db
from app.xapi import emit
from app.xapi.models import Statement
from tests.catalog.helpers import fresh, make_content


def stored(verb_iri=None) -> list[dict]:
    db.session.expire_all()
    rows = db.session.execute(select(Statement).order_by(Statement.id)).scalars().all()
    return [r for r in rows if verb_iri is None or r.full["verb"]["id"] == verb_iri]


def _student_and_resource(make_user):
    """A student, and a teacher's resource: its content id and its row."""
    teacher = make_user("teacher")
    student = make_user("student")
    content_id = make_content(teacher, Resource)
    resource = (
        db.session.execute(select(Resource).filter_by(content_id=content_id)).scalars().first()
    )
    return student, content_id, resource


def test_learning_events_become_statements(make_user, orgs, app):
    student, content_id, resource = _student_and_resource(make_user)
    hooks.emit_learning_event(
        fresh(student),
        "completed",
        resource=resource,
        result={"score": {"scaled": 0.9}, "progress": 1},
        context={
            "class_id": 7,
            "lesson": "math-g7-3-2",
            "knowledge_points": ["kp-fraction"],
            "platform": "https://lms.example",
        },
    )
    hooks.emit_learning_event(
        fresh(student), "played", resource=resource, result={"time": 12.5, "length": 300}
    )
    commit()
    rows = stored()
    assert [r.full["verb"]["id"] for r in rows] == [
        emit.VERBS["completed"][0],
        emit.VERBS["played"][0],
    ]
    row = rows[0]
    data = row.full
    student = fresh(student)
    assert row.district_id == orgs.district.id and row.school_id == orgs.school.id
    assert data["actor"] == {
        "objectType": "Agent",
        "account": {
            "homePage": app.config["XAPI_PLATFORM_URL"] + "/d/d1",
            "name": student.public_id,
        },
    }
    assert "mbox" not in str(data["actor"]) and student.email not in str(data)
    assert data["object"]["id"].endswith(f"/resources/{content_id}")
    assert data["object"]["definition"]["type"] == emit.ACTIVITY_TYPES["video"]
    assert data["result"]["score"] == {"scaled": 0.9} and data["result"]["completion"] is True
    assert data["result"]["extensions"][emit.CMI5_PROGRESS] == 100
    extensions = data["context"]["extensions"]
    assert extensions[emit.vocab("extensions", "class")] == "7"
    assert extensions[emit.vocab("extensions", "lesson")] == "math-g7-3-2"
    assert extensions[emit.vocab("extensions", "knowledge-points")] == ["kp-fraction"]
    assert extensions[emit.vocab("extensions", "lms")] == "https://lms.example"
    assert data["context"]["platform"]
    video = rows[1].full
    assert video["result"]["extensions"][emit.VIDEO_TIME] == 12.5
    assert video["context"]["extensions"][emit.VIDEO_LENGTH] == 300


def test_h5p_statement_forwarded_with_student_as_actor(make_user, orgs):
    student, content_id, resource = _student_and_resource(make_user)
    h5p = {
        "actor": {"name": "someone", "mbox": "mailto:leak@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"en-US": "answered"}},
        "object": {
            "id": "http://h5p.example/content/1?subContentId=abc",
            "objectType": "Activity",
            "definition": {
                "interactionType": "choice",
                "choices": [{"id": "0"}, {"id": "1"}],
                "correctResponsesPattern": ["1"],
            },
        },
        "result": {
            "response": "1",
            "success": True,
            "score": {"raw": 1, "min": 0, "max": 1, "scaled": 1},
        },
    }
    hooks.emit_learning_event(fresh(student), "xapi", resource=resource, context={"statement": h5p})
    # An invalid forwarded statement is dropped, never stored half-way.
    hooks.emit_learning_event(
        fresh(student),
        "xapi",
        resource=resource,
        context={"statement": {"verb": {"id": "answered"}}},
    )
    commit()
    [row] = stored()
    assert row.full["actor"]["account"]["name"] == fresh(student).public_id
    assert "leak@example.org" not in str(row.full)
    assert row.full["result"]["response"] == "1"
    grouping = row.full["context"]["contextActivities"]["grouping"]
    assert grouping[0]["id"].endswith(f"/resources/{content_id}")


def test_enrol_and_leave(make_user, orgs):
    teacher = make_user("teacher")
    student = make_user("student")
    content_id = make_content(teacher, Course)
    catalog.enrol(fresh(student), content_id)
    commit()
    catalog.leave(fresh(student), content_id)
    commit()
    rows = stored()
    assert [r.full["verb"]["id"] for r in rows] == [
        emit.VERBS["enrolled"][0],
        emit.VERBS["unenrolled"][0],
    ]
    assert rows[0].full["object"]["id"].endswith(f"/courses/{content_id}")
    assert rows[0].full["object"]["definition"]["name"] == {"zh-CN": "京剧入门"}
    assert all(r.full["actor"]["account"]["name"] == fresh(student).public_id for r in rows)
    assert (
        db.session.get(Course, db.session.execute(select(Course.id)).scalars().first()) is not None
    )


def test_statements_visible_to_district_client_only(make_user, make_lrs, orgs):
    student, content_id, resource = _student_and_resource(make_user)
    hooks.emit_learning_event(fresh(student), "experienced", resource=resource)
    commit()
    assert len(make_lrs().get().get_json()["statements"]) == 1
    assert len(make_lrs(school=orgs.school).get().get_json()["statements"]) == 1
    assert make_lrs(school=orgs.other_school).get().get_json()["statements"] == []
    assert make_lrs(district=orgs.review_district).get().get_json()["statements"] == []
