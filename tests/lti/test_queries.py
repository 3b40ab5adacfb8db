"""A returning student's login + launch runs a fixed number of SQL statements, and the
xAPI statement of the launch is handed to the job queue instead of being stored in the
request (issue 14: that storage was 35-40 % of a launch)."""

from __future__ import annotations

import requests
from sqlalchemy import select

from app import jobs
from app.common.events import commit
from app.extensions import db
from app.xapi.models import Statement
from tests.catalog.test_queries import count_statements
from tests.lti.helpers import published_resource

# Login (3): platform; SET LOCAL synchronous_commit (PostgreSQL only); state and nonce in
# one INSERT.  Launch (13): state, platform, deployment (with its school and district),
# nonce consumed, SAVEPOINT, identity (with user and roles), the two updates of a
# returning user, context (with the membership), resource, grade link, RELEASE, the
# sharing usage check.  The framing origins of the CSP header come from the cache.
# 43 statements before issue 14, 27 before its second pass (docs/lti.md).
MAX_STATEMENTS = 16

# What the launch must not read again (each was a statement of its own).
NOT_READ = ("FROM schools", "FROM districts", "FROM users", "FROM role_assignments")
NOT_READ += ("FROM resource_tags", "FROM resource_grades", "FROM lti_context_members")


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
    listing = "\n".join(" ".join(s.split())[:120] for s in statements)
    assert len(statements) <= MAX_STATEMENTS, listing
    flat = [" ".join(s.split()) for s in statements]
    assert not [s for s in flat if s.startswith("SELECT") and any(t in s for t in NOT_READ)], (
        listing
    )
    # The CSP framing origins are cached: not read again for each response.
    origins = "SELECT lti_platforms.issuer, lti_platforms.auth_login_url FROM"
    assert not [s for s in flat if s.startswith(origins)], listing
    # State and nonce of the login are written by one INSERT.
    assert len([s for s in flat if s.startswith("INSERT INTO lti_launch_data")]) == 1, listing
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


def _frame_ancestors(live: str) -> list[str]:
    header = requests.get(live + "/lti/jwks.json", timeout=10).headers["Content-Security-Policy"]
    [directive] = [d for d in header.split(";") if d.strip().startswith("frame-ancestors")]
    return directive.split()[1:]


def test_the_cached_framing_origins_follow_every_registration_change(live, platform, registered):
    """The origins allowed to frame LTI pages are cached; suspending the platform or its
    deployment, and approving it again, is seen by the next response."""
    assert platform.url in _frame_ancestors(live)
    registered.platform.active = False
    commit()
    assert platform.url not in _frame_ancestors(live)
    registered.platform.active = True
    registered.approved = False
    commit()
    assert platform.url not in _frame_ancestors(live)
    registered.approved = True
    commit()
    assert platform.url in _frame_ancestors(live)
    # A rolled-back change leaves the cache as it was (and the platform framing).
    registered.approved = False
    db.session.flush()
    db.session.rollback()
    assert platform.url in _frame_ancestors(live)
