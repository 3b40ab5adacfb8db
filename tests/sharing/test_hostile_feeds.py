"""Hostile but correctly signed feeds from an allowed peer: every malformed release is
refused with its reason, logged, and nothing of it is stored (all or nothing)."""

from __future__ import annotations

import json
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import func, select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from app.common.events import commit
from app.extensions import db
from app.sharing.models import RemoteRelease, SubscribedItem, Subscription, SyncLog
from app.sharing.services import federation
from app.sharing.services.keys import FederationRefused
from app.sharing.services.manifest import canonical, digest_of
from tests.conftest import free_port
from tests.sharing.instances import sign_feed_page

UID = "11111111-2222-3333-4444-555555555555"


def _item(title: str) -> dict:
    fields = {
        "title": title,
        "summary": "",
        "kind": "video",
        "subject": "math",
        "grades": ["g7"],
        "edition": "",
        "tags": [],
        "licence": "CC-BY-4.0",
        "language": "zh",
        "unit": "",
        "publisher": "远方区",
        "url": "/resources/x",
    }
    return {"type": "resource", "version": 1, "digest": digest_of(fields), "fields": fields}


class HostilePeer:
    """An allowed instance with a real, published key that serves whatever it is told."""

    def __init__(self):
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.key = ed25519.Ed25519PrivateKey.generate()
        self.pages: dict[int, object] = {}
        self.server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def feed(self, items: dict, pages=None, number=1, per_page=None, **overrides):
        """Serve a release of ``items`` split into pages (overrides patch page 1)."""
        ids = sorted(items)
        per_page = per_page or max(1, len(ids))
        chunks = [ids[i : i + per_page] for i in range(0, len(ids), per_page)] or [[]]
        release = {
            "number": number,
            "notes": "",
            "digest": digest_of(items),
            "item_count": len(items),
        }
        self.pages = {}
        for n, chunk in enumerate(chunks, start=1):
            self.pages[n] = {
                "origin": self.origin,
                "catalog": {"uid": UID, "title": "远方", "publisher": "远方区"},
                "release": release,
                "withdrawn": [],
                "page": n,
                "pages": pages or len(chunks),
                "items": {c: items[c] for c in chunk},
            }
        self.pages[1].update(overrides)

    @Request.application
    def _wsgi(self, request: Request) -> Response:
        if request.path == "/.well-known/shuyuan-keys":
            pem = (
                self.key.public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode()
            )
            return Response(
                json.dumps(
                    {
                        "origin": self.origin,
                        "keys": [{"kid": "hostile", "alg": "ed25519", "public_pem": pem}],
                    }
                ),
                mimetype="application/json",
            )
        page = int(request.args.get("page", "1"))
        data = self.pages.get(page)
        body = data if isinstance(data, bytes) else canonical(data)
        return self._signed(body)

    def _signed(self, body: bytes) -> Response:
        headers = {"Content-Type": "application/json"}
        headers = sign_feed_page(self.key, "hostile", 200, headers, body)
        return Response(body, status=200, headers=headers)

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def peer(app, ctx, orgs, monkeypatch):
    hostile = HostilePeer()
    monkeypatch.setitem(app.config, "SHARING_PEERS", [hostile.origin])
    monkeypatch.setitem(app.config, "SHARING_MAX_PAGE_BYTES", 64 * 1024)
    sub = Subscription(
        subscriber_district_id=orgs.district.id,
        remote_origin=hostile.origin,
        remote_catalog_uid=UID,
        status="active",
    )
    db.session.add(sub)
    commit()
    hostile.subscription_id = sub.id
    yield hostile
    hostile.stop()


def _sync_refused(peer) -> str:
    sub = db.session.get(Subscription, peer.subscription_id)
    with pytest.raises(FederationRefused) as refused:
        federation.sync(sub)
    commit()  # what a refusal leaves behind is only its log entry
    assert db.session.execute(select(func.count(RemoteRelease.id))).scalar_one() == 0
    assert db.session.execute(select(func.count(SubscribedItem.content_id))).scalar_one() == 0
    last = db.session.execute(select(SyncLog).order_by(SyncLog.id.desc()).limit(1)).scalar_one()
    assert not last.ok and last.message == refused.value.reason
    return refused.value.reason


GOOD = {f"id-{n}": _item(f"资源{n}") for n in range(6)}


def _serve_items(peer, items):
    peer.feed(items)
    # A release hash over the served items, so only the per-item check can catch them.
    peer.pages[1]["release"]["digest"] = digest_of(items)


def _cycle(peer):
    peer.feed(GOOD, per_page=2)
    peer.pages[3]["page"] = 2  # the third page claims to be the second


def _repeat(peer):
    peer.feed(GOOD, per_page=2)
    peer.pages[3]["items"] = dict(peer.pages[1]["items"])  # page 3 repeats page 1


def _changed(name, change):
    items = {k: json.loads(json.dumps(v)) for k, v in GOOD.items()}
    change(items[name])
    return items


def test_each_hostile_feed_is_refused_and_nothing_is_stored(peer):
    cases = [
        ("out of order", _cycle),
        ("served twice", _repeat),
        (
            "bad content id",
            lambda p: _serve_items(p, dict(GOOD, **{"../../etc/passwd": _item("路径穿越")})),
        ),
        (
            "exactly type, version, digest and fields",
            lambda p: _serve_items(
                p, _changed("id-0", lambda e: e.update(script="<script>alert(1)</script>"))
            ),
        ),
        (
            "hash mismatch",
            lambda p: _serve_items(
                p, _changed("id-1", lambda e: e["fields"].update(licence="ARR"))
            ),
        ),
        (
            "wrong type",
            lambda p: _serve_items(
                p, _changed("id-2", lambda e: e["fields"].update(grades={"$ne": 1}))
            ),
        ),
    ]
    for expected, set_up in cases:
        set_up(peer)
        reason = _sync_refused(peer)
        assert expected in reason, (expected, reason)

    peer.feed(GOOD)
    peer.pages[1]["release"]["digest"] = "0" * 64
    assert "release hash mismatch" in _sync_refused(peer)
    peer.feed(GOOD, pages=10**6)
    assert "too many pages" in _sync_refused(peer)
    peer.feed(GOOD, surprise="field")
    assert "unknown or missing fields" in _sync_refused(peer)
    peer.feed(GOOD)
    peer.pages[1] = canonical([1, 2, 3])
    assert "unknown or missing fields" in _sync_refused(peer)
    peer.feed(GOOD)
    peer.pages[1] = b"{" + b" " * (70 * 1024) + b"}"
    assert "larger than" in _sync_refused(peer)
    peer.feed(GOOD, origin="http://127.0.0.1:1")
    assert "another origin" in _sync_refused(peer)
    peer.feed(GOOD)
    peer.pages[1]["release"]["number"] = True
    assert "bad release" in _sync_refused(peer)

    # The same peer serving an honest release is accepted: the refusals were the data's.
    peer.feed(GOOD, per_page=2)
    sub = db.session.get(Subscription, peer.subscription_id)
    result = federation.sync(sub)
    commit()
    assert (result.status, result.items) == ("synced", 6)
