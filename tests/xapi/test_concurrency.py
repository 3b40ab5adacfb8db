"""Concurrent writers: partly overlapping batches posted at the same time are all stored,
exactly once, and no request gets a 5xx (issue 10 item 6)."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
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


def _race(pool: dict, post) -> tuple[set[str], list[int], list[str]]:
    """Every thread posts its own overlapping batches at the same moment; ``post(body)``
    returns (status, parsed JSON or text).  A 409 ("send it again") is retried."""
    ids = list(pool)
    rng = random.Random(20261130)
    plans = [[rng.sample(ids, BATCH) for _ in range(BATCHES_PER_THREAD)] for _ in range(THREADS)]
    start = threading.Barrier(THREADS)
    statuses: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(plan):
        start.wait()
        for batch in plan:
            body = [pool[sid] for sid in batch]
            for _attempt in range(5):
                status, answer = post(body)
                with lock:
                    statuses.append(status)
                if status != 409:
                    break
            with lock:
                if status != 200:
                    errors.append(f"{status} {answer}")
                elif sorted(answer) != sorted(batch):
                    errors.append("answered ids differ from the batch")

    threads = [threading.Thread(target=worker, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {sid for plan in plans for batch in plan for sid in batch}, statuses, errors


def test_overlapping_batches_from_threads_store_each_statement_once(app, lrs):
    pool = _pool()

    def post(body):
        caller = Lrs(app.test_client(), "", "", lrs.version)
        caller.auth = lrs.auth
        response = caller.post(body)
        answer = response.get_json() if response.is_json else response.get_data(as_text=True)
        return response.status_code, answer

    posted, statuses, errors = _race(pool, post)
    assert not [s for s in statuses if s >= 500], statuses
    assert errors == []
    _assert_stored_once(lrs, posted)


def _assert_stored_once(lrs, posted: set[str]) -> None:
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


# --- the same against gunicorn with two workers (the production path) -------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gunicorn_lrs(database_url, tmp_path):
    """gunicorn -w 2 serving this worktree's app on the test database; yields its URL."""
    root = Path(__file__).resolve().parents[2]
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SHUYUAN_INSTANCE_PATH": str(tmp_path),
        "SHUYUAN_PLUGINS": "",
        "PYTHONPATH": str(root),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", str(root), "wsgi:app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/xapi/"
    deadline = time.monotonic() + 180
    try:
        while True:  # wait until a worker answers (a condition, not a fixed sleep)
            if process.poll() is not None:
                pytest.fail("gunicorn exited: " + process.stderr.read().decode()[-2000:])
            # Not listening yet, or still booting: ask again.
            with contextlib.suppress(requests.RequestException):
                if requests.get(url + "about", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail("gunicorn did not answer within 180 s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_overlapping_batches_against_gunicorn_store_each_statement_once(lrs, gunicorn_lrs):
    pool = _pool()
    session = requests.Session()
    headers = {
        "Authorization": lrs.auth,
        "X-Experience-API-Version": "2.0.0",
        "Content-Type": "application/json",
    }

    def post(body):
        response = session.post(
            gunicorn_lrs + "statements", json=body, headers=headers, timeout=120
        )
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    posted, statuses, errors = _race(pool, post)
    assert not [s for s in statuses if s >= 500], statuses
    assert errors == []
    _assert_stored_once(lrs, posted)
