"""A returning student's login + launch runs a fixed number of SQL statements, and the
xAPI statement of the launch is handed to the job queue instead of being stored in the
request (issue 14: that storage was 35-40 % of a launch)."""

from __future__ import annotations

import requests
from sqlalchemy import select

from app import jobs
from app.extensions import db
from app.xapi.models import Statement
from tests.catalog.test_queries import count_statements
from tests.lti.helpers import published_resource

# Login: platform, state + nonce written.  Launch: state, platform, deployment, nonce
# consumed, identity, user, roles, context, membership, resource (+ tags, grades), grade
# link, the two updates of a returning user, the savepoint, the framing origins.
MAX_STATEMENTS = 36


def test_a_returning_launch_runs_few_statements_and_queues_its_statement(
    app, live, platform, registered, make_user, monkeypatch
):
    content_id = published_resource(make_user("teacher"))
    for _ in range(2):  # the first launch provisions; the second is the one counted
        hint = platform.prepare(sub="stu-q", custom={"resource": content_id})
        with requests.Session() as browser:
            assert platform.launch(browser, live, hint).status_code == 302
    queued: list[tuple] = []
    monkeypatch.setattr(jobs, "enqueue", lambda path, *args, **kw: queued.append((path, args)))
    hint = platform.prepare(sub="stu-q", custom={"resource": content_id})
    with count_statements(app) as statements, requests.Session() as browser:
        assert platform.launch(browser, live, hint).status_code == 302
    statements = [s for s in statements if not s.startswith(("BEGIN", "COMMIT"))]
    assert len(statements) <= MAX_STATEMENTS, "\n".join(s[:100] for s in statements)
    assert not [s for s in statements if "xapi_statements" in s], "stored inside the request"
    # The launch handed its statement to one job ...
    stores = [args for path, args in queued if path == "app.xapi.emit:store_job"]
    assert len(stores) == 1
    [[district_id, school_id, [statement]]] = stores[0][0]
    assert statement["verb"]["id"] == "http://adlnet.gov/expapi/verbs/launched"
    assert statement["object"]["id"].endswith(f"/resources/{content_id}")
    # ... which stores it when it runs (here, as a queue worker would).
    monkeypatch.undo()
    before = db.session.execute(select(Statement.id)).all()
    jobs.run_job("app.xapi.emit:store_job", *stores[0])
    db.session.expire_all()
    rows = db.session.execute(select(Statement)).scalars().all()
    assert len(rows) == len(before) + 1
    assert any(r.statement_id == statement["id"] for r in rows)
