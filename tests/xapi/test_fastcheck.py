"""The fast acceptance check (app/xapi/fastcheck.py) never accepts what the marshmallow
schema refuses: it is compared with the schema on the valid statements below and on
random mutations of them (a value replaced by another, a property removed or added), in
both xAPI versions."""

from __future__ import annotations

import copy
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.xapi import fastcheck, schemas

AGENT = {"objectType": "Agent", "name": "A", "mbox": "mailto:a@example.org"}
ACCOUNT_AGENT = {"account": {"homePage": "http://example.org", "name": "u1"}}
GROUP = {
    "objectType": "Group",
    "name": "G",
    "member": [{"mbox_sha1sum": "a" * 40}, {"openid": "http://openid.example.org/x"}],
}
ACTIVITY = {
    "objectType": "Activity",
    "id": "http://example.org/a/1",
    "definition": {
        "name": {"en-US": "One", "zh-CN": "一"},
        "description": {"en": "d"},
        "type": "http://adlnet.gov/expapi/activities/media",
        "moreInfo": "http://example.org/more",
        "extensions": {"http://example.org/ext": {"any": [1, "x", None]}},
    },
}
VALID = [
    {
        "id": "6f1c6f1c-0000-4000-8000-000000000000",
        "actor": AGENT,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced", "display": {"en-US": "x"}},
        "object": ACTIVITY,
        "result": {
            "score": {"scaled": -0.5, "raw": 1, "min": 0, "max": 10.5},
            "success": False,
            "completion": True,
            "response": "r",
            "duration": "PT1H2M3.5S",
            "extensions": {"http://example.org/r": 2},
        },
        "context": {
            "registration": "6F1C6F1C-0000-4000-8000-00000000000A",
            "instructor": ACCOUNT_AGENT,
            "team": {"objectType": "Group", "mbox": "mailto:team@example.org"},
            "contextActivities": {
                "parent": {"id": "http://example.org/p"},
                "grouping": [{"id": "http://example.org/g", "objectType": "Activity"}],
                "category": [],
                "other": [ACTIVITY],
            },
            "revision": "r1",
            "platform": "p",
            "language": "zh-Hans-CN",
            "statement": {
                "objectType": "StatementRef",
                "id": "6f1c6f1c-0000-4000-8000-00000000000b",
            },
            "extensions": {"http://example.org/c": "v"},
        },
        "timestamp": "2024-05-01T08:30:00.123+08:00",
        "stored": "2024-05-01T08:30:00Z",
        "authority": {"objectType": "Agent", "openid": "http://example.org/auth"},
        "version": "1.0.3",
    },
    {
        "actor": GROUP,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": "6f1c6f1c-0000-4000-8000-00000000000c"},
        "context": {"instructor": GROUP, "language": "en"},
    },
    {
        "actor": ACCOUNT_AGENT,
        "verb": {"id": "http://example.org/v"},
        "object": AGENT,
        "result": {"duration": "P2W", "score": {"raw": -3}},
        "timestamp": "2024-05-01T08:30:00",  # no offset: 1.0.3 only
    },
    {
        "actor": {"objectType": "Group", "account": {"homePage": "http://x.org", "name": "g"}},
        "verb": {"id": "urn:x:verb"},
        "object": {"objectType": "Group", "member": [AGENT], "name": "n"},
    },
]

# The shapes left to the schema (it accepts them; the fast check does not decide).
LEFT_TO_SCHEMA = [
    {"attachments": []},
    {
        "object": {
            "objectType": "SubStatement",
            "actor": AGENT,
            "verb": {"id": "urn:v"},
            "object": ACTIVITY,
        }
    },
    {"object": {"id": "urn:a", "definition": {"interactionType": "true-false"}}},
    {"context": {"contextAgents": [{"objectType": "contextAgent", "agent": AGENT}]}},
    {"authority": {"objectType": "Group", "member": [AGENT, ACCOUNT_AGENT]}},
]

VERSIONS = ("2.0.0", "1.0.3")


def schema_accepts(statement, version) -> bool:
    """validate_statement with the fast check switched off (marshmallow alone)."""
    with mock.patch.object(fastcheck, "valid", return_value=False):
        try:
            schemas.validate_statement(copy.deepcopy(statement), version, json_checked=True)
        except schemas.ValidationError:
            return False
    return True


@pytest.mark.parametrize("index", range(len(VALID)))
def test_valid_statements_take_the_fast_path(index):
    statement = VALID[index]
    for version in VERSIONS:
        expected = schema_accepts(statement, version)
        assert fastcheck.valid(statement, version) is expected
    # Every one of them is valid in 1.0.3 (no offset is only valid there).
    assert fastcheck.valid(statement, "1.0.3")


@pytest.mark.parametrize("change", LEFT_TO_SCHEMA)
def test_rare_shapes_are_left_to_the_schema(change):
    statement = {**VALID[3], **change}
    assert schema_accepts(statement, "2.0.0")
    assert not fastcheck.valid(statement, "2.0.0")


def test_rejections_keep_the_schemas_messages():
    statement = {**VALID[3], "result": {"score": {"scaled": 2}}}
    with pytest.raises(schemas.ValidationError) as info:
        schemas.validate_statement(statement, "2.0.0")
    assert info.value.messages == {"result": {"score": {"scaled": ["must be between -1 and 1."]}}}


NAMES = sorted(
    {
        "objectType", "id", "name", "mbox", "mbox_sha1sum", "openid", "account", "homePage",
        "member", "display", "definition", "description", "type", "moreInfo", "extensions",
        "interactionType", "score", "scaled", "raw", "min", "max", "success", "completion",
        "response", "duration", "registration", "instructor", "team", "contextActivities",
        "parent", "grouping", "category", "other", "revision", "platform", "language",
        "statement", "contextAgents", "timestamp", "stored", "authority", "version", "actor",
        "verb", "object", "result", "context", "attachments", "foo",
    }
)  # fmt: skip
SCALARS = [
    None, True, False, 0, 1, -1, 2, -2, 0.5, 1.5, -0.5, 10**20, "", "x", "en", "en-US",
    "zh-Hans-CN", "not a tag!", "http://example.org/x", "urn:x", "no iri", "http://a b",
    "mailto:a@b.org", "mailto:a@b.org\n", "mailto:a", "a" * 40, "A" * 40, "g" * 40,
    "6f1c6f1c-0000-4000-8000-000000000000", "6F1C6F1C-0000-4000-8000-000000000000",
    "6f1c6f1c-0000-4000-8000-00000000000", "P1D", "PT1H", "P1W", "P", "PT", "1D",
    "2024-01-01T00:00:00Z", "2024-01-01T00:00:00", "2024-01-01T00:00:00-00:00",
    "2024-02-30T00:00:00Z", "0001-01-01T00:00:00+00:01", "Agent", "Group", "Activity",
    "StatementRef", "SubStatement", "contextAgent", "1.0", "1.0.3", "2.0.0", "3.0",
    "http://adlnet.gov/expapi/verbs/voided", "true-false",
]  # fmt: skip
values = st.recursive(
    st.sampled_from(SCALARS),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(NAMES + SCALARS[14:20]), children, max_size=3),
    ),
    max_leaves=6,
) | st.sampled_from([AGENT, ACCOUNT_AGENT, GROUP, ACTIVITY, {"en-US": "x"}, [ACTIVITY], {}])


def _containers(value, path=()):
    yield path, value
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        if isinstance(item, dict | list):
            yield from _containers(item, (*path, key))


@st.composite
def mutated(draw):
    statement = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        containers = list(_containers(statement))
        path, holder = draw(st.sampled_from(containers))
        keys = list(holder.keys()) if isinstance(holder, dict) else list(range(len(holder)))
        operation = draw(st.sampled_from(["replace", "delete", "add"]))
        if operation == "add" and isinstance(holder, dict):
            holder[draw(st.sampled_from(NAMES))] = copy.deepcopy(draw(values))
        elif operation == "add":
            holder.append(copy.deepcopy(draw(values)))
        elif keys and operation == "delete":
            del holder[draw(st.sampled_from(keys))]
        elif keys:
            holder[draw(st.sampled_from(keys))] = copy.deepcopy(draw(values))
    return statement


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(statement=mutated(), version=st.sampled_from(VERSIONS))
def test_fast_check_never_accepts_what_the_schema_refuses(statement, version):
    if fastcheck.valid(statement, version):
        assert schema_accepts(statement, version), statement


def _positions(value, path=()):
    """Every (path) of a property or array item inside ``value``."""
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        yield (*path, key)
        yield from _positions(item, (*path, key))


def _replaced(statement, path, new):
    out = copy.deepcopy(statement)
    holder = out
    for key in path[:-1]:
        holder = holder[key]
    if new is _DELETE:
        del holder[path[-1]]
    else:
        holder[path[-1]] = copy.deepcopy(new)
    return out


_DELETE = object()


@pytest.mark.parametrize("index", range(len(VALID)))
def test_every_single_replacement_is_judged_like_the_schema(index):
    """Each property and item of a valid statement replaced by each value of the pool
    (null, wrong types, near-miss IRIs, UUIDs, tags, timestamps...), or removed; and an
    unknown property added to each object: the fast check accepts only what the schema
    accepts, and refuses every null (outside extension values) and every unknown
    property."""
    statement = VALID[index]
    fast_accepted = 0
    for path in _positions(statement):
        for new in [*SCALARS, _DELETE, {}, [], {"en-US": "x"}, AGENT, GROUP, ACTIVITY]:
            changed = _replaced(statement, path, new)
            for version in VERSIONS:
                if fastcheck.valid(changed, version):
                    fast_accepted += 1
                    assert new is not None or "extensions" in path  # any JSON there
                    assert schema_accepts(changed, version), (path, new, version)
    for path, holder in _containers(statement):
        inside_extension_value = "extensions" in path and path[-1] != "extensions"
        if isinstance(holder, dict) and not inside_extension_value:
            assert not fastcheck.valid(_replaced(statement, (*path, "foo"), 1), "1.0.3"), path
    assert fast_accepted > 50  # the sweep does exercise the fast path
