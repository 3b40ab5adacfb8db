"""The statements GET path (issue 14): a page in the stored JSON text, the agent filter as
two ordered parts, reads outside a transaction on PostgreSQL; and that the formats, the
`more` link and the agent filter still answer what they did."""

from __future__ import annotations

import contextlib
import json

import psycopg
from sqlalchemy import Text, cast, select
from sqlalchemy.dialects import postgresql

from app.extensions import db
from app.xapi.models import Statement
from app.xapi.services.query import _page_statement, _PageShape
from tests.xapi.conftest import new_id, statement

TEACHER = {"objectType": "Agent", "mbox": "mailto:teacher@example.org", "name": "老师"}


def _about_the_teacher() -> list[dict]:
    """Oldest first: the teacher as actor, as object, as both; and one without them."""
    verb = {"id": "http://example.org/verbs/mentored", "display": {"en-US": "mentored"}}
    return [
        statement(id=new_id(), actor=TEACHER),
        statement(id=new_id(), verb=verb, object=TEACHER),
        statement(id=new_id(), actor=TEACHER, verb=verb, object=TEACHER),
        statement(id=new_id()),
    ]


def test_the_agent_filter_lists_actor_and_object_once_newest_first_across_pages(lrs):
    posted = _about_the_teacher()
    for one in posted:  # one by one: each its own `stored`
        assert lrs.post(one).status_code == 200
    expected = [posted[2]["id"], posted[1]["id"], posted[0]["id"]]
    seen, page = [], lrs.get(agent=json.dumps({"mbox": TEACHER["mbox"]}), limit=2).get_json()
    while True:
        seen += [s["id"] for s in page["statements"]]
        if not page["more"]:
            break
        page = lrs.client.get(page["more"], headers=lrs.headers()).get_json()
    assert seen == expected
    ascending = lrs.get(agent=json.dumps({"mbox": TEACHER["mbox"]}), ascending="true")
    assert [s["id"] for s in ascending.get_json()["statements"]] == expected[::-1]


def test_the_agent_page_is_ordered_parts_not_one_or():
    """Actor and agent object are separate parts of the UNION, each with its ORDER BY and
    LIMIT: with one OR, PostgreSQL walked the district's page index backwards for an agent
    whose statements are old (2.4 s at 1,000,000 statements, docs/xapi.md)."""
    shape = _PageShape(
        school=False,
        scope="all",
        agent=True,
        related_agents=False,
        verb=False,
        activity=False,
        related_activities=False,
        registration=False,
        since=False,
        until=False,
        after=False,
        ascending=False,
    )
    sql = str(_page_statement(shape).compile(dialect=postgresql.dialect()))
    parts = sql.split("UNION ALL")
    assert len(parts) == 3, sql  # actor, agent object, statements targeting a match
    assert "actor_hash" in parts[0] and "object_hash" not in parts[0]
    assert "object_hash" in parts[1] and "actor_hash" not in parts[1]
    assert all("ORDER BY" in part and "LIMIT" in part for part in parts)


def test_page_queries_hold_their_constants_in_their_text():
    """Only the request's values are parameters of a page query; the object types and
    relation kinds are in its text.  From a parameter PostgreSQL cannot prove the
    predicate of a partial index (agent objects, StatementRefs) in a generic plan, so
    every prepared page query was planned again on every GET; and an IN list of
    parameters is expanded when SQLAlchemy executes, so the text could not be compiled
    once per shape for the driver's cursor (issue 14)."""
    fields = dict.fromkeys(_PageShape.__dataclass_fields__, False) | {"scope": "all"}
    values = {"district", "agent", "verb", "activity", "since", "limit"}
    for chosen in (
        {"agent": True},
        {"agent": True, "related_agents": True},
        {"activity": True},
        {"activity": True, "related_activities": True},
        {"verb": True, "since": True},
    ):
        compiled = _page_statement(_PageShape(**(fields | chosen))).compile(
            dialect=postgresql.dialect()
        )
        assert set(compiled.params) <= values, (chosen, compiled.params)
        assert "POSTCOMPILE" not in compiled.string
        assert "object_type = 'StatementRef'" in compiled.string, chosen
    agent = str(
        _page_statement(_PageShape(**(fields | {"agent": True}))).compile(
            dialect=postgresql.dialect()
        )
    )
    assert "object_type IN ('Agent', 'Group')" in agent


def test_an_exact_page_is_the_stored_json_text(app, lrs):
    """``exact`` sends the statements as the database holds them, without reading them
    into Python and writing them again."""
    ids = lrs.post([statement(id=new_id()) for _ in range(2)]).get_json()
    body = lrs.get(limit=10).get_data(as_text=True)
    with app.app_context():
        texts = db.session.execute(
            select(cast(Statement.full, Text)).where(Statement.statement_id.in_(ids))
        ).scalars()
        for text in texts:
            assert text in body
    assert {s["id"] for s in json.loads(body)["statements"]} == set(ids)


def test_page_formats_are_the_single_statement_formats(lrs):
    languages = {"Accept-Language": "zh-CN"}
    verb = {
        "id": "http://adlnet.gov/expapi/verbs/experienced",
        "display": {"en-US": "experienced", "zh-CN": "学习"},
    }
    for one in _about_the_teacher():
        assert lrs.post(one | {"verb": verb}).status_code == 200
    for fmt in ("exact", "ids", "canonical"):
        first = lrs.get(format=fmt, limit=3, headers=languages).get_json()
        rest = lrs.client.get(first["more"], headers=lrs.headers(languages)).get_json()
        assert rest["more"] == ""
        page = first["statements"] + rest["statements"]
        assert len(page) == 4
        for listed in page:
            alone = lrs.get(statementId=listed["id"], format=fmt, headers=languages)
            assert listed == alone.get_json(), fmt
        if fmt == "canonical":
            assert {s["verb"]["display"]["zh-CN"] for s in page} == {"学习"}
            assert all(len(s["verb"]["display"]) == 1 for s in page)
        if fmt == "ids":
            assert all(s["verb"] == {"id": verb["id"]} for s in page)


def test_an_empty_page_and_a_refused_query(lrs):
    empty = lrs.get(verb="http://example.org/verbs/never")
    assert empty.status_code == 200
    assert empty.get_json() == {"statements": [], "more": ""}
    assert "Last-Modified" not in empty.headers
    assert "X-Experience-API-Consistent-Through" in empty.headers
    assert lrs.get(agent="not json").status_code == 400
    assert lrs.get(more="forged").status_code == 400


@contextlib.contextmanager
def _transaction_states(monkeypatch):
    """(query, the connection's transaction status) of everything psycopg's cursors send."""
    seen: list[tuple[str, int]] = []
    original = psycopg.Cursor.execute

    def execute(self, query, *args, **kwargs):
        seen.append((str(query)[:80], self.connection.info.transaction_status))
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    yield seen
    monkeypatch.undo()


def test_gets_read_outside_a_transaction_on_postgresql(app, lrs, backend, monkeypatch):
    """On PostgreSQL a GET of the LRS sends its two statements (client, page) in
    autocommit: no BEGIN and COMMIT round trips.  A POST still runs in a transaction."""
    sid = lrs.post(statement()).get_json()[0]
    if backend != "postgresql":
        return  # sqlite3 opens a transaction only before a write anyway
    idle = psycopg.pq.TransactionStatus.IDLE
    for query in ({"limit": 5}, {"statementId": sid}, {"agent": json.dumps(TEACHER)}):
        with _transaction_states(monkeypatch) as seen:
            assert lrs.get(**query).status_code == 200
        assert len(seen) == 2, seen
        assert all(status == idle for _, status in seen), seen
    with _transaction_states(monkeypatch) as seen:
        assert lrs.post(statement()).status_code == 200
    assert any(status != idle for _, status in seen), seen
    # A version change on a GET is still remembered (written on a connection of its own).
    assert lrs.get(headers={"X-Experience-API-Version": "1.0.3"}).status_code == 200
    no_header = lrs.client.get("/xapi/statements", headers={"Authorization": lrs.auth})
    assert no_header.headers["X-Experience-API-Version"] == "1.0.3"
