"""Every rejected statement gets 400 and names the property and the reason."""

from __future__ import annotations

import pytest

from app.xapi import schemas
from tests.xapi.conftest import statement

ACTIVITY = {"id": "http://example.org/a"}

BAD = [
    ("no actor", {"actor": None}, "actor"),
    ("two IFIs", {"actor": {"mbox": "mailto:a@b.org", "openid": "http://id.example/a"}}, "actor"),
    ("mbox without mailto", {"actor": {"mbox": "a@b.org"}}, "actor.mbox"),
    ("bad sha1", {"actor": {"mbox_sha1sum": "xyz"}}, "actor.mbox_sha1sum"),
    ("account without homePage", {"actor": {"account": {"name": "x"}}}, "actor.account.homePage"),
    ("anonymous group without members", {"actor": {"objectType": "Group"}}, "actor.member"),
    (
        "group of groups",
        {
            "actor": {
                "objectType": "Group",
                "member": [{"objectType": "Group", "member": [{"mbox": "mailto:a@b.org"}]}],
            }
        },
        "actor.member",
    ),
    ("verb not IRI", {"verb": {"id": "completed"}}, "verb.id"),
    (
        "bad language tag",
        {"verb": {"id": "http://v.example/x", "display": {"english!": "x"}}},
        "verb.display",
    ),
    (
        "display value not string",
        {"verb": {"id": "http://v.example/x", "display": {"en": 1}}},
        "verb.display",
    ),
    ("unknown property", {"colour": "red"}, "colour"),
    ("wrong case property", {"Actor": {"mbox": "mailto:a@b.org"}}, "Actor"),
    ("bad id", {"id": "1234"}, "id"),
    ("statement objectType", {"objectType": "Statement"}, "objectType"),
    ("scaled above 1", {"result": {"score": {"scaled": 1.5}}}, "result.score.scaled"),
    ("raw below min", {"result": {"score": {"raw": 1, "min": 2, "max": 5}}}, "result.score.raw"),
    ("max below min", {"result": {"score": {"min": 5, "max": 2}}}, "result.score.max"),
    ("success as string", {"result": {"success": "true"}}, "result.success"),
    ("bad duration", {"result": {"duration": "1 hour"}}, "result.duration"),
    ("weeks mixed with days", {"result": {"duration": "P1W2D"}}, "result.duration"),
    ("bad timestamp", {"timestamp": "01/02/2024"}, "timestamp"),
    ("-00:00 offset", {"timestamp": "2024-05-01T08:00:00-00:00"}, "timestamp"),
    ("registration not uuid", {"context": {"registration": "abc"}}, "context.registration"),
    (
        "platform with agent object",
        {"object": {"objectType": "Agent", "mbox": "mailto:c@d.org"}, "context": {"platform": "x"}},
        "context.platform",
    ),
    (
        "context statement not a ref",
        {
            "context": {
                "statement": {
                    "objectType": "Activity",
                    "id": "6f1c6f1c-0000-4000-8000-000000000000",
                }
            }
        },
        "context.statement.objectType",
    ),
    ("extension key not IRI", {"context": {"extensions": {"lesson": 1}}}, "context.extensions"),
    (
        "interaction component outside its type",
        {
            "object": {
                "id": "http://example.org/q",
                "definition": {"interactionType": "true-false", "choices": [{"id": "a"}]},
            }
        },
        "object.definition",
    ),
    (
        "unknown interaction type",
        {"object": {"id": "http://example.org/q", "definition": {"interactionType": "essay"}}},
        "object.definition.interactionType",
    ),
    (
        "nested substatement",
        {
            "object": {
                "objectType": "SubStatement",
                "actor": {"mbox": "mailto:a@b.org"},
                "verb": {"id": "http://v.example/x"},
                "object": {"objectType": "SubStatement"},
            }
        },
        "object.object.objectType",
    ),
    (
        "substatement with id",
        {
            "object": {
                "objectType": "SubStatement",
                "id": "6f1c6f1c-0000-4000-8000-000000000000",
                "actor": {"mbox": "mailto:a@b.org"},
                "verb": {"id": "http://v.example/x"},
                "object": ACTIVITY,
            }
        },
        "object",
    ),
    (
        "attachment without sha2",
        {
            "attachments": [
                {
                    "usageType": "http://u.example/x",
                    "display": {"en": "x"},
                    "contentType": "text/plain",
                    "length": 1,
                    "fileUrl": "http://f.example/x",
                }
            ]
        },
        "attachments",
    ),
    (
        "authority group with IFI",
        {
            "authority": {
                "objectType": "Group",
                "mbox": "mailto:g@x.org",
                "member": [{"mbox": "mailto:a@b.org"}, {"mbox": "mailto:c@b.org"}],
            }
        },
        "authority",
    ),
    ("bad version", {"version": "1.1.0"}, "version"),
]


@pytest.mark.parametrize("name,change,where", BAD, ids=[b[0] for b in BAD])
def test_schema_rejects(name, change, where):
    data = statement(**change)
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(schemas.ValidationError) as info:
        schemas.validate_statement(data)
    flat = schemas.flatten_errors(info.value.messages, "statement")
    assert any(
        key.startswith(f"statement.{where}") or key == f"statement.{where}" for key in flat
    ), flat


def test_version_differences():
    with_context_agents = statement(
        context={
            "contextAgents": [{"objectType": "contextAgent", "agent": {"mbox": "mailto:t@x.org"}}]
        }
    )
    schemas.validate_statement(with_context_agents, "2.0.0")
    with pytest.raises(schemas.ValidationError):
        schemas.validate_statement(with_context_agents, "1.0.3")
    no_offset = statement(timestamp="2024-05-01T08:00:00")
    schemas.validate_statement(no_offset, "1.0.3")
    with pytest.raises(schemas.ValidationError):
        schemas.validate_statement(no_offset, "2.0.0")


def test_valid_rich_statement():
    schemas.validate_statement(
        statement(
            id="6F1C6F1C-0000-4000-8000-000000000000",
            result={
                "score": {"scaled": -0.5, "raw": 1, "min": 0, "max": 10},
                "success": False,
                "completion": True,
                "duration": "PT1H2M3.25S",
                "response": "a[,]b",
                "extensions": {"http://e.example/x": {"any": [1, None]}},
            },
            context={
                "registration": "6f1c6f1c-0000-4000-8000-000000000001",
                "language": "zh-Hans-CN",
                "instructor": {"account": {"homePage": "http://lms.example", "name": "t1"}},
                "contextActivities": {"parent": [ACTIVITY], "category": ACTIVITY},
            },
            timestamp="2024-05-01T08:00:00.123+08:00",
        ),
        "2.0.0",
    )


def test_http_rejection_names_property(lrs):
    response = lrs.post(statement(result={"score": {"scaled": 7}}))
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert "result.score.scaled" in error["message"] and "between -1 and 1" in error["message"]
    assert "statement.result.score.scaled" in error["fields"]
