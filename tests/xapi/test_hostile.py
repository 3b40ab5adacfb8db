"""Hostile input: whatever a client sends, the LRS answers 4xx (never 5xx), and what it
accepted can always be read back as standard JSON.

The named cases are the ones an independent sweep found reaching a 500 (issue 10 item 6);
the Hypothesis properties put random JSON into every statement field, into documents and
into the agent parameter, so the next such hole is found by the suite.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.xapi.services.query import STATEMENT_QUERY_PARAMS
from tests.xapi.conftest import new_id, statement

# --- the cases the sweep found ------------------------------------------------------------


def strict_json(response):
    """The body parsed as RFC 8259 JSON (no NaN/Infinity, no lone surrogates)."""

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    text = response.get_data().decode("utf-8")  # lone surrogates cannot be UTF-8
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-00:01",
        "9999-12-31T23:59:59.999-23:59",
    ],
)
def test_timestamp_whose_offset_leaves_the_date_range_is_400(lrs, timestamp):
    response = lrs.post(statement(timestamp=timestamp))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "timestamp" in response.get_json()["error"]["message"]


def test_since_whose_offset_leaves_the_date_range_is_400(lrs):
    response = lrs.get(since="0001-01-01T00:00:00+00:01")
    assert response.status_code == 400
    assert "since" in response.get_json()["error"]["fields"]


def test_deeply_nested_json_is_400_with_a_depth_limit(app, lrs):
    deep = "[" * 100_000 + "]" * 100_000
    response = lrs.post(deep)
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {"body": ["too deep"]}
    # Just past the configured limit inside a legal place (an extension value): refused.
    limit = app.config["XAPI_MAX_JSON_DEPTH"]
    value = 1
    for _ in range(limit):
        value = [value]
    body = statement(result={"extensions": {"http://example.org/x": value}})
    response = lrs.post(body)
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {"body": ["too deep"]}
    # A reasonable nesting is fine.
    value = 1
    for _ in range(10):
        value = [value]
    assert (
        lrs.post(statement(result={"extensions": {"http://example.org/x": value}})).status_code
        == 200
    )


def test_deeply_nested_agent_parameter_is_400(lrs):
    response = lrs.get(agent="[" * 50_000 + "]" * 50_000)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "raw",
    [
        '"\\ud800"',  # lone high surrogate
        '"a\\udfffb"',  # lone low surrogate
        '"\\udc00\\ud800"',  # a pair in the wrong order
    ],
)
def test_lone_surrogates_are_refused_and_every_page_still_reads(lrs, raw):
    sid = new_id()
    good = lrs.post(statement(id=new_id()))
    assert good.status_code == 200
    body = json.dumps(statement(id=sid), ensure_ascii=False).replace('"小明"', raw)
    assert raw in body
    response = lrs.post(body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["fields"] == {"body": ["lone surrogate"]}
    page = lrs.get()
    assert page.status_code == 200
    assert sid not in {s["id"] for s in strict_json(page)["statements"]}
    # The key of an object is checked as well as its values.
    body = json.dumps(statement(result={"extensions": {"http://example.org/x": {"k": 1}}}))
    response = lrs.post(body.replace('"k"', raw))
    assert response.status_code == 400


def test_a_proper_surrogate_pair_is_accepted(lrs):
    sid = new_id()
    body = json.dumps(statement(id=sid), ensure_ascii=False).replace(
        '"小明"', '"\\ud83d\\ude00 小明"'
    )
    assert lrs.post(body).status_code == 200
    assert strict_json(lrs.get(statementId=sid))["actor"]["name"] == "\U0001f600 小明"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
@pytest.mark.parametrize(
    "extra",
    [
        {"result": {"score": {"raw": "HERE"}}},
        {"result": {"extensions": {"http://example.org/x": ["HERE"]}}},
        {"context": {"extensions": {"http://example.org/x": {"a": "HERE"}}}},
        {
            "object": {
                "id": "http://example.org/a",
                "definition": {"extensions": {"http://e.org/y": "HERE"}},
            }
        },
    ],
)
def test_nan_and_infinity_in_statements_are_400(lrs, constant, extra):
    body = json.dumps(statement(**extra)).replace('"HERE"', constant)
    response = lrs.post(body)
    assert response.status_code == 400, response.get_data(as_text=True)
    page = lrs.get()
    assert page.status_code == 200 and strict_json(page)["statements"] == []


DOCUMENTS = [
    ("activities/state", {"stateId": "s"}),
    ("activities/profile", {"profileId": "p"}),
    ("agents/profile", {"profileId": "p"}),
]


def _scope(path: str) -> dict:
    agent = json.dumps({"mbox": "mailto:xiaoming@example.org"})
    if path == "activities/state":
        return {"activityId": "http://example.org/a", "agent": agent}
    if path == "activities/profile":
        return {"activityId": "http://example.org/a"}
    return {"agent": agent}


@pytest.mark.parametrize(("path", "ident"), DOCUMENTS)
@pytest.mark.parametrize(
    "body",
    ['{"a": NaN}', '{"a": Infinity}', '{"a": [-Infinity]}', '{"a": 1e400}', '{"\\ud800": 1}'],
)
def test_non_standard_json_documents_are_400(lrs, path, ident, body):
    query = {**_scope(path), **ident}
    precondition = {"If-None-Match": "*"}
    for method in (lrs.post, lrs.put):
        response = method(body, path=path, headers=precondition, **query)
        assert response.status_code == 400, (method, response.get_data(as_text=True))
    assert lrs.get(path, **query).status_code == 404
    # Merging into an existing document: still refused, and the stored one is unchanged.
    assert lrs.post('{"b": 2}', path=path, **query).status_code == 204
    assert lrs.post(body, path=path, **query).status_code == 400
    stored = lrs.get(path, **query)
    assert stored.status_code == 200 and strict_json(stored) == {"b": 2}


def test_a_list_where_an_object_is_expected_is_4xx(lrs):
    for body in ([[]], [[statement()]], [1, 2], ["x"], [None], "null", "1", '"s"', "true"):
        data = body if isinstance(body, str) else json.dumps(body)
        response = lrs.post(data)
        assert 400 <= response.status_code < 500, (body, response.status_code)


@pytest.mark.parametrize("value", [5, -1, 1.5, True, "abc", {"sha2": "x"}, [1, "x", None]])
def test_attachments_of_any_json_type_are_400_not_500(lrs, value):
    # Found by the property below on one random draw: a non-empty number reached the
    # attachments' sha2 letter-case pass before validation and raised TypeError (a 500).
    for body in (statement(attachments=value), [statement(attachments=value)]):
        response = lrs.post(body)
        assert response.status_code == 400, (value, response.status_code)
        assert response.get_json()["error"]["message"]
    response = lrs.put(statement(attachments=value), statementId=new_id())
    assert response.status_code == 400


# --- properties ---------------------------------------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)
    | st.sampled_from(
        ["mailto:a@b.org", "http://example.org/x", "2024-05-01T08:00:00Z", new_id(), "PT1S", "en"]
    )
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)

# Every property of a statement, at every level a client can reach.
FIELD_PATHS = [
    ("id",),
    ("actor",),
    ("actor", "objectType"),
    ("actor", "name"),
    ("actor", "mbox"),
    ("actor", "mbox_sha1sum"),
    ("actor", "openid"),
    ("actor", "account"),
    ("actor", "account", "homePage"),
    ("actor", "account", "name"),
    ("actor", "member"),
    ("verb",),
    ("verb", "id"),
    ("verb", "display"),
    ("object",),
    ("object", "objectType"),
    ("object", "id"),
    ("object", "definition"),
    ("object", "definition", "name"),
    ("object", "definition", "description"),
    ("object", "definition", "type"),
    ("object", "definition", "moreInfo"),
    ("object", "definition", "interactionType"),
    ("object", "definition", "correctResponsesPattern"),
    ("object", "definition", "choices"),
    ("object", "definition", "extensions"),
    ("result",),
    ("result", "score"),
    ("result", "score", "scaled"),
    ("result", "score", "raw"),
    ("result", "score", "min"),
    ("result", "score", "max"),
    ("result", "success"),
    ("result", "completion"),
    ("result", "response"),
    ("result", "duration"),
    ("result", "extensions"),
    ("context",),
    ("context", "registration"),
    ("context", "instructor"),
    ("context", "team"),
    ("context", "contextActivities"),
    ("context", "contextActivities", "parent"),
    ("context", "contextActivities", "grouping"),
    ("context", "contextAgents"),
    ("context", "contextGroups"),
    ("context", "revision"),
    ("context", "platform"),
    ("context", "language"),
    ("context", "statement"),
    ("context", "extensions"),
    ("timestamp",),
    ("stored",),
    ("authority",),
    ("version",),
    ("attachments",),
]

SUBSTATEMENT = {
    "objectType": "SubStatement",
    "actor": {"mbox": "mailto:a@b.org"},
    "verb": {"id": "http://example.org/v"},
    "object": {"id": "http://example.org/o"},
}

PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _set(data: dict, path: tuple, value):
    holder = data
    for key in path[:-1]:
        if not isinstance(holder.get(key), dict):
            holder[key] = {}
        holder = holder[key]
    holder[path[-1]] = value


def _check_accepted_reads_back(lrs, response, sid):
    """Anything accepted can be served again as standard JSON, alone and in a page."""
    assert response.status_code in (200, 204), response.status_code
    single = lrs.get(statementId=sid)
    if single.status_code == 404:  # accepted as a voiding statement, or voided
        single = lrs.get(voidedStatementId=sid)
    assert single.status_code in (200, 404), single.get_data(as_text=True)
    if single.status_code == 200:
        strict_json(single)
    page = lrs.get()
    assert page.status_code == 200
    strict_json(page)


@PROPERTY_SETTINGS
@given(
    path=st.sampled_from(FIELD_PATHS),
    value=json_values,
    substatement=st.booleans(),
    version=st.sampled_from(["2.0.0", "1.0.3"]),
)
def test_random_json_in_any_statement_field_is_never_5xx(lrs, path, value, substatement, version):
    lrs.version = version
    sid = new_id()
    data = statement(id=sid)
    if substatement and path[0] not in ("id", "stored", "authority", "version"):
        data["object"] = json.loads(json.dumps(SUBSTATEMENT))
        _set(data["object"], path, value)
    else:
        _set(data, path, value)
    response = lrs.post(data)
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code < 400:
        _check_accepted_reads_back(lrs, response, sid)
    else:
        assert response.get_json()["error"]["message"]


@PROPERTY_SETTINGS
@given(body=json_values, as_list=st.booleans())
def test_random_json_as_the_whole_body_is_never_5xx(lrs, body, as_list):
    # Always as JSON text: a generated string is a JSON string body, not raw bytes.
    response = lrs.post(json.dumps([body] if as_list else body))
    assert response.status_code < 500, response.get_data(as_text=True)
    response = lrs.put(json.dumps(body), statementId=new_id())
    assert response.status_code < 500, response.get_data(as_text=True)


@PROPERTY_SETTINGS
@given(
    path_ident=st.sampled_from(DOCUMENTS),
    first=json_values,
    second=json_values,
    weird=st.sampled_from(["", "NaN", "Infinity", "-Infinity", "1e400"]),
)
def test_random_json_documents_are_never_5xx_and_read_back_as_json(
    lrs, path_ident, first, second, weird
):
    path, ident = path_ident
    query = {**_scope(path), **ident, ("stateId" if "stateId" in ident else "profileId"): new_id()}
    headers = {"If-None-Match": "*"}
    first_text = json.dumps(first)
    if weird and isinstance(first, dict):
        first_text = first_text[:-1] + (", " if first else "") + f'"w": {weird}}}'
    put = lrs.put(first_text, path=path, headers=headers, **query)
    assert put.status_code < 500, put.get_data(as_text=True)
    post = lrs.post(json.dumps(second), path=path, **query)
    assert post.status_code < 500, post.get_data(as_text=True)
    got = lrs.get(path, **query)
    assert got.status_code in (200, 404)
    if got.status_code == 200 and got.mimetype == "application/json":
        value = strict_json(got)
        if put.status_code == 204 and post.status_code == 204:
            assert value == {**first, **second}


@PROPERTY_SETTINGS
@given(agent=json_values)
def test_random_agent_parameter_is_never_5xx(lrs, agent):
    for path, extra in (
        ("statements", {}),
        ("agents", {}),
        ("agents/profile", {}),
        ("activities/state", {"activityId": "http://example.org/a"}),
    ):
        response = lrs.get(path, agent=json.dumps(agent), **extra)
        assert response.status_code < 500, (path, response.get_data(as_text=True))


@pytest.mark.parametrize(
    ("language", "words"), [("en", "nested too deeply"), ("zh-CN", "嵌套过深")]
)
def test_the_refusal_speaks_the_clients_language(lrs, language, words):
    response = lrs.post("[" * 5000 + "]" * 5000, headers={"Accept-Language": language})
    assert response.status_code == 400
    assert words in response.get_json()["error"]["message"]


# Every parameter GET /xapi/statements accepts (the xAPI list; any other is a 400).
QUERY_PARAMS = sorted(STATEMENT_QUERY_PARAMS)
param_text = st.text(max_size=30) | st.sampled_from(
    ["", "true", "-1", "99999999999999999999999", "0001-01-01T00:00:00+00:01", "[]", "{}", "null"]
)


@PROPERTY_SETTINGS
@given(params=st.dictionaries(st.sampled_from(QUERY_PARAMS), param_text, max_size=4))
def test_random_statement_query_parameters_are_never_5xx(lrs, params):
    response = lrs.get(**params)
    assert response.status_code < 500, (params, response.get_data(as_text=True))
    if response.status_code == 200 and response.mimetype == "application/json":
        strict_json(response)


@PROPERTY_SETTINGS
@given(
    path_ident=st.sampled_from(DOCUMENTS),
    params=st.dictionaries(
        st.sampled_from(["activityId", "agent", "registration", "stateId", "profileId", "since"]),
        param_text,
        max_size=4,
    ),
    method=st.sampled_from(["get", "put", "post", "delete"]),
)
def test_random_document_parameters_are_never_5xx(lrs, path_ident, params, method):
    path, _ = path_ident
    if method in ("put", "post"):
        response = getattr(lrs, method)("{}", path=path, **params)
    else:
        response = getattr(lrs, method)(path, **params)
    assert response.status_code < 500, (path, params, response.get_data(as_text=True))
