"""CASE 1.0 import and export: round trip, update in place, and every rejected input."""

from __future__ import annotations

import copy
import uuid

import pytest
from sqlalchemy import func, select

from app.curriculum.models import Association, Framework, Node
from app.extensions import db

from .conftest import demo_package


def _counts():
    return tuple(
        db.session.execute(select(func.count()).select_from(m)).scalar_one()
        for m in (Framework, Node, Association)
    )


def test_import_then_export_gives_the_same_document(client, make_user, token_for, package):
    admin = make_user("district_admin")
    headers = token_for(admin)
    response = client.post("/api/v1/curriculum/frameworks/import", json=package, headers=headers)
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert report["framework"] == "created"
    assert report["items"] == {"created": len(package["CFItems"]), "updated": 0, "deleted": 0}
    assert report["associations"]["created"] == len(package["CFAssociations"])

    exported = client.get(f"/api/v1/curriculum/frameworks/{report['framework_id']}/case").get_json()
    assert exported == package

    # Re-importing the export is a no-op that keeps every identifier.
    again = client.post(
        "/api/v1/curriculum/frameworks/import", json=exported, headers=headers
    ).get_json()
    assert again["framework"] == "unchanged"
    assert again["framework_id"] == report["framework_id"]
    assert (
        client.get(f"/api/v1/curriculum/frameworks/{report['framework_id']}/case").get_json()
        == package
    )


def test_tree_levels_and_inherited_codes(client, curriculum):
    lesson = curriculum.lesson("pep", "2.1.1")
    assert (lesson.subject, lesson.grade, lesson.edition) == ("math", "g7", "pep")
    volume = curriculum.volume("pep")
    lessons = client.get(f"/api/v1/curriculum/volumes/{volume.id}/lessons").get_json()
    assert [item["code"] for item in lessons[:3]] == ["1.1", "1.2.1", "1.2.2"]
    assert [item["order_in_volume"] for item in lessons] == list(range(1, len(lessons) + 1))
    assert len(lessons) == 28  # the 2024 目录: 小节, and 节 that have none
    tree = client.get(f"/api/v1/curriculum/frameworks/{curriculum.framework_id}").get_json()
    assert tree[0]["node"]["level"] == "subject"
    detail = client.get(f"/api/v1/curriculum/nodes/{lesson.id}").get_json()
    assert [a["node"]["level"] if "node" in a else a["level"] for a in detail["ancestors"]][:3] == [
        "subject",
        "stage",
        "grade",
    ]
    levels = [a["node"]["level"] if "node" in a else a["level"] for a in detail["ancestors"]]
    assert levels[-2:] == ["unit", "section"]  # 第二章 → 2.1 (节) → 2.1.1 (小节)
    assert {kp["title"] for kp in detail["knowledge_points"]} == {"有理数加法法则", "加法运算律"}
    labels = {(a["type"], a["inverse"]) for a in detail["associations"]}
    assert ("precedes", False) in labels and ("precedes", True) in labels


def test_reimport_of_newer_version_updates_in_place(client, make_user, token_for, package):
    headers = token_for(make_user("district_admin"))
    first = client.post(
        "/api/v1/curriculum/frameworks/import", json=package, headers=headers
    ).get_json()
    lesson_item = next(i for i in package["CFItems"] if i.get("humanCodingScheme") == "1.1")
    node_id = db.session.execute(
        select(Node.id).where(Node.identifier == lesson_item["identifier"])
    ).scalar_one()

    newer = copy.deepcopy(package)
    newer["CFDocument"]["lastChangeDateTime"] = "2026-09-30T09:00:00+08:00"
    newer["CFDocument"]["version"] = "2024.2"
    changed = next(i for i in newer["CFItems"] if i["identifier"] == lesson_item["identifier"])
    changed["fullStatement"] = "1.1 正数和负数（修订）"
    # Drop the last item and the associations that mention it.
    dropped = newer["CFItems"].pop()
    before_links = len(newer["CFAssociations"])
    newer["CFAssociations"] = [
        a
        for a in newer["CFAssociations"]
        if dropped["identifier"]
        not in (a["originNodeURI"]["identifier"], a["destinationNodeURI"]["identifier"])
    ]
    added = {**copy.deepcopy(dropped), "identifier": str(uuid.uuid4()), "fullStatement": "新知识点"}
    newer["CFItems"].append(added)

    report = client.post(
        "/api/v1/curriculum/frameworks/import", json=newer, headers=headers
    ).get_json()
    assert report["framework"] == "updated"
    assert report["framework_id"] == first["framework_id"]
    assert report["items"] == {"created": 1, "updated": 1, "deleted": 1}
    assert report["associations"]["deleted"] == before_links - len(newer["CFAssociations"]) > 0
    db.session.expire_all()
    node = db.session.get(Node, node_id)
    assert node.title == "1.1 正数和负数（修订）"
    assert (
        client.get(f"/api/v1/curriculum/frameworks/{first['framework_id']}/case").get_json()
        == newer
    )

    # An older package than the stored one is refused and changes nothing.
    before = _counts()
    stale = client.post("/api/v1/curriculum/frameworks/import", json=package, headers=headers)
    assert stale.status_code == 409
    assert stale.get_json()["error"]["code"] == "case_older"
    assert _counts() == before


def _item(package, code):
    return next(i for i in package["CFItems"] if i.get("humanCodingScheme") == code)


def _assoc(package, kind, origin, destination, identifier=None):
    return {
        "identifier": identifier or str(uuid.uuid4()),
        "associationType": kind,
        "originNodeURI": {"title": "o", "identifier": origin["identifier"], "uri": "urn:x"},
        "destinationNodeURI": {
            "title": "d",
            "identifier": destination["identifier"],
            "uri": "urn:x",
        },
    }


def _cycle_child(p):
    # A unit becomes a child of one of its own lessons.
    p["CFAssociations"].append(_assoc(p, "isChildOf", _item(p, "1"), _item(p, "1.1")))
    return "isChildOf cycle"


def _cycle_precedes(p):
    p["CFAssociations"].append(_assoc(p, "precedes", _item(p, "2.1.1"), _item(p, "1.1")))
    return "precedes cycle"


def _unknown_type(p):
    p["CFAssociations"].append(
        {**_assoc(p, "isChildOf", _item(p, "1.1"), _item(p, "1")), "associationType": "isCousinOf"}
    )
    return "unknown association type 'isCousinOf'"


def _dangling(p):
    missing = {"identifier": str(uuid.uuid4())}
    p["CFAssociations"].append(_assoc(p, "isRelatedTo", _item(p, "1.1"), missing))
    return f"dangling reference to {missing['identifier']}"


def _duplicate(p):
    p["CFItems"].append({**_item(p, "1.1"), "fullStatement": "copy"})
    return "duplicate identifier"


def _wrong_type_statement(p):
    _item(p, "1.1")["fullStatement"] = 42
    return "fullStatement is required and must be a non-empty string"


def _wrong_type_items(p):
    p["CFItems"] = {"not": "a list"}
    return "CFItems must be a list"


def _wrong_type_identifier(p):
    _item(p, "1.1")["identifier"] = "lesson-1"
    return "identifier must be a UUID string"


def _wrong_type_sequence(p):
    p["CFAssociations"][0]["sequenceNumber"] = "first"
    return "must be an integer"


def _missing_document(p):
    del p["CFDocument"]
    return "CFDocument is required"


@pytest.mark.parametrize(
    "breaker",
    [
        _cycle_child,
        _cycle_precedes,
        _unknown_type,
        _dangling,
        _duplicate,
        _wrong_type_statement,
        _wrong_type_items,
        _wrong_type_identifier,
        _wrong_type_sequence,
        _missing_document,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_bad_packages_are_rejected_whole(client, make_user, token_for, package, breaker):
    headers = token_for(make_user("district_admin"))
    expected = breaker(package)
    before = _counts()
    response = client.post("/api/v1/curriculum/frameworks/import", json=package, headers=headers)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "case_rejected"
    assert "nothing was imported" in error["message"]
    messages = " | ".join(m for ms in error["fields"].values() for m in ms)
    assert expected in messages
    assert _counts() == before == (0, 0, 0)


def test_every_problem_is_named(client, make_user, token_for, package):
    headers = token_for(make_user("district_admin"))
    _cycle_child(package)
    _unknown_type(package)
    _dangling(package)
    error = client.post(
        "/api/v1/curriculum/frameworks/import", json=package, headers=headers
    ).get_json()["error"]
    messages = " | ".join(m for ms in error["fields"].values() for m in ms)
    for expected in ("isChildOf cycle", "unknown association type", "dangling reference"):
        assert expected in messages
    assert all(
        key.startswith(("CFAssociations[", "CFItems[", "CFDocument")) for key in error["fields"]
    )


def test_identifiers_of_another_framework_are_duplicates(
    client, make_user, token_for, curriculum, package
):
    headers = token_for(make_user("district_admin"))
    package["CFDocument"]["identifier"] = str(uuid.uuid4())
    response = client.post("/api/v1/curriculum/frameworks/import", json=package, headers=headers)
    assert response.status_code == 422
    assert "belongs to another framework" in str(response.get_json()["error"]["fields"])


def test_not_json_and_permissions(client, make_user, token_for, package):
    from flask import g

    def post(headers=None, **kwargs):
        g.pop("_login_user", None)  # the test's app context outlives each request
        return client.post("/api/v1/curriculum/frameworks/import", headers=headers or {}, **kwargs)

    teacher = token_for(make_user("teacher"))
    admin = token_for(make_user("district_admin"))
    assert post(json=package).status_code == 401
    assert post(teacher, json=package).status_code == 403
    response = post({**admin, "Content-Type": "application/json"}, data="{not json")
    assert response.status_code == 400
    assert post(admin, json=[1, 2]).status_code == 422
    assert _counts() == (0, 0, 0)


def test_build_a_framework_node_by_node(client, make_user, token_for):
    headers = token_for(make_user("district_admin"))
    framework = client.post(
        "/api/v1/curriculum/frameworks",
        json={"title": "自建 数学", "subject": "math"},
        headers=headers,
    ).get_json()
    fid = framework["id"]

    def add(level, title, parent=None, code=None):
        body = {"level": level, "title": title, "parent_id": parent}
        if code:
            body["code"] = code
        response = client.post(
            f"/api/v1/curriculum/frameworks/{fid}/nodes", json=body, headers=headers
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    subject = add("subject", "数学", code="math")
    edition = add("edition", "人教版", subject["id"], "pep")
    volume = add("volume", "上册", edition["id"])
    unit = add("unit", "第一章", volume["id"])
    first = add("lesson", "第一课", unit["id"])
    second = add("lesson", "第二课", unit["id"])
    assert (second["edition"], second["subject"], second["order_in_volume"]) == ("pep", "math", 2)
    ok = client.post(
        "/api/v1/curriculum/associations",
        headers=headers,
        json={"origin_id": first["id"], "destination_id": second["id"], "type": "precedes"},
    )
    assert ok.status_code == 201
    cycle = client.post(
        "/api/v1/curriculum/associations",
        headers=headers,
        json={"origin_id": second["id"], "destination_id": first["id"], "type": "precedes"},
    )
    assert cycle.status_code == 422
    unknown = client.post(
        "/api/v1/curriculum/associations",
        headers=headers,
        json={"origin_id": second["id"], "destination_id": first["id"], "type": "likes"},
    )
    assert unknown.status_code == 422
    # What was built exports to a package that imports cleanly elsewhere (same identifiers).
    exported = client.get(f"/api/v1/curriculum/frameworks/{fid}/case").get_json()
    assert len(exported["CFItems"]) == 6 and len(exported["CFAssociations"]) == 7
    client.delete(f"/api/v1/curriculum/frameworks/{fid}", headers=headers)
    again = client.post("/api/v1/curriculum/frameworks/import", json=exported, headers=headers)
    assert again.status_code == 200, again.get_json()
    assert (
        client.get(
            f"/api/v1/curriculum/frameworks/{again.get_json()['framework_id']}/case"
        ).get_json()
        == exported
    )


def test_cli_import_and_export(app, ctx, orgs, tmp_path):
    import json

    path = tmp_path / "p.json"
    path.write_text(json.dumps(demo_package(), ensure_ascii=False), encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["curriculum", "import", str(path), "--district", "d1"])
    assert result.exit_code == 0, result.output
    framework_id = json.loads(result.output)["framework_id"]
    out = tmp_path / "out.json"
    result = runner.invoke(args=["curriculum", "export", str(framework_id), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8")) == demo_package()
    bad = demo_package()
    bad["CFAssociations"][0]["associationType"] = "nope"
    path.write_text(json.dumps(bad), encoding="utf-8")
    db.session.rollback()
    result = runner.invoke(args=["curriculum", "import", str(path)])
    assert result.exit_code == 1
    assert "unknown association type" in result.output
