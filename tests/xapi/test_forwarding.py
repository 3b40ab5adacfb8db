"""Forwarding to a district's external LRS survives the LRS being down."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from app.common.events import commit
from app.common.models import utcnow
from app.extensions import db
from app.xapi import services
from app.xapi.models import OutboxEntry
from tests.xapi.conftest import statement


class ExternalLrs:
    def __init__(self):
        self.up = False
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not outer.up:
                    self.send_response(503)
                    self.end_headers()
                    self.wfile.write(b"down for maintenance")
                    return
                data = json.loads(body)
                outer.received.extend(data if isinstance(data, list) else [data])
                outer.auth = self.headers.get("Authorization")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps([s["id"] for s in data]).encode())

            def log_message(self, *args):
                """Keep the test output free of request lines."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/xapi/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def external():
    server = ExternalLrs()
    yield server
    server.close()


def outbox() -> list[OutboxEntry]:
    db.session.expire_all()
    return list(db.session.execute(select(OutboxEntry).order_by(OutboxEntry.id)).scalars())


def test_forwarding_retries_until_the_external_lrs_recovers(app, make_lrs, orgs, external):
    services.set_forward_target(orgs.district, external.url, "user", "pass")
    commit()
    lrs = make_lrs()
    ids = lrs.post([statement(), statement()]).get_json()
    ids += lrs.post(statement()).get_json()
    # The eager forward job ran and failed: everything is still in the outbox.
    entries = outbox()
    assert len(entries) == 3 and all(e.attempts == 1 and "503" in e.last_error for e in entries)
    assert external.received == []
    # Not due yet: nothing is sent.
    with app.app_context():
        assert services.forward_due()["sent"] == 0
    # Still down when due: kept, attempts counted, backoff grows.
    with app.app_context():
        result = services.forward_due(now=utcnow() + timedelta(minutes=5))
        db.session.commit()
    assert result == {"sent": 0, "failed": 3}
    assert {e.attempts for e in outbox()} == {2}
    # Back up: everything arrives once, in order, and the outbox empties.
    external.up = True
    runner = app.test_cli_runner()
    with app.app_context():
        db.session.execute(db.update(OutboxEntry).values(next_attempt_at=utcnow()))
        db.session.commit()
    result = runner.invoke(args=["xapi", "forward"])
    assert result.exit_code == 0 and "sent 3" in result.output, result.output
    assert [s["id"] for s in external.received] == ids
    assert all("stored" not in s and "authority" not in s for s in external.received)
    assert external.auth.startswith("Basic ")
    assert outbox() == []


def test_other_districts_are_not_forwarded(make_lrs, orgs, external):
    services.set_forward_target(orgs.district, external.url)
    commit()
    make_lrs(district=orgs.review_district).post(statement())
    assert outbox() == []
