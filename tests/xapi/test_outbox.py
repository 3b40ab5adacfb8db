"""app.common.outbox: claiming due rows, one backoff, success and failure bookkeeping —
and, through xAPI forwarding, that two concurrent forwarders never send a statement twice."""

from __future__ import annotations

import contextlib
import json
import random
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update

from app.common import outbox
from app.common.events import commit
from app.common.models import utcnow
from app.extensions import db
from app.xapi import services
from app.xapi.models import OutboxEntry
from tests.xapi.conftest import statement


def test_backoff_doubles_with_jitter_and_a_cap():
    rng = random.Random(7)
    for attempts, full in ((1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (50, 3600)):
        delays = {outbox.backoff(attempts, rng=rng).total_seconds() for _ in range(50)}
        assert all(0.8 * full <= d <= full for d in delays), (attempts, delays)
        assert len(delays) > 1  # jittered: rows that failed together spread out
    assert outbox.backoff(3, base=10, cap=25, jitter=0).total_seconds() == 25
    assert outbox.backoff(0, jitter=0).total_seconds() == 30


class Recorder:
    """An external LRS on 127.0.0.1 that records every statement it receives.  Its
    first two requests wait for each other, so two forwarders are provably sending at
    the same time."""

    def __init__(self):
        self.up = False
        self.received: list[str] = []
        self.requests = 0
        self.together = threading.Barrier(2)
        outer = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not outer.up:
                    self.send_response(503)
                    self.end_headers()
                    return
                with lock:
                    outer.requests += 1
                    number = outer.requests
                if number <= 2:
                    with contextlib.suppress(threading.BrokenBarrierError):
                        outer.together.wait(timeout=20)
                with lock:
                    outer.received.extend(s["id"] for s in body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps([s["id"] for s in body]).encode())

            def log_message(self, *args):
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/xapi/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    server = Recorder()
    yield server
    server.close()


def _queue(orgs, make_lrs, recorder, count: int) -> list[str]:
    services.set_forward_target(orgs.district, recorder.url)
    commit()
    lrs = make_lrs()
    ids = lrs.post([statement() for _ in range(count)]).get_json()
    # The eager forwarder found the LRS down; make everything due again.
    db.session.execute(update(OutboxEntry).values(next_attempt_at=utcnow()))
    db.session.commit()
    return ids


def test_claim_failure_and_success_bookkeeping(app, orgs, make_lrs, recorder):
    _queue(orgs, make_lrs, recorder, 5)
    entries = outbox.claim(OutboxEntry, limit=3)
    assert [e.id for e in entries] == sorted(e.id for e in entries) and len(entries) == 3
    now = utcnow()
    given_up = outbox.record_failure(entries, "x" * 5000, now=now, max_attempts=2)
    # attempts was 1 already (the eager forwarder failed once): now 2, so they gave up
    assert given_up == entries
    assert all(len(e.last_error) == outbox.ERROR_LENGTH for e in entries)
    assert all(
        now + timedelta(seconds=48) <= e.next_attempt_at <= now + timedelta(seconds=60)
        for e in entries
    )
    # Not due any more: the next claim gets the two others only.
    assert {e.id for e in outbox.claim(OutboxEntry)}.isdisjoint({e.id for e in entries})
    outbox.record_success(entries)
    db.session.commit()
    assert len(db.session.execute(select(OutboxEntry.id)).scalars().all()) == 2


def test_two_concurrent_forwarders_never_send_a_statement_twice(
    app, backend, orgs, make_lrs, recorder
):
    if backend == "sqlite":
        pytest.skip("SQLite has no row locks; there the claim is a plain SELECT (documented)")
    ids = _queue(orgs, make_lrs, recorder, 40)
    recorder.up = True
    results: list[dict] = []
    failures: list[BaseException] = []

    def forwarder():
        try:
            with app.app_context():
                while True:
                    result = services.forward_due(batch_size=7)
                    db.session.commit()
                    results.append(result)
                    if result == {"sent": 0, "failed": 0}:
                        break
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=forwarder) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert not recorder.together.broken, "the two forwarders never sent at the same time"
    assert len(recorder.received) == len(set(recorder.received)), "a statement was sent twice"
    assert sorted(recorder.received) == sorted(ids)
    assert sum(r["sent"] for r in results) == len(ids)
    db.session.expire_all()
    assert services.outbox_size() == 0
