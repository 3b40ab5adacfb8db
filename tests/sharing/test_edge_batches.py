"""Several media objects in one request (issue 14, "Mirror throughput"): the publisher
sends whole objects back to back after one signature check and one access check; the
subscriber splits the body by the signed index's sizes and verifies each object on its
own — a bad object is refused alone, a cut keeps the current object's partial file for a
Range request, a batch the publisher refuses is asked for object by object."""

from __future__ import annotations

import hashlib
import io
import os
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from app.sharing.services import media_fetch
from tests.sharing.test_edge_units import _Cut, _entry, _stored

SMALL = 4096


class FakeBatchPeer:
    """A ``requests.Session`` stand-in for a publisher holding ``objects`` (sha → bytes):
    answers batch requests (``refuse_batches``: 404, as a publisher that does not share
    one of them or has no batches) and single ones (with Range); ``corrupt`` serves other
    bytes for a hash; ``cut_at`` breaks the first response after so many bytes."""

    def __init__(self, objects: dict, corrupt=None, cut_at=None, refuse_batches=False):
        self.objects, self.corrupt = objects, corrupt or {}
        self.cut_at, self.refuse_batches = cut_at, refuse_batches
        self.sent: list = []

    def _bytes(self, sha):
        return self.corrupt.get(sha, self.objects.get(sha))

    def send(self, prepared, **kw):
        self.sent.append(prepared)
        assert "Signature" in prepared.headers  # every media request is signed
        url = urlsplit(prepared.url)
        response = requests.Response()
        response.headers = CaseInsensitiveDict()
        if url.path == "/sharing/federation/media":
            hashes = parse_qs(url.query)["objects"][0].split(",")
            if self.refuse_batches or any(sha not in self.objects for sha in hashes):
                response.status_code, body = 404, b"{}"
            else:
                response.status_code = 200
                body = b"".join(self._bytes(sha) for sha in hashes)
                response.headers["Content-Length"] = str(len(body))
        else:
            sha = url.path.rsplit("/", 1)[1]
            if sha not in self.objects:
                response.status_code, body = 404, b"{}"
            else:
                body, start = self._bytes(sha), 0
                asked = prepared.headers.get("Range")
                if asked:
                    start = int(asked.split("=")[1].rstrip("-"))
                    response.headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/*"
                response.status_code = 206 if asked else 200
                body = body[start:]
        cut, self.cut_at = self.cut_at, None  # only the first response is cut
        response.raw = _Cut(body, cut) if cut is not None else io.BytesIO(body)
        return response


@pytest.fixture
def media_app(app, ctx, tmp_path):
    from app.sharing.services import keys

    keys.ensure_key()
    old = app.config["SHARING_PARTIAL_DIR"]
    app.config["SHARING_PARTIAL_DIR"] = str(tmp_path / "partial")
    yield tmp_path / "partial"
    app.config["SHARING_PARTIAL_DIR"] = old


def _objects(*sizes):
    datas = [os.urandom(size) for size in sizes]
    return datas, [_entry(data) for data in datas]


def _batch(peer, entries, stats=None):
    """download_batch with recording callbacks: (verified [(sha, bytes)], refused [(sha,
    reason)])."""
    verified, refused = [], []
    media_fetch.download_batch(
        peer,
        "http://peer.test",
        entries,
        stats or media_fetch.FetchStats(),
        lambda entry, part: verified.append((entry["sha256"], part.read_bytes())),
        lambda entry, exc: refused.append((entry["sha256"], exc.reason)),
        chunk_size=SMALL,
    )
    return verified, refused


def test_one_request_is_split_into_its_objects_each_verified(media_app):
    # Sizes that do not fall on chunk boundaries: objects begin and end mid-chunk.
    datas, entries = _objects(5 * SMALL + 123, 1, 2 * SMALL - 5)
    peer = FakeBatchPeer({e["sha256"]: d for e, d in zip(entries, datas, strict=True)})
    stats = media_fetch.FetchStats()
    verified, refused = _batch(peer, entries, stats)
    assert verified == [(e["sha256"], d) for e, d in zip(entries, datas, strict=True)]
    assert refused == [] and len(peer.sent) == 1 and stats.requests == 1
    assert peer.sent[0].url.endswith("?objects=" + ",".join(e["sha256"] for e in entries))
    assert stats.bytes == sum(len(d) for d in datas)


def test_one_bad_object_in_a_batch_is_refused_alone(media_app):
    datas, entries = _objects(3 * SMALL, 2 * SMALL + 1, SMALL)
    bad = bytearray(datas[1])
    bad[SMALL + 3] ^= 0x01
    peer = FakeBatchPeer(
        {e["sha256"]: d for e, d in zip(entries, datas, strict=True)},
        corrupt={entries[1]["sha256"]: bytes(bad)},
    )
    verified, refused = _batch(peer, entries)
    assert [sha for sha, _ in verified] == [entries[0]["sha256"], entries[2]["sha256"]]
    assert refused == [(entries[1]["sha256"], f"media {entries[1]['sha256'][:12]}: hash mismatch")]
    assert not (media_app / f"{entries[1]['sha256']}.part").exists()
    assert _stored(entries[1]["sha256"]) == (None, None)


def test_a_cut_batch_keeps_the_current_object_for_a_range_request(media_app):
    datas, entries = _objects(3 * SMALL, 4 * SMALL, SMALL)
    objects = {e["sha256"]: d for e, d in zip(entries, datas, strict=True)}
    peer = FakeBatchPeer(objects, cut_at=3 * SMALL + SMALL + 100)  # inside the second
    with pytest.raises(media_fetch.Interrupted, match="cut after"):
        _batch(peer, entries)
    second = media_app / f"{entries[1]['sha256']}.part"
    held = second.stat().st_size
    assert 0 < held <= SMALL + 100
    assert (media_app / f"{entries[0]['sha256']}.part").read_bytes() == datas[0]  # verified
    assert not (media_app / f"{entries[2]['sha256']}.part").exists()  # never started
    stats = media_fetch.FetchStats()
    part = media_fetch.download(peer, "http://peer.test", entries[1], stats, chunk_size=SMALL)
    assert peer.sent[-1].headers["Range"] == f"bytes={held}-"
    assert part.read_bytes() == datas[1] and stats.resumed == 1
    assert stats.bytes == len(datas[1]) - held  # no byte fetched twice


def test_a_refused_batch_is_asked_for_object_by_object(media_app):
    """404 for the batch (one object is not shared with us, or a publisher without
    batches): each object is asked for on its own and gets its own answer."""
    datas, entries = _objects(SMALL + 1, 2 * SMALL)
    stranger = _entry(b"not shared with us")
    peer = FakeBatchPeer({e["sha256"]: d for e, d in zip(entries, datas, strict=True)})
    verified, refused = _batch(peer, [entries[0], stranger, entries[1]])
    assert [sha for sha, _ in verified] == [entries[0]["sha256"], entries[1]["sha256"]]
    assert refused == [
        (stranger["sha256"], f"media {stranger['sha256'][:12]}: publisher answered 404")
    ]
    assert [urlsplit(p.url).path.rsplit("/", 1)[1] for p in peer.sent] == [
        "media",
        entries[0]["sha256"],
        stranger["sha256"],
        entries[1]["sha256"],
    ]
    datas, entries = _objects(SMALL, 3)  # a publisher without batches
    old = FakeBatchPeer(
        {e["sha256"]: d for e, d in zip(entries, datas, strict=True)}, refuse_batches=True
    )
    verified, refused = _batch(old, entries)
    assert len(verified) == 2 and refused == [] and len(old.sent) == 3


def test_a_batch_larger_than_the_publisher_takes_is_not_sent(media_app):
    _, entries = _objects(*([1] * (media_fetch.MEDIA_BATCH_MAX + 1)))
    peer = FakeBatchPeer({})
    with pytest.raises(ValueError):
        _batch(peer, entries)
    assert peer.sent == []


# --- the publisher's side ---------------------------------------------------------------


@pytest.fixture
def publisher(app, ctx, people, orgs, publish):
    """This instance shares a catalog of two media objects with itself (its own key
    stands in for the peer's), a third object is attached to an unshared item."""
    from sqlalchemy import select

    from app.catalog.models import Resource
    from app.common.events import commit
    from app.extensions import db
    from app.media.models import MediaAttachment, MediaObject
    from app.media.storage import get_storage
    from app.sharing.models import PeerKey, RemoteSubscriber
    from app.sharing.services import catalogs, keys

    origin = "http://pub.test"
    app.config.update(SHARING_ORIGIN=origin, SHARING_PEERS=[origin])
    keys.ensure_key()  # committed on a connection of its own: before anything is written
    shared_ids = [publish(title=f"京剧 {n}", subject="art") for n in range(2)]
    other = publish(title="算术", subject="math")
    datas = [os.urandom(3 * SMALL + 7), os.urandom(SMALL), b"private"]
    storage = get_storage()
    for content_id, data in zip([*shared_ids, other], datas, strict=True):
        sha = hashlib.sha256(data).hexdigest()
        storage.put_bytes(f"sha256/{sha}", data, "video/mp4")
        obj = MediaObject(
            backend=storage.name,
            key=f"sha256/{sha}",
            size=len(data),
            checksum=sha,
            media_type="video/mp4",
            meta={},
        )
        db.session.add(obj)
        db.session.flush()
        resource_id = db.session.execute(
            select(Resource.id).where(Resource.content_id == content_id)
        ).scalar_one()
        db.session.add(
            MediaAttachment(resource_id=resource_id, role="primary", object_id=obj.id, filename="a")
        )
    shared = catalogs.create_catalog(
        people.pub_admin, orgs.district.id, {"title": "京剧", "rules": {"subject": ["art"]}}
    )
    catalogs.publish_release(people.pub_admin, shared, "")
    db.session.add(
        RemoteSubscriber(
            catalog_id=shared.id,
            origin=origin,
            request_id="r1",
            district_name="本区",
            status="active",
        )
    )
    kid, _ = keys.current_signer()
    db.session.add(PeerKey(origin=origin, kid=kid, public_pem=keys.signing_key().public_pem))
    commit()
    yield origin, [hashlib.sha256(d).hexdigest() for d in datas], datas
    app.config.update(SHARING_ORIGIN=None, SHARING_PEERS=[])


def _signed(client, origin: str, path: str, sign=True):
    from app.sharing.services import keys

    prepared = requests.Request("GET", origin + path).prepare()
    if sign:
        keys.sign_request(prepared, b"")
    return client.get(path, headers=dict(prepared.headers))


def test_the_publisher_sends_the_objects_back_to_back(client, publisher):
    origin, hashes, datas = publisher
    response = _signed(client, origin, f"/sharing/federation/media?objects={hashes[1]},{hashes[0]}")
    assert response.status_code == 200
    assert response.data == datas[1] + datas[0]
    assert response.headers["Content-Length"] == str(len(datas[0]) + len(datas[1]))
    assert response.headers["Cache-Control"] == "private, no-store"


def test_the_publisher_refuses_unsigned_unshared_and_malformed_batches(client, publisher):
    origin, hashes, _ = publisher
    path = f"/sharing/federation/media?objects={hashes[0]},{hashes[1]}"
    assert _signed(client, origin, path, sign=False).status_code == 403
    # Signed for another URL (the signature covers the list of objects).
    from app.sharing.services import keys

    prepared = requests.Request("GET", origin + path.replace(hashes[1], hashes[2])).prepare()
    keys.sign_request(prepared, b"")
    assert client.get(path, headers=dict(prepared.headers)).status_code == 403
    # One object of an item not shared with the peer: the whole batch is not found.
    assert _signed(client, origin, f"{path},{hashes[2]}").status_code == 404
    for bad in (
        "",
        f"{hashes[0]},{hashes[0]}",
        f"{hashes[0]},../x",
        ",".join([hashes[0]] * 40),
        ",".join(hashlib.sha256(bytes([n])).hexdigest() for n in range(33)),
    ):
        assert (
            _signed(client, origin, f"/sharing/federation/media?objects={bad}").status_code == 422
        )


def test_a_batch_costs_the_statements_of_one_object(app, publisher):
    """One signature check and one access check for the whole batch: the 4 statements
    of a single object's check (its items, the peer's catalogs, the newest release, its
    withdrawals), whatever the number of objects."""
    from sqlalchemy import event

    from app.extensions import db
    from app.sharing.services import media_serve

    origin, hashes, _ = publisher
    media_serve.media_objects(origin, hashes[:2])  # the manifest is decoded once
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        rows = media_serve.media_objects(origin, hashes[:2])
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert [row.checksum for row in rows] == hashes[:2]
    assert len(statements) == 4, statements
