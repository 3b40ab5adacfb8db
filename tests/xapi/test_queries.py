"""A statements POST runs a fixed, small number of SQL statements, whatever the batch size
(issue 14): one look-up of the client, one look for existing ids, one insert each for the
statements, their relations and the activity definitions, and the savepoint around them.
On PostgreSQL the key allocation and the statements and relations go in on the driver's
cursor (one SELECT of the sequence and two COPYs, which SQLAlchemy's events do not see)."""

from __future__ import annotations

import uuid

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


def test_a_post_runs_the_same_few_statements_for_one_or_a_hundred(app, lrs):
    lrs.post(statement())  # the client's version is remembered once: not counted below
    single = _statements_of(app, lrs, _batch(1)[0])
    batch = _statements_of(app, lrs, _batch(100))
    with app.app_context():
        dialect = db.engine.dialect.name
    expected = 8 if dialect == "sqlite" else 5
    assert len(single) == len(batch), (single, batch)
    assert len(batch) <= expected, "\n".join(s[:120] for s in batch)


def test_a_repost_stores_nothing_and_runs_fewer(app, lrs):
    batch = _batch(20)
    assert lrs.post(batch).status_code == 200
    again = _statements_of(app, lrs, batch)  # same ids, same content: accepted, no insert
    assert not [s for s in again if s.lstrip().upper().startswith("INSERT")], again
    assert lrs.get(limit=50).json["statements"].__len__() == 20
