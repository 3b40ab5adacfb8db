"""The mirror's download loop in chunks (issue 14: 1 MiB reads, SHA-256 in a thread of its
own): every byte is still checked whatever chunk it arrives in — the last, short chunk
included —, a resumed download is hashed from the partial file's bytes, a read under a
bandwidth limit is never larger than one burst, and the next download starts before the
finished one is stored and committed."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from app.sharing.services import edge, media_fetch, mirror
from tests.sharing.test_edge_units import FakePeer, _entry, _stored

SMALL = 4096  # the chunk size of these tests: many chunks from a few KiB of data


@pytest.fixture
def media_app(app, ctx, tmp_path):
    from app.sharing.services import keys

    keys.ensure_key()
    old = app.config["SHARING_PARTIAL_DIR"]
    app.config["SHARING_PARTIAL_DIR"] = str(tmp_path / "partial")
    yield tmp_path / "partial"
    app.config["SHARING_PARTIAL_DIR"] = old


def _download(peer, entry, chunk=SMALL, stats=None):
    return media_fetch.download(
        peer, "http://peer.test", entry, stats or media_fetch.FetchStats(), chunk_size=chunk
    )


def test_many_chunks_and_a_short_last_one_are_hashed_in_order(media_app):
    data = os.urandom(5 * SMALL + 123)  # five whole chunks and a short one
    entry = _entry(data)
    part = _download(FakePeer(data), entry)
    assert part.read_bytes() == data


@pytest.mark.parametrize("where", [0, 2 * SMALL + 7, -1], ids=["first", "middle", "last-short"])
def test_one_changed_byte_in_any_chunk_is_refused(media_app, where):
    data = os.urandom(5 * SMALL + 123)
    entry = _entry(data)
    bad = bytearray(data)
    bad[where] ^= 0x01
    with pytest.raises(media_fetch.MediaRefused, match="hash mismatch"):
        _download(FakePeer(bytes(bad)), entry)
    assert not (media_app / f"{entry['sha256']}.part").exists()
    assert _stored(entry["sha256"]) == (None, None)


def test_more_bytes_than_listed_in_the_last_chunk_are_refused(media_app):
    data = os.urandom(3 * SMALL + 10)
    entry = _entry(data)
    with pytest.raises(media_fetch.MediaRefused, match="more bytes than listed"):
        _download(FakePeer(data + b"!"), entry)
    assert not (media_app / f"{entry['sha256']}.part").exists()


def test_a_cut_mid_chunk_resumes_from_the_partial_files_length(media_app):
    data = os.urandom(6 * SMALL + 321)
    entry = _entry(data)
    cut = 3 * SMALL + 1000  # not on a chunk boundary
    peer = FakePeer(data, cut_at=cut)
    stats = media_fetch.FetchStats()
    with pytest.raises(media_fetch.Interrupted):
        _download(peer, entry, stats=stats)
    part = media_app / f"{entry['sha256']}.part"
    held = part.stat().st_size
    assert 0 < held <= cut and part.read_bytes() == data[:held]
    assert _download(peer, entry, stats=stats).read_bytes() == data
    assert peer.sent[-1].headers["Range"] == f"bytes={held}-"
    assert stats.bytes == len(data) and stats.resumed == 1


def test_a_damaged_last_partial_chunk_of_the_held_file_is_refused_on_resume(media_app):
    """The partial file is re-hashed on resume: a byte changed at its very end (the
    last, short chunk written before the cut) is caught, though the network's bytes
    after it are right."""
    data = os.urandom(4 * SMALL + 500)
    entry = _entry(data)
    held = 2 * SMALL + 77
    part = media_app / f"{entry['sha256']}.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(data[: held - 1] + bytes([data[held - 1] ^ 0xFF]))
    peer = FakePeer(data)
    with pytest.raises(media_fetch.MediaRefused, match="hash mismatch"):
        _download(peer, entry)
    assert peer.sent[-1].headers["Range"] == f"bytes={held}-"  # only the rest was asked
    assert not part.exists()
    # The next run starts from nothing and ends with the right object.
    assert _download(FakePeer(data), entry).read_bytes() == data


def test_a_complete_partial_file_is_verified_without_a_request(media_app):
    data = os.urandom(2 * SMALL + 5)
    entry = _entry(data)
    part = media_app / f"{entry['sha256']}.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(data)
    peer = FakePeer(b"")
    assert _download(peer, entry) == part and peer.sent == []
    part.write_bytes(data[:-1] + b"\0")
    with pytest.raises(media_fetch.MediaRefused, match="hash mismatch"):
        _download(FakePeer(b""), entry)


def test_the_hashing_thread_ends_when_the_link_breaks(media_app):
    data = os.urandom(4 * SMALL)
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(media_fetch.Interrupted):
        _download(FakePeer(data, cut_at=SMALL + 1), _entry(data))
    assert "shuyuan-sha256" not in {t.name for t in threading.enumerate()} - before


def test_hasher_gives_the_digest_of_the_chunks_in_order():
    chunks = [os.urandom(n) for n in (1, 70_000, 3, 1 << 20, 0, 9)]
    hasher = media_fetch._Hasher(hashlib.sha256())
    for chunk in chunks:
        hasher.update(chunk)
    assert hasher.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()
    hasher.close()  # idempotent
    inline = media_fetch._Hasher(hashlib.sha256(), threaded=False)  # several connections
    for chunk in chunks:
        inline.update(chunk)
    assert inline.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_a_read_is_never_larger_than_one_burst():
    assert edge.TokenBucket(0).read_size(1 << 20) == 1 << 20  # no limit
    assert edge.TokenBucket(100_000).read_size(1 << 20) == 100_000  # one second's worth
    assert edge.TokenBucket(50 << 20).read_size(1 << 20) == 1 << 20
    assert edge.TokenBucket(1000, capacity=10).read_size(1 << 20) == 10


def test_next_download_starts_before_the_finished_one_is_committed(app, ctx, monkeypatch, tmp_path):
    """One connection, objects resumed from partial files (each on its own): object b's
    download is under way while a is stored and committed (on the old code b started
    only after a's commit, so the wait below timed out)."""
    b_started = threading.Event()
    seen = {}

    def download(session, origin, entry, stats, consume, progress, chunk_size, signer, threaded):
        seen[entry["sha256"]] = chunk_size
        seen["signer"], seen["hash thread"] = signer, threaded
        if entry["sha256"] == "b":
            b_started.set()
        return entry["sha256"]

    def finish(entry, part, stats):
        if entry["sha256"] == "a":
            seen["b running while a is stored"] = b_started.wait(timeout=10)
        return object()

    (tmp_path / "a.part").write_bytes(b"")
    (tmp_path / "b.part").write_bytes(b"")
    monkeypatch.setattr(media_fetch, "partial_path", lambda sha: tmp_path / f"{sha}.part")
    monkeypatch.setattr(media_fetch, "download", download)
    monkeypatch.setattr(media_fetch, "finish", finish)
    monkeypatch.setattr(media_fetch, "attach", lambda *a: None)
    monkeypatch.setattr(mirror, "commit", lambda: None)
    monkeypatch.setitem(app.config, "EDGE_MIRROR_PARALLEL", 1)
    plans = {sha: ("http://peer.test", {"sha256": sha, "size": 1}, ["i"]) for sha in "ab"}
    done = []
    mirror._fetch_all(
        ["a", "b"],
        plans,
        mirror.MirrorReport(True),
        lambda: True,
        edge.TokenBucket(200_000),
        None,
        done.append,
    )
    assert done == ["a", "b"]
    assert seen["b running while a is stored"] is True
    assert seen["a"] == seen["b"] == 200_000  # reads capped at one burst of the limit
    assert seen["signer"][0]  # the key read once, by this thread
    assert seen["hash thread"] is True  # one connection: the hash beside the transfer


def test_a_batch_goes_on_while_its_first_object_is_committed(app, ctx, monkeypatch, tmp_path):
    """One connection, objects fetched whole: one batch request for all of them, and
    object a is stored and committed while b's bytes still arrive (the fake batch waits
    for a's storing before it delivers b: had the mirror stored a only after the batch,
    the wait would time out)."""
    a_storing = threading.Event()
    seen = {}

    def download_batch(
        session, origin, entries, stats, verified, refused, consume, progress, chunk, signer, _
    ):
        seen["batch"] = [e["sha256"] for e in entries]
        seen["chunk"], seen["signer"] = chunk, signer
        verified(entries[0], "a")
        seen["a stored while b arrives"] = a_storing.wait(timeout=10)
        verified(entries[1], "b")

    def finish(entry, part, stats):
        if entry["sha256"] == "a":
            a_storing.set()
        return object()

    monkeypatch.setattr(media_fetch, "partial_path", lambda sha: tmp_path / f"{sha}.part")
    monkeypatch.setattr(media_fetch, "download_batch", download_batch)
    monkeypatch.setattr(media_fetch, "finish", finish)
    monkeypatch.setattr(media_fetch, "attach", lambda *a: None)
    monkeypatch.setattr(mirror, "commit", lambda: None)
    monkeypatch.setitem(app.config, "EDGE_MIRROR_PARALLEL", 1)
    plans = {sha: ("http://peer.test", {"sha256": sha, "size": 1}, ["i"]) for sha in "ab"}
    done = []
    mirror._fetch_all(
        ["a", "b"],
        plans,
        mirror.MirrorReport(True),
        lambda: True,
        edge.TokenBucket(200_000),
        None,
        done.append,
    )
    assert seen["batch"] == ["a", "b"] and done == ["a", "b"]
    assert seen["a stored while b arrives"] is True
    assert seen["chunk"] == 200_000 and seen["signer"][0]


def test_a_download_given_a_signer_runs_no_statement(media_app):
    """The download threads stay out of the database: with SQLite a key lookup there
    waited for the main thread's commit of the previous object."""
    from sqlalchemy import event

    from app.extensions import db
    from app.sharing.services import keys

    data = os.urandom(2 * SMALL + 1)
    signer = keys.current_signer()
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        peer = FakePeer(data)
        part = media_fetch.download(
            peer,
            "http://peer.test",
            _entry(data),
            media_fetch.FetchStats(),
            chunk_size=SMALL,
            signer=signer,
        )
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert statements == [] and part.read_bytes() == data
    assert f'keyid="{signer[0]}"' in peer.sent[0].headers["Signature-Input"]


# --- the publisher's side of one media request ------------------------------------------


def test_a_media_request_costs_the_same_statements_whatever_the_catalog_holds(
    app, ctx, people, orgs, publish
):
    """Columns, not entities: a catalog's hand-picked entries are not loaded for each
    object served (the old code selectin-loaded them: one more statement and every
    entry's row per media request); refusals are unchanged."""
    from sqlalchemy import event, select

    from app.catalog.models import Resource
    from app.common.events import commit
    from app.errors import NotFound
    from app.extensions import db
    from app.media.models import MediaAttachment, MediaObject
    from app.sharing.models import RemoteSubscriber
    from app.sharing.services import catalogs, media_serve

    ids = [publish(title=f"京剧 {n}", subject="art") for n in range(12)]
    sha = hashlib.sha256(b"clip").hexdigest()
    resource_id = db.session.execute(
        select(Resource.id).where(Resource.content_id == ids[0])
    ).scalar_one()
    obj = MediaObject(
        backend="file", key=f"sha256/{sha}", size=4, checksum=sha, media_type="video/mp4", meta={}
    )
    db.session.add(obj)
    db.session.flush()
    db.session.add(
        MediaAttachment(resource_id=resource_id, role="primary", object_id=obj.id, filename="a")
    )
    shared = catalogs.create_catalog(
        people.pub_admin, orgs.district.id, {"title": "京剧", "rules": {"subject": ["none"]}}
    )
    catalogs.set_entries(people.pub_admin, shared, [("resource", cid) for cid in ids])
    catalogs.publish_release(people.pub_admin, shared, "")
    db.session.add(
        RemoteSubscriber(
            catalog_id=shared.id,
            origin="http://edge.test",
            request_id="r1",
            district_name="边缘",
            status="active",
        )
    )
    commit()
    media_serve.media_object("http://edge.test", sha)  # the manifest is decoded once
    db.session.expunge_all()

    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        found = media_serve.media_object("http://edge.test", sha)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert (found.key, found.size, found.checksum) == (f"sha256/{sha}", 4, sha)
    # the object's items, the peer's catalogs, the newest release, its withdrawals
    assert len(statements) == 4, statements
    assert not any("catalog_entr" in s for s in statements)
    with pytest.raises(NotFound):
        media_serve.media_object("http://stranger.test", sha)  # not approved
    with pytest.raises(NotFound):
        media_serve.media_object("http://edge.test", hashlib.sha256(b"x").hexdigest())


def test_a_verified_object_is_on_disk_before_its_row_is_recorded(media_app, monkeypatch):
    """The row says "this hash is here", and a hash that is here is never fetched again:
    the bytes must be synced before the rename into storage, the folder after it, and both
    before the row is added."""
    from app.media.storage import local

    data = os.urandom(3 * SMALL)
    entry = _entry(data)
    part = _download(FakePeer(data), entry)
    order = []
    real_replace, real_record = local.durable_replace, media_fetch._record

    def replace(source, target):
        order.append("durable_replace")
        real_replace(source, target)

    def record(*args, **kwargs):
        order.append("record")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(local, "durable_replace", replace)
    monkeypatch.setattr(media_fetch, "_record", record)
    obj = media_fetch.finish(entry, part, media_fetch.FetchStats())
    assert order == ["durable_replace", "record"]
    assert obj.checksum == entry["sha256"] and not part.exists()


# --- 2026-12-01: one commit for what arrived meanwhile, early writeback ---


def test_objects_verified_while_one_is_stored_share_the_next_commit(app, ctx, monkeypatch):
    """b and c are verified while a is being stored: a is committed alone, then b and c
    under one commit (the old loop committed each: 3 commits), each row still after its
    own finish (durable move) and on_object called for each in order."""
    a_storing, bc_verified = threading.Event(), threading.Event()
    order = []

    def download_batch(session, origin, entries, stats, verified, refused, *rest):
        verified(entries[0], "a")
        assert a_storing.wait(timeout=10)
        verified(entries[1], "b")
        verified(entries[2], "c")
        bc_verified.set()

    def finish(entry, part, stats):
        if entry["sha256"] == "a":
            a_storing.set()
            assert bc_verified.wait(timeout=10)
        order.append(f"finish {entry['sha256']}")
        return object()

    monkeypatch.setattr(media_fetch, "download_batch", download_batch)
    monkeypatch.setattr(media_fetch, "finish", finish)
    monkeypatch.setattr(media_fetch, "attach", lambda *a: None)
    monkeypatch.setattr(mirror, "commit", lambda: order.append("commit"))
    monkeypatch.setitem(app.config, "EDGE_MIRROR_PARALLEL", 1)
    plans = {sha: ("http://peer.test", {"sha256": sha, "size": 1}, ["i"]) for sha in "abc"}
    done = []
    mirror._fetch_all(
        list("abc"),
        plans,
        mirror.MirrorReport(True),
        lambda: True,
        edge.TokenBucket(0),
        None,
        lambda sha: (done.append(sha), order.append(f"done {sha}")),
    )
    assert order == [
        "finish a",
        "commit",
        "done a",
        "finish b",
        "finish c",
        "commit",
        "done b",
        "done c",
    ]


def test_writeback_is_started_as_the_bytes_arrive_and_the_file_synced(media_app, monkeypatch):
    """Every WRITEBACK bytes the download asks the kernel to start writing them (ranges
    back to back from the resume point), and a verified single object is fsynced by its
    download before it is handed over; the bytes are unchanged."""
    monkeypatch.setattr(media_fetch, "WRITEBACK", 2 * SMALL)
    ranges, synced = [], []
    real_write_back, real_sync = media_fetch._write_back, media_fetch._sync

    def write_back(out, start, end):
        ranges.append((start, end))
        real_write_back(out, start, end)

    def sync(part):
        synced.append(part.read_bytes())
        real_sync(part)

    monkeypatch.setattr(media_fetch, "_write_back", write_back)
    monkeypatch.setattr(media_fetch, "_sync", sync)
    data = os.urandom(7 * SMALL + 5)
    entry = _entry(data)
    peer = FakePeer(data, cut_at=3 * SMALL)
    with pytest.raises(media_fetch.Interrupted):
        _download(peer, entry)
    assert ranges == [(0, 2 * SMALL)] and synced == []  # nothing synced for a cut file
    held = (media_app / f"{entry['sha256']}.part").stat().st_size
    ranges.clear()
    assert _download(peer, entry).read_bytes() == data
    assert ranges[0] == (held, held + 2 * SMALL)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert ranges[-1][1] <= len(data) and synced == [data]
