"""Concurrent writers: partly overlapping batches posted at the same time are all stored,
exactly once, and no request gets a 5xx (issue 10 item 6)."""

from __future__ import annotations

import random
import threading

from sqlalchemy import func, select

from app.extensions import db
from app.xapi.models import Statement, StatementRelation
from tests.xapi.conftest import Lrs, new_id, statement

THREADS = 6
BATCHES_PER_THREAD = 4
POOL = 60
BATCH = 20


def _pool() -> dict[str, dict]:
    """A fixed statement per id, so that a re-post is the same statement."""
    out = {}
    for n in range(POOL):
        sid = new_id()
        out[sid] = statement(
            id=sid,
            object={"id": f"http://example.org/activities/{n % 7}"},
            context={"contextActivities": {"parent": [{"id": "http://example.org/course"}]}},
        )
    return out


def test_overlapping_batches_from_threads_store_each_statement_once(app, lrs):
    pool = _pool()
    ids = list(pool)
    rng = random.Random(20261130)
    plans = [[rng.sample(ids, BATCH) for _ in range(BATCHES_PER_THREAD)] for _ in range(THREADS)]
    start = threading.Barrier(THREADS)
    statuses: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(plan):
        caller = Lrs(app.test_client(), "", "", lrs.version)
        caller.auth = lrs.auth
        start.wait()
        for batch in plan:
            body = [pool[sid] for sid in batch]
            for _attempt in range(5):  # a 409 "send it again" is an allowed answer
                response = caller.post(body)
                with lock:
                    statuses.append(response.status_code)
                if response.status_code != 409:
                    break
            with lock:
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.get_data(as_text=True)}")
                elif sorted(response.get_json()) != sorted(batch):
                    errors.append("answered ids differ from the batch")

    threads = [threading.Thread(target=worker, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not [s for s in statuses if s >= 500], statuses
    assert errors == []
    posted = {sid for plan in plans for batch in plan for sid in batch}
    db.session.expire_all()
    stored = list(db.session.execute(select(Statement.statement_id)).scalars())
    assert sorted(stored) == sorted(posted)  # every one, and none twice
    # Each stored statement has its relation rows once (actor, authority, object, parent).
    relations = db.session.execute(
        select(StatementRelation.statement_pk, func.count()).group_by(
            StatementRelation.statement_pk
        )
    ).all()
    assert len(relations) == len(posted)
    assert {count for _, count in relations} == {4}
    # And what was stored reads back.
    page = lrs.get(limit=POOL)
    assert page.status_code == 200
    assert {s["id"] for s in page.get_json()["statements"]} == posted
