"""The exercise player plugin: server-side scoring, versioned attempts, xAPI and LTI."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from flask import g
from shuyuan_plugins.exercise.models import Attempt, utcnow
from sqlalchemy import select

from app.extensions import db
from app.lti.models import LtiDeployment, LtiGradeLink, LtiGradeOutbox, LtiPlatform
from app.xapi.models import Statement
from tests.conftest import csrf_token_from
from tests.portraits.helpers import ALL_RIGHT, QUESTIONS, edit_exercise, make_exercise, page_csrf


@pytest.fixture
def teacher(orgs, make_user):
    return make_user("teacher", school=orgs.school)


@pytest.fixture
def student(orgs, make_user):
    return make_user("student", school=orgs.school)


@pytest.fixture
def exercise(teacher):
    return make_exercise(teacher)


@pytest.fixture
def player(client, login, student, exercise):
    """A logged-in student on the exercise page: ``player.post(path, json)``."""
    login(student)
    token = page_csrf(client, f"/resources/{exercise}")

    class Player:
        def post(self, path, json=None):
            return client.post(path, json=json, headers={"X-CSRFToken": token})

        def get(self, path):
            return client.get(path)

        def start(self):
            response = self.post(f"/plugins/exercise/{exercise}/attempts")
            assert response.status_code in (200, 201), response.get_data(as_text=True)
            return response.json

        def submit(self, attempt_id, answers):
            return self.post(
                f"/plugins/exercise/attempts/{attempt_id}/submit", {"answers": answers}
            )

    return Player()


def _statements(verb: str) -> list[dict]:
    return [
        s.full
        for s in db.session.execute(select(Statement).order_by(Statement.id)).scalars()
        if s.full["verb"]["id"].endswith("/" + verb)
    ]


def test_page_never_contains_answers_or_explanations(client, login, student, exercise):
    login(student)
    html = client.get(f"/resources/{exercise}").get_data(as_text=True)
    assert 'class="exercise-player"' in html and "3 + (-5) = ?" in html
    for question in QUESTIONS:
        assert question["explanation"] not in html
    started = client.post(
        f"/plugins/exercise/{exercise}/attempts",
        headers={"X-CSRFToken": page_csrf(client, f"/resources/{exercise}")},
    ).json
    assert all("answer" not in q and "explanation" not in q for q in started["questions"])
    assert [q["version"] for q in started["questions"]] == [1] * 5


def test_scoring_explanations_and_xapi(player):
    attempt = player.start()
    answers = dict(ALL_RIGHT, q2=[0], q5=None)  # q2 half right is wrong; q5 left blank
    result = player.submit(attempt["id"], answers)
    assert result.status_code == 200, result.json
    body = result.json
    assert body["state"] == "submitted" and body["score"] == {"raw": 3.0, "max": 5.0}
    marks = {q["id"]: q["correct"] for q in body["questions"]}
    assert marks == {"q1": True, "q2": False, "q3": True, "q4": True, "q5": False}
    assert body["questions"][0]["explanation"] == QUESTIONS[0]["explanation"]
    assert body["questions"][1]["answer"] == [0, 2]

    answered = _statements("answered")
    assert len(answered) == 5
    first = answered[0]
    assert first["result"] == {"success": True, "response": "1"}
    assert first["object"]["id"].endswith("#question=q1&version=1")
    assert first["object"]["definition"]["interactionType"] == "choice"
    extensions = first["context"]["extensions"]
    assert any(k.endswith("/knowledge-points") and v == ["kp-add"] for k, v in extensions.items())
    assert answered[1]["result"] == {"success": False, "response": "0"}
    assert "response" not in answered[4]["result"]  # blank
    completed = _statements("completed")
    assert len(completed) == 1
    assert completed[0]["result"]["score"] == {"raw": 3.0, "min": 0, "max": 5.0, "scaled": 0.6}


def test_double_submission_is_refused_and_keeps_the_first(player):
    attempt = player.start()
    assert player.submit(attempt["id"], ALL_RIGHT).status_code == 200
    again = player.submit(attempt["id"], {"q1": 0})
    assert again.status_code == 409 and again.json["error"]["code"] == "already_submitted"
    shown = player.get(f"/plugins/exercise/attempts/{attempt['id']}").json
    assert shown["score"] == {"raw": 5.0, "max": 5.0}
    assert len(_statements("completed")) == 1


def test_bad_answers_are_422_and_store_nothing(player):
    attempt = player.start()
    unknown = player.submit(attempt["id"], {"q1": 1, "nope": 2})
    assert unknown.status_code == 422 and "nope" in unknown.json["error"]["fields"]
    for bad in ({"q1": True}, {"q1": 9}, {"q2": "0"}, {"q3": "false"}, {"q5": "abc"}, {"q4": 3}):
        response = player.submit(attempt["id"], bad)
        assert response.status_code == 422, (bad, response.json)
    for bad_body in ([1, 2], "x", None):
        response = player.post(f"/plugins/exercise/attempts/{attempt['id']}/submit", bad_body)
        assert response.status_code in (400, 422)
    not_object = player.submit(attempt["id"], [1])
    assert not_object.status_code == 422
    # Nothing was lost: the attempt is still open and can be submitted.
    assert player.submit(attempt["id"], ALL_RIGHT).json["score"]["raw"] == 5.0


def test_answers_after_the_attempt_closed_are_409(player):
    attempt = player.start()
    row = db.session.get(Attempt, attempt["id"])
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    late = player.submit(attempt["id"], ALL_RIGHT)
    assert late.status_code == 409 and late.json["error"]["code"] == "attempt_closed"
    db.session.expire_all()
    assert db.session.get(Attempt, attempt["id"]).state == "open"  # kept, not deleted
    fresh = player.start()
    assert fresh["id"] != attempt["id"]


def test_reload_resumes_the_open_attempt(player):
    assert player.start()["id"] == player.start()["id"]


def test_edited_question_keeps_old_attempts_on_their_version(player, teacher, exercise):
    old = player.start()
    assert player.submit(old["id"], ALL_RIGHT).status_code == 200
    pending = player.start()  # opened before the edit, submitted after it
    edited = copy.deepcopy(QUESTIONS)
    edited[0]["answer"] = 0
    edited[0]["options"][0] = "-2 (改)"
    edited[0]["explanation"] = "新解析"
    edit_exercise(teacher, exercise, edited)

    result = player.submit(pending["id"], ALL_RIGHT).json
    assert result["questions"][0]["version"] == 1 and result["questions"][0]["correct"] is True
    new = player.start()
    assert new["questions"][0]["version"] == 2 and new["questions"][1]["version"] == 1
    scored = player.submit(new["id"], ALL_RIGHT).json
    assert scored["questions"][0]["correct"] is False
    assert scored["questions"][0]["explanation"] == "新解析"
    first = player.get(f"/plugins/exercise/attempts/{old['id']}").json
    assert first["questions"][0]["explanation"] == QUESTIONS[0]["explanation"]
    assert first["questions"][0]["options"][0] == "2"


def test_other_students_and_anonymous_are_refused(app, player, make_user, orgs, exercise):
    attempt = player.start()
    assert player.post("/plugins/exercise/no-such-id/attempts").status_code == 404
    no_csrf = app.test_client()
    assert no_csrf.post(f"/plugins/exercise/{exercise}/attempts").status_code == 400
    stranger = make_user("student", school=orgs.school)
    other = app.test_client()
    # Tests share one app context, where flask-wtf caches the first client's token.
    g.pop("csrf_token", None)
    token = csrf_token_from(other)
    response = other.post(
        "/login", data={"email": stranger.email, "password": "password123", "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    g.pop("csrf_token", None)
    token = page_csrf(other, f"/resources/{exercise}")
    stolen = other.post(
        f"/plugins/exercise/attempts/{attempt['id']}/submit",
        json={"answers": ALL_RIGHT},
        headers={"X-CSRFToken": token},
    )
    assert stolen.status_code == 404
    assert other.get(f"/plugins/exercise/attempts/{attempt['id']}").status_code == 404
    anonymous = app.test_client()
    assert anonymous.get(f"/plugins/exercise/attempts/{attempt['id']}").status_code == 401


def test_malformed_exercise_is_refused_clearly(client, login, teacher, student):
    broken = make_exercise(
        teacher,
        questions=[
            {"id": "q1", "type": "single_choice", "prompt": "?", "options": ["a"], "answer": 3}
        ],
    )
    login(student)
    html = client.get(f"/resources/{broken}").get_data(as_text=True)
    assert "cannot be answered" in html or "无法作答" in html
    token = page_csrf(client, "/")
    response = client.post(f"/plugins/exercise/{broken}/attempts", headers={"X-CSRFToken": token})
    assert response.status_code == 422 and response.json["error"]["code"] == "malformed_exercise"


def test_score_goes_to_the_lms_outbox_when_launched_from_lti(player, student, exercise, orgs):
    platform = LtiPlatform(
        issuer="http://127.0.0.1:9/lms",
        client_id="c",
        auth_login_url="http://127.0.0.1:9/auth",
        auth_token_url="http://127.0.0.1:9/token",
        key_set_url="http://127.0.0.1:9/jwks",
    )
    db.session.add(platform)
    db.session.flush()
    deployment = LtiDeployment(platform_id=platform.id, deployment_id="d", approved=True)
    db.session.add(deployment)
    db.session.flush()
    db.session.add(
        LtiGradeLink(
            platform_id=platform.id,
            deployment_id=deployment.id,
            user_id=student.id,
            sub="s",
            resource_link_id="rl",
            content_id=exercise,
            lineitem_url="http://127.0.0.1:9/lineitems/1",
            scopes=["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
        )
    )
    db.session.commit()
    attempt = player.start()
    assert player.submit(attempt["id"], ALL_RIGHT).status_code == 200
    rows = db.session.execute(select(LtiGradeOutbox)).scalars().all()
    assert [(r.score_given, r.score_maximum) for r in rows] == [(5.0, 5.0)]
