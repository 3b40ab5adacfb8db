"""Credentials: tenants never see each other, scopes, launch tokens, the CLI."""

from __future__ import annotations

import base64
import json

from app.xapi import services
from tests.xapi.conftest import Lrs, statement


def ids_of(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return [s["id"] for s in response.get_json()["statements"]]


def test_districts_are_isolated(make_lrs, orgs):
    mine = make_lrs()
    theirs = make_lrs(district=orgs.review_district)
    my_id = mine.post(statement()).get_json()[0]
    their_id = theirs.post(statement()).get_json()[0]
    assert ids_of(mine.get()) == [my_id]
    assert ids_of(theirs.get()) == [their_id]
    assert mine.get(statementId=their_id).status_code == 404
    assert ids_of(mine.get(agent=json.dumps(statement()["actor"]))) == [my_id]
    # The same statement id may exist in both tenants without revealing anything.
    assert theirs.put(statement(), statementId=my_id).status_code == 204
    # Documents too.
    params = {
        "activityId": "http://example.org/a",
        "agent": json.dumps({"mbox": "mailto:a@b.org"}),
        "stateId": "s",
    }
    mine.put({"secret": 1}, "activities/state", **params)
    assert theirs.get("activities/state", **params).status_code == 404


def test_school_client_sees_its_school_only(make_lrs, orgs):
    district = make_lrs()
    school = make_lrs(school=orgs.school)
    other_school = make_lrs(school=orgs.other_school)
    school_id = school.post(statement()).get_json()[0]
    other_id = other_school.post(statement()).get_json()[0]
    district_id = district.post(statement()).get_json()[0]
    assert ids_of(school.get()) == [school_id]
    assert ids_of(other_school.get()) == [other_id]
    assert sorted(ids_of(district.get())) == sorted([school_id, other_id, district_id])


def test_scopes(make_lrs):
    writer = make_lrs(scopes=["statements/write"])
    reader = make_lrs(scopes=["all/read"])
    mine_reader = make_lrs(scopes=["statements/write", "statements/read/mine"])
    written = writer.post(statement()).get_json()[0]
    assert writer.get().status_code == 403
    assert reader.post(statement()).status_code == 403
    assert ids_of(reader.get()) == [written]
    own = mine_reader.post(statement()).get_json()[0]
    assert ids_of(mine_reader.get()) == [own]
    params = {
        "activityId": "http://example.org/a",
        "agent": json.dumps({"mbox": "mailto:a@b.org"}),
        "stateId": "s",
    }
    assert writer.put({"a": 1}, "activities/state", **params).status_code == 403
    assert reader.put({"a": 1}, "activities/state", **params).status_code == 403
    assert reader.get("activities/state", **params).status_code == 404


def test_revoked_client(make_lrs, ctx):
    from sqlalchemy import select

    from app.common.events import commit
    from app.extensions import db
    from app.xapi.models import LrsClient

    lrs = make_lrs()
    client = db.session.execute(select(LrsClient)).scalar_one()
    services.revoke_client(client)
    commit()
    assert lrs.get().status_code == 401


def test_launch_token_posts_for_its_student_only(client, make_user, make_lrs, ctx):
    student = make_user("student")
    other = make_user("student")
    token = services.issue_launch_token(student, "http://example.org/activities/tea", ttl=600)
    own_actor = services.actor_for(student)
    assert own_actor["account"]["name"] == student.public_id and "mbox" not in own_actor
    headers = {
        "Authorization": services.launch_auth_header(token),
        "X-Experience-API-Version": "2.0.0",
        "Content-Type": "application/json",
    }
    response = client.post(
        "/xapi/statements", data=json.dumps(statement(actor=own_actor)), headers=headers
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    response = client.post(
        "/xapi/statements",
        data=json.dumps(statement(actor=services.actor_for(other))),
        headers=headers,
    )
    assert response.status_code == 403
    basic = services.launch_auth_header(token)
    response = client.get(
        "/xapi/statements", headers={"Authorization": basic, "X-Experience-API-Version": "2.0.0"}
    )
    assert len(ids_of(response)) == 1
    # A district client sees the statement in the student's district tenant.
    assert len(ids_of(make_lrs().get())) == 1
    # State for its own student only.
    params = {"activityId": "http://example.org/activities/tea", "stateId": "resume"}
    own = client.put(
        "/xapi/activities/state",
        query_string=params | {"agent": json.dumps(own_actor)},
        data="{}",
        headers=headers,
    )
    assert own.status_code == 204
    foreign = client.put(
        "/xapi/activities/state",
        query_string=params | {"agent": json.dumps(services.actor_for(other))},
        data="{}",
        headers=headers,
    )
    assert foreign.status_code == 403


def test_expired_or_forged_launch_token(client, make_user, ctx):
    student = make_user("student")
    token = services.issue_launch_token(student, "http://example.org/a", ttl=-1)
    headers = {
        "Authorization": services.launch_auth_header(token),
        "X-Experience-API-Version": "2.0.0",
    }
    assert client.get("/xapi/statements", headers=headers).status_code == 401
    good = services.issue_launch_token(student, "http://example.org/a", ttl=600)
    forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    headers["Authorization"] = services.launch_auth_header(forged)
    assert client.get("/xapi/statements", headers=headers).status_code == 401


def test_cli_create_client(app, client, orgs):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "xapi",
            "create-client",
            "--name",
            "Analytics",
            "--district",
            "d1",
            "--scopes",
            "statements/write,all/read",
        ]
    )
    assert result.exit_code == 0, result.output
    lines = dict(line.split(": ", 1) for line in result.output.strip().splitlines())
    lrs = Lrs(client, lines["key"], lines["secret"])
    assert lrs.post(statement()).status_code == 200
    assert len(ids_of(lrs.get())) == 1
    listed = runner.invoke(args=["xapi", "list-clients"])
    assert "Analytics" in listed.output and lines["secret"] not in listed.output
    bad = runner.invoke(args=["xapi", "create-client", "--name", "x", "--district", "nope"])
    assert bad.exit_code != 0
    bad = runner.invoke(
        args=["xapi", "create-client", "--name", "x", "--district", "d1", "--scopes", "root"]
    )
    assert bad.exit_code != 0
    assert base64  # (imported for launch headers elsewhere)


def test_api_manages_clients(client, make_user, token_for, orgs):

    admin = make_user("district_admin")
    teacher = make_user("teacher")
    admin_auth, teacher_auth = token_for(admin), token_for(teacher)

    def call(method, path, auth, **kwargs):
        return getattr(client, method)(path, headers=auth, **kwargs)

    body = {"name": "Dashboard", "district_id": orgs.district.id, "scopes": ["all/read"]}
    assert call("post", "/api/v1/xapi/clients", teacher_auth, json=body).status_code == 403
    other = body | {"district_id": orgs.review_district.id}
    assert call("post", "/api/v1/xapi/clients", admin_auth, json=other).status_code == 403
    bad = body | {"scopes": ["root"]}
    assert call("post", "/api/v1/xapi/clients", admin_auth, json=bad).status_code == 422
    created = call("post", "/api/v1/xapi/clients", admin_auth, json=body)
    assert created.status_code == 201, created.get_data(as_text=True)
    data = created.get_json()
    lrs = Lrs(client, data["key"], data["secret"])
    assert lrs.get().status_code == 200
    listed = call("get", "/api/v1/xapi/clients", admin_auth).get_json()
    assert [c["key"] for c in listed] == [data["key"]] and "secret" not in listed[0]
    assert call("delete", f"/api/v1/xapi/clients/{data['id']}", teacher_auth).status_code == 403
    assert call("delete", f"/api/v1/xapi/clients/{data['id']}", admin_auth).status_code == 204
    assert lrs.get().status_code == 401
