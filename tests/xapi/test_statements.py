"""Statement resource: storing, idempotency, conflicts, queries, voiding, bad input."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from app.extensions import db
from app.xapi.models import Statement
from tests.xapi.conftest import new_id, statement


def count_statements() -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(Statement)).scalar_one()


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:600]
    body = response.get_json()
    assert body["error"]["message"]
    return body["error"]


def test_post_get_and_headers(lrs):
    response = lrs.post(statement())
    assert response.status_code == 200
    assert response.headers["X-Experience-API-Version"] == "2.0.0"
    [sid] = response.get_json()
    got = lrs.get(statementId=sid)
    assert got.status_code == 200
    data = got.get_json()
    assert data["id"] == sid and data["version"] == "2.0.0"
    assert data["authority"]["account"]["name"]
    assert data["stored"].endswith("Z") and data["timestamp"] == data["stored"]
    assert got.headers["X-Experience-API-Consistent-Through"]
    assert got.headers["Last-Modified"]


def test_version_1_0_3_defaults_version_property(make_lrs):
    lrs = make_lrs(version="1.0.3")
    [sid] = lrs.post(statement()).get_json()
    data = lrs.get(statementId=sid).get_json()
    assert data["version"] == "1.0.0"
    assert lrs.get(statementId=sid).headers["X-Experience-API-Version"] == "1.0.3"


def test_put_idempotent_and_conflict(lrs):
    sid = new_id()
    assert lrs.put(statement(), statementId=sid).status_code == 204
    assert lrs.put(statement(), statementId=sid).status_code == 204  # same content again
    assert count_statements() == 1
    changed = statement(verb={"id": "http://adlnet.gov/expapi/verbs/completed"})
    error_of(lrs.put(changed, statementId=sid), 409)
    error_of(lrs.post([changed | {"id": sid}]), 409)
    assert count_statements() == 1


def test_put_needs_matching_statement_id(lrs):
    error_of(lrs.put(statement()), 400)
    error_of(lrs.put(statement(id=new_id()), statementId=new_id()), 400)
    error_of(lrs.put(statement(), statementId="not-a-uuid"), 400)
    assert count_statements() == 0


def test_batch_is_atomic(lrs):
    good = statement()
    bad = statement(verb={"id": "not an iri"})
    error = error_of(lrs.post([good, bad]), 400)
    assert "statement[1].verb.id" in error["message"]
    assert count_statements() == 0
    sid = new_id()
    error = error_of(lrs.post([statement(id=sid), statement(id=sid)]), 400)
    assert "twice" in error["message"]
    assert count_statements() == 0


def test_bad_bodies(lrs):
    error_of(lrs.post("{not json"), 400)
    error_of(lrs.post(statement(), content_type="text/plain"), 400)
    error_of(lrs.post(statement(), content_type="application/x-www-form-urlencoded"), 400)
    error_of(lrs.post("42"), 400)
    error_of(lrs.post(["x"]), 400)
    assert count_statements() == 0


def test_oversize_batch_is_413(app, lrs):
    app.config["XAPI_MAX_BATCH"] = 3
    try:
        error_of(lrs.post([statement() for _ in range(4)]), 413)
    finally:
        app.config["XAPI_MAX_BATCH"] = 1000
    assert count_statements() == 0


def test_version_header_rules(lrs, client):
    response = client.get("/xapi/statements", headers={"Authorization": lrs.auth})
    error_of(response, 400)
    response = client.get(
        "/xapi/statements", headers={"Authorization": lrs.auth, "X-Experience-API-Version": "0.9"}
    )
    error_of(response, 400)
    assert client.get("/xapi/about").status_code == 200
    assert client.get("/xapi/about").get_json()["version"] == ["1.0.3", "2.0.0"]


def test_credentials_required(client, lrs):
    response = client.get("/xapi/statements", headers={"X-Experience-API-Version": "2.0.0"})
    error_of(response, 401)
    assert "Basic" in response.headers["WWW-Authenticate"]
    bad = {"Authorization": "Basic " + "eDp5", "X-Experience-API-Version": "2.0.0"}
    error_of(client.get("/xapi/statements", headers=bad), 401)


def test_unknown_and_conflicting_query_params(lrs):
    sid = lrs.post(statement()).get_json()[0]
    error_of(lrs.get(foo="bar"), 400)
    error_of(lrs.get(statementId=sid, verb="http://adlnet.gov/expapi/verbs/experienced"), 400)
    error_of(lrs.get(statementId=sid, voidedStatementId=sid), 400)
    error_of(lrs.get(limit="-1"), 400)
    error_of(lrs.get(format="pretty"), 400)
    error_of(lrs.get(agent="{oops"), 400)
    error_of(lrs.get(agent=json.dumps({"mbox": "x"})), 400)
    error_of(lrs.get(since="yesterday"), 400)
    error_of(lrs.get(ascending="maybe"), 400)


def test_queries_filters_and_more(lrs):
    registration = new_id()
    ids = []
    for index in range(5):
        extra = {}
        if index % 2 == 0:
            extra["context"] = {"registration": registration}
        ids.append(lrs.post(statement(**extra)).get_json()[0])
    other_actor = {"mbox": "mailto:lihua@example.org"}
    other = lrs.post(
        statement(
            actor=other_actor,
            verb={"id": "http://adlnet.gov/expapi/verbs/completed"},
            object={"id": "http://example.org/activities/opera"},
        )
    ).get_json()[0]

    page = lrs.get(limit=2).get_json()
    assert len(page["statements"]) == 2 and page["more"].startswith("/xapi/statements?more=")
    seen = [s["id"] for s in page["statements"]]
    while page["more"]:
        response = lrs.client.get(page["more"], headers=lrs.headers())
        assert response.status_code == 200
        page = response.get_json()
        seen += [s["id"] for s in page["statements"]]
    assert seen == [other] + ids[::-1]  # newest first, each once

    ascending = [s["id"] for s in lrs.get(ascending="true").get_json()["statements"]]
    assert ascending == ids + [other]
    by_agent = lrs.get(agent=json.dumps(other_actor)).get_json()["statements"]
    assert [s["id"] for s in by_agent] == [other]
    by_verb = lrs.get(verb="http://adlnet.gov/expapi/verbs/completed").get_json()["statements"]
    assert [s["id"] for s in by_verb] == [other]
    by_activity = lrs.get(activity="http://example.org/activities/tea").get_json()["statements"]
    assert len(by_activity) == 5
    by_registration = lrs.get(registration=registration).get_json()["statements"]
    assert sorted(s["id"] for s in by_registration) == sorted(ids[0::2])
    stored = lrs.get(statementId=ids[2]).get_json()["stored"]
    since = lrs.get(since=stored, ascending="true").get_json()["statements"]
    assert [s["id"] for s in since][0] != ids[2]
    until = lrs.get(until=stored).get_json()["statements"]
    assert ids[2] in [s["id"] for s in until]


def test_related_agents_and_activities(lrs):
    instructor = {"mbox": "mailto:teacher@example.org"}
    sid = lrs.post(
        statement(
            context={
                "instructor": instructor,
                "contextActivities": {"parent": {"id": "http://example.org/courses/opera"}},
            }
        )
    ).get_json()[0]
    assert lrs.get(agent=json.dumps(instructor)).get_json()["statements"] == []
    related = lrs.get(agent=json.dumps(instructor), related_agents="true").get_json()["statements"]
    assert [s["id"] for s in related] == [sid]
    assert lrs.get(activity="http://example.org/courses/opera").get_json()["statements"] == []
    related = lrs.get(
        activity="http://example.org/courses/opera", related_activities="true"
    ).get_json()["statements"]
    assert [s["id"] for s in related] == [sid]
    # A single context activity is returned as an array.
    assert isinstance(related[0]["context"]["contextActivities"]["parent"], list)


def test_formats(lrs):
    sid = lrs.post(
        statement(
            verb={
                "id": "http://adlnet.gov/expapi/verbs/experienced",
                "display": {"en-US": "experienced", "zh-CN": "学习"},
            }
        )
    ).get_json()[0]
    ids = lrs.get(statementId=sid, format="ids").get_json()
    assert ids["verb"] == {"id": "http://adlnet.gov/expapi/verbs/experienced"}
    assert ids["actor"] == {"objectType": "Agent", "mbox": "mailto:xiaoming@example.org"}
    assert ids["object"] == {"id": "http://example.org/activities/tea"}
    canonical = lrs.get(
        statementId=sid, format="canonical", headers={"Accept-Language": "zh-CN"}
    ).get_json()
    assert canonical["verb"]["display"] == {"zh-CN": "学习"}
    exact = lrs.get(statementId=sid).get_json()
    assert exact["verb"]["display"] == {"en-US": "experienced", "zh-CN": "学习"}


def test_voiding_rules(lrs):
    target = lrs.post(statement()).get_json()[0]
    voiding = {
        "actor": statement()["actor"],
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": target},
    }
    voiding_id = lrs.post(voiding).get_json()[0]
    error_of(lrs.get(statementId=target), 404)
    assert lrs.get(voidedStatementId=target).status_code == 200
    error_of(lrs.get(voidedStatementId=voiding_id), 404)
    listed = [s["id"] for s in lrs.get().get_json()["statements"]]
    assert target not in listed and voiding_id in listed
    # A voiding statement cannot be voided; the object must be a StatementRef.
    error_of(lrs.post(voiding | {"object": {"objectType": "StatementRef", "id": voiding_id}}), 400)
    error_of(lrs.post(voiding | {"object": {"id": "http://example.org/a"}}), 400)
    # Also within one batch.
    first = new_id()
    batch = [
        voiding | {"id": first, "object": {"objectType": "StatementRef", "id": new_id()}},
        voiding | {"object": {"objectType": "StatementRef", "id": first}},
    ]
    before = count_statements()
    error_of(lrs.post(batch), 400)
    assert count_statements() == before


def test_statements_targeting_a_match_are_returned(lrs):
    target = lrs.post(statement(verb={"id": "http://example.org/verbs/unique"})).get_json()[0]
    about = lrs.post(statement(object={"objectType": "StatementRef", "id": target})).get_json()[0]
    found = [
        s["id"] for s in lrs.get(verb="http://example.org/verbs/unique").get_json()["statements"]
    ]
    assert set(found) == {target, about}


def test_cors_preflight_and_headers(client):
    response = client.options(
        "/xapi/statements",
        headers={
            "Origin": "http://player.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,x-experience-api-version,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://player.example"
    assert "X-Experience-API-Version" in response.headers["Access-Control-Allow-Headers"]
    assert "ETag" in response.headers["Access-Control-Expose-Headers"]


def test_alternate_request_syntax(make_lrs):
    lrs = make_lrs(version="1.0.3")
    sid = new_id()
    form = {
        "Authorization": lrs.auth,
        "X-Experience-API-Version": "1.0.3",
        "Content-Type": "application/json",
        "statementId": sid,
        "content": json.dumps(statement()),
    }
    response = lrs.client.post("/xapi/statements?method=PUT", data=form)
    assert response.status_code == 204, response.get_data(as_text=True)
    got = lrs.client.post(
        "/xapi/statements?method=GET",
        data={"Authorization": lrs.auth, "X-Experience-API-Version": "1.0.3", "statementId": sid},
    )
    assert got.get_json()["id"] == sid
    # Extra query parameters are refused; 2.0 does not have the syntax at all.
    error_of(
        lrs.client.post(
            f"/xapi/statements?method=GET&statementId={sid}",
            data={"Authorization": lrs.auth, "X-Experience-API-Version": "1.0.3"},
        ),
        400,
    )
    error_of(
        lrs.client.post(
            "/xapi/statements?method=GET",
            headers={"X-Experience-API-Version": "2.0.0"},
            data={"Authorization": lrs.auth},
        ),
        400,
    )


def test_method_not_allowed_and_unknown_resource(lrs):
    error_of(lrs.delete("statements"), 405)
    error_of(lrs.get("nothing-here"), 404)


def test_voiding_statement_before_its_target(lrs):
    target = new_id()
    voiding = {
        "actor": statement()["actor"],
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": target},
    }
    assert lrs.post(voiding).status_code == 200
    assert lrs.put(statement(), statementId=target).status_code == 204
    error_of(lrs.get(statementId=target), 404)
    assert lrs.get(voidedStatementId=target).status_code == 200
