"""A statements POST runs a fixed, small number of SQL statements, whatever the batch size
(issue 14): one look-up of the client, one look for existing ids, one insert each for the
statements, their relations and the activity definitions, and the savepoint around them.
On PostgreSQL these go to the driver's cursor (SQLAlchemy's events do not see them), so
they are counted there: the savepoint and the look are one round trip, a single statement
is stored with its relations and activities in one more, a batch with key allocation, two
COPYs and the activity upsert."""

from __future__ import annotations

import contextlib
import json
import uuid

import psycopg

from app.extensions import db
from tests.catalog.test_queries import count_statements
from tests.xapi.conftest import statement


def _batch(n: int) -> list[dict]:
    return [
        statement(
            id=str(uuid.uuid4()),
            object={
                "objectType": "Activity",
                "id": f"http://example.org/activities/{uuid.uuid4()}",
                "definition": {"name": {"zh-CN": f"活动 {i}"}},
            },
            context={
                "contextActivities": {"parent": [{"id": "http://example.org/courses/c1"}]},
                "instructor": {"mbox": "mailto:teacher@example.org"},
            },
        )
        for i in range(n)
    ]


def _statements_of(app, lrs, body) -> list[str]:
    with count_statements(app) as statements:
        response = lrs.post(body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [s for s in statements if not s.startswith(("BEGIN", "COMMIT"))]


@contextlib.contextmanager
def driver_round_trips(monkeypatch):
    """Every query psycopg's cursors send (BEGIN and COMMIT, sent by the connection, are
    not listed): SQLAlchemy's and the store's own alike."""
    sent: list[str] = []
    for name in ("execute", "executemany", "copy"):
        original = getattr(psycopg.Cursor, name)

        def wrapper(self, query, *args, _original=original, **kwargs):
            sent.append(query if isinstance(query, str) else repr(query))
            return _original(self, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, name, wrapper)
    yield sent
    monkeypatch.undo()


def test_a_post_runs_the_same_few_statements_for_one_or_a_hundred(app, lrs, monkeypatch):
    lrs.post(statement())  # the client's version is remembered once: not counted below
    with app.app_context():
        dialect = db.engine.dialect.name
    if dialect == "sqlite":
        single = _statements_of(app, lrs, _batch(1)[0])
        batch = _statements_of(app, lrs, _batch(100))
        assert len(single) == len(batch), (single, batch)
        assert len(batch) <= 8, "\n".join(s[:120] for s in batch)
        return
    for body, expected in ((_batch(1)[0], 3), (_batch(100), 6)):
        with driver_round_trips(monkeypatch) as sent:
            response = lrs.post(body)
        assert response.status_code == 200, response.get_data(as_text=True)
        # client; SAVEPOINT + look; one insert (single) or nextval, 2 COPYs, activities
        assert len(sent) == expected, "\n".join(s[:120] for s in sent)
        assert sent[1].startswith("SAVEPOINT")


@contextlib.contextmanager
def sql_sent(app, monkeypatch):
    """The statements a request runs: on PostgreSQL at the driver (the LRS sends some on
    the driver's cursor), on SQLite through SQLAlchemy's events."""
    with app.app_context():
        dialect = db.engine.dialect.name
    counter = driver_round_trips(monkeypatch) if dialect == "postgresql" else count_statements(app)
    with counter as statements:
        yield statements


def test_a_repost_stores_nothing_and_runs_fewer(app, lrs, monkeypatch):
    batch = _batch(20)
    assert lrs.post(batch).status_code == 200
    with sql_sent(app, monkeypatch) as sent:
        assert lrs.post(batch).status_code == 200
    again = [
        s for s in sent if not s.startswith(("BEGIN", "COMMIT"))
    ]  # same ids, same content: accepted, no insert
    assert not [s for s in again if s.lstrip().upper().startswith("INSERT")], again
    assert lrs.get(limit=50).json["statements"].__len__() == 20


def test_a_page_is_one_query_after_the_client(app, lrs, monkeypatch):
    """A GET of a page: the client's look-up and one page query, whatever the filters; the
    statements that target a match (StatementRef) come in the same query (issue 14)."""
    posted = lrs.post(_batch(3)).get_json()
    lrs.get(limit=1)  # the client's version is remembered once: not counted below
    agent = json.dumps({"mbox": "mailto:teacher@example.org"})
    for query in (
        {"limit": 2},
        {"verb": "http://adlnet.gov/expapi/verbs/experienced", "limit": 2},
        {"agent": agent, "related_agents": "true", "ascending": "true"},
        {"activity": "http://example.org/courses/c1", "related_activities": "true"},
    ):
        with sql_sent(app, monkeypatch) as statements:
            response = lrs.get(**query)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["statements"], query
        sent = [s for s in statements if not s.startswith(("BEGIN", "COMMIT", "ROLLBACK"))]
        assert len(sent) == 2, "\n".join(s[:160] for s in sent)
    assert {s["id"] for s in lrs.get(limit=10).get_json()["statements"]} == set(posted)


def test_a_statement_matching_twice_is_listed_once_in_order(lrs):
    """A statement that matches the filter itself and also targets a matching statement is
    in both halves of the page query: listed once, at its place, across `more` pages."""
    verb = {"id": "http://example.org/verbs/twice"}
    target = lrs.post(statement(verb=verb)).get_json()[0]
    both = lrs.post(statement(verb=verb, object={"objectType": "StatementRef", "id": target}))
    referring = lrs.post(statement(object={"objectType": "StatementRef", "id": target}))
    newest_first = [referring.get_json()[0], both.get_json()[0], target]
    first = lrs.get(verb=verb["id"], limit=2).get_json()
    assert [s["id"] for s in first["statements"]] == newest_first[:2]
    assert first["more"]
    rest = lrs.client.get(first["more"], headers=lrs.headers()).get_json()
    assert [s["id"] for s in rest["statements"]] == newest_first[2:]
    assert rest["more"] == ""
    oldest_first = lrs.get(verb=verb["id"], ascending="true").get_json()["statements"]
    assert [s["id"] for s in oldest_first] == newest_first[::-1]


def _activity_xmax(app, activity_id: str) -> tuple[int, dict]:
    """The ``xmax`` of the activity's row (non-zero once a transaction updated or locked
    it) and its stored definition."""
    from sqlalchemy import text

    with app.app_context():
        row = db.session.execute(
            text(
                "SELECT xmax::text::bigint, definition FROM xapi_activities WHERE activity_id = :a"
            ),
            {"a": activity_id},
        ).one()
        db.session.rollback()
    return row[0], row[1]


def test_an_unchanged_activity_definition_is_not_locked(app, lrs):
    """Issue 14: ON CONFLICT DO UPDATE locks the conflicting row even when its WHERE finds
    nothing to change, so every statement about a known activity wrote a row lock and held
    it to the commit (requests naming the same activity waited for each other).  A
    definition the stored one already holds is now left alone (no lock: xmax stays 0); a
    new key is still merged."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return  # SQLite: the upsert is computed in Python, rows are never locked
    activity = f"http://example.org/activities/{uuid.uuid4()}"

    def about(definition: dict) -> dict:
        return statement(
            id=str(uuid.uuid4()),
            object={"objectType": "Activity", "id": activity, "definition": definition},
        )

    assert lrs.post(about({"name": {"en-US": "tea"}})).status_code == 200
    assert _activity_xmax(app, activity) == (0, {"name": {"en-US": "tea"}})
    tea = {"name": {"en-US": "tea"}}
    for body in (about(tea), [about(tea), about(tea)]):  # a single POST, then a batch
        assert lrs.post(body).status_code == 200
        assert _activity_xmax(app, activity)[0] == 0
    batch = [about({"name": {"en-US": "tea"}}), about({"name": {"zh-CN": "茶"}})]
    assert lrs.post(batch).status_code == 200
    assert _activity_xmax(app, activity)[1] == {"name": {"en-US": "tea", "zh-CN": "茶"}}


def test_activity_definitions_beyond_one_upsert_statement_are_all_stored(lrs, monkeypatch):
    """The PostgreSQL upsert goes out in chunks (a statement takes at most 65,535
    parameters): every chunk's definitions are stored."""
    from app.xapi.services import activities

    monkeypatch.setattr(activities, "UPSERT_CHUNK", 2)
    batch = _batch(5)
    assert lrs.post(batch).status_code == 200
    for s in batch:
        stored = lrs.get("activities", activityId=s["object"]["id"]).get_json()
        assert stored["definition"] == s["object"]["definition"]
