"""State, Activity Profile and Agent Profile: ETags, preconditions, JSON merge."""

from __future__ import annotations

import json

from tests.xapi.conftest import new_id

AGENT = json.dumps({"mbox": "mailto:xiaoming@example.org"})
ACTIVITY = "http://example.org/activities/tea"


def state(**extra):
    return {"activityId": ACTIVITY, "agent": AGENT, "stateId": "bookmark", **extra}


def test_state_put_get_list_delete(lrs):
    assert lrs.put({"page": 3}, "activities/state", **state()).status_code == 204
    got = lrs.get("activities/state", **state())
    assert got.status_code == 200 and got.get_json() == {"page": 3}
    assert got.headers["ETag"].startswith('"') and got.headers["Last-Modified"]
    assert lrs.get("activities/state", activityId=ACTIVITY, agent=AGENT).get_json() == ["bookmark"]
    assert lrs.delete("activities/state", **state()).status_code == 204
    assert lrs.get("activities/state", **state()).status_code == 404
    assert lrs.get("activities/state", activityId=ACTIVITY, agent=AGENT).get_json() == []


def test_state_registration_scopes_documents(lrs):
    registration = new_id()
    lrs.put({"a": 1}, "activities/state", **state(registration=registration))
    assert lrs.get("activities/state", **state()).status_code == 404
    assert lrs.get("activities/state", **state(registration=registration)).get_json() == {"a": 1}


def test_post_merges_json_objects(lrs):
    lrs.post({"a": 1, "b": 2}, "activities/state", **state())
    assert lrs.post({"b": 3, "c": 4}, "activities/state", **state()).status_code == 204
    assert lrs.get("activities/state", **state()).get_json() == {"a": 1, "b": 3, "c": 4}
    # Not a JSON object -> 400, stored document unchanged.
    assert lrs.post("[1,2]", "activities/state", **state()).status_code == 400
    assert (
        lrs.post("plain", "activities/state", content_type="text/plain", **state()).status_code
        == 400
    )
    assert lrs.get("activities/state", **state()).get_json() == {"a": 1, "b": 3, "c": 4}


def test_binary_documents_round_trip(lrs):
    params = {"activityId": ACTIVITY, "profileId": "poster"}
    response = lrs.put(
        b"\x89PNG\x00\x01",
        "activities/profile",
        content_type="image/png",
        headers={"If-None-Match": "*"},
        **params,
    )
    assert response.status_code == 204
    got = lrs.get("activities/profile", **params)
    assert got.data == b"\x89PNG\x00\x01" and got.headers["Content-Type"] == "image/png"


def test_concurrency_with_etags(lrs):
    params = {"agent": AGENT, "profileId": "settings"}
    assert (
        lrs.put({"v": 1}, "agents/profile", headers={"If-None-Match": "*"}, **params).status_code
        == 204
    )
    etag = lrs.get("agents/profile", **params).headers["ETag"]
    # PUT without a precondition on an existing document: 409, unchanged.
    assert lrs.put({"v": 2}, "agents/profile", **params).status_code == 409
    # Wrong ETag: 412, unchanged.
    assert (
        lrs.put({"v": 2}, "agents/profile", headers={"If-Match": '"nope"'}, **params).status_code
        == 412
    )
    assert (
        lrs.put({"v": 2}, "agents/profile", headers={"If-None-Match": "*"}, **params).status_code
        == 412
    )
    assert (
        lrs.post({"w": 1}, "agents/profile", headers={"If-Match": '"nope"'}, **params).status_code
        == 412
    )
    assert lrs.delete("agents/profile", headers={"If-Match": '"nope"'}, **params).status_code == 412
    assert lrs.get("agents/profile", **params).get_json() == {"v": 1}
    # Right ETag: accepted.
    assert (
        lrs.put({"v": 2}, "agents/profile", headers={"If-Match": etag}, **params).status_code == 204
    )
    assert lrs.get("agents/profile", **params).get_json() == {"v": 2}
    assert (
        lrs.delete(
            "agents/profile",
            headers={"If-Match": lrs.get("agents/profile", **params).headers["ETag"]},
            **params,
        ).status_code
        == 204
    )


def test_1_0_3_profile_put_needs_precondition(make_lrs):
    lrs = make_lrs(version="1.0.3")
    params = {"activityId": ACTIVITY, "profileId": "p"}
    assert lrs.put({"x": 1}, "activities/profile", **params).status_code == 400
    assert (
        lrs.put(
            {"x": 1}, "activities/profile", headers={"If-None-Match": "*"}, **params
        ).status_code
        == 204
    )


def test_document_parameter_errors(lrs):
    assert lrs.get("activities/state", agent=AGENT).status_code == 400  # no activityId
    assert lrs.get("activities/state", activityId=ACTIVITY).status_code == 400  # no agent
    assert lrs.get("activities/state", **state(agent="{bad")).status_code == 400
    assert lrs.get("activities/state", **state(registration="x")).status_code == 400
    assert lrs.get("activities/state", **state(colour="red")).status_code == 400
    assert (
        lrs.put({"a": 1}, "activities/state", activityId=ACTIVITY, agent=AGENT).status_code == 400
    )
    assert lrs.delete("activities/profile", activityId=ACTIVITY).status_code == 400


def test_activities_and_agents_resources(lrs):
    from tests.xapi.conftest import statement

    lrs.post(
        [
            statement(object={"id": ACTIVITY, "definition": {"name": {"en-US": "tea"}}}),
            statement(object={"id": ACTIVITY, "definition": {"name": {"zh-CN": "茶艺"}}}),
        ]
    )
    activity = lrs.get("activities", activityId=ACTIVITY).get_json()
    assert activity["definition"]["name"] == {"en-US": "tea", "zh-CN": "茶艺"}
    unknown = lrs.get("activities", activityId="http://example.org/never").get_json()
    assert unknown == {"objectType": "Activity", "id": "http://example.org/never"}
    person = lrs.get(
        "agents", agent=json.dumps({"name": "小明", "mbox": "mailto:x@example.org"})
    ).get_json()
    assert person == {"objectType": "Person", "name": ["小明"], "mbox": ["mailto:x@example.org"]}
    assert lrs.get("agents").status_code == 400
