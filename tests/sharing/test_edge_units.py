"""Edge node pieces in one process: the mirror window and the bandwidth bucket (with a
fake clock, no waiting), hostile media (hash mismatch, traversal names, oversize, more
bytes than listed, a wrong range), resumption from a partial file, and remote items
materialised as local rows — visible in browse, search and the LTI picker with their
source, updated by a newer release, gone with the "withdrawn" page when withdrawn."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import datetime, time
from types import SimpleNamespace

import pytest
import requests
from requests.structures import CaseInsensitiveDict
from sqlalchemy import select

from app.catalog.models import Resource, State
from app.common.events import commit
from app.extensions import db
from app.sharing.models import FederatedItem, RemoteRelease, Subscription, SubscriptionStatus
from app.sharing.services import edge, federation, keys, media_fetch, subscriptions
from app.sharing.services import manifest as manifests

# --- window and bandwidth ---------------------------------------------------------------


def test_window_past_midnight_plain_and_empty():
    night = edge.parse_window("22:00-06:00")
    assert str(night) == "22:00-06:00"
    assert night.contains(time(22, 0)) and night.contains(time(23, 59))
    assert night.contains(time(0, 0)) and night.contains(time(5, 59))
    assert not night.contains(time(6, 0)) and not night.contains(time(12, 0))
    assert not night.contains(time(21, 59))
    day = edge.parse_window(" 8:30 - 17:00 ")
    assert day.contains(datetime(2026, 11, 30, 8, 30)) and not day.contains(time(17, 0))
    assert edge.parse_window("") is None and edge.parse_window(None) is None
    assert edge.in_window(None, datetime(2026, 1, 1, 12))
    assert edge.parse_window("00:00-00:00").contains(time(13, 7))


@pytest.mark.parametrize("text", ["22-06", "25:00-06:00", "22:00-06:60", "abc", "22:00"])
def test_window_refuses_what_it_cannot_read(text):
    with pytest.raises(edge.BadWindow):
        edge.parse_window(text)


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_token_bucket_holds_the_average_rate():
    clock = FakeClock()
    bucket = edge.TokenBucket(1000, clock=clock, sleep=clock.sleep)
    bucket.consume(1000)  # a full bucket: the first second's worth goes at once
    assert clock.sleeps == []
    bucket.consume(500)
    assert clock.sleeps == [pytest.approx(0.5)]
    clock.now += 10  # idle time refills only up to the capacity
    bucket.consume(3500)
    # 1000 at once, then 2500 more at 1000 bytes/s.
    assert sum(clock.sleeps) == pytest.approx(0.5 + 2.5)
    # Beyond what the bucket held (the first full bucket and the one refilled while
    # idle), 3000 bytes took 3 s of clock: exactly the rate.
    assert (5000 - 2 * 1000) / (clock.now - 100.0 - 10) == pytest.approx(1000)


def test_token_bucket_zero_rate_is_unlimited():
    clock = FakeClock()
    bucket = edge.TokenBucket(0, clock=clock, sleep=clock.sleep)
    bucket.consume(10**9)
    assert clock.sleeps == []
    with pytest.raises(ValueError):
        edge.TokenBucket(-1)


def test_scheduler_lists_the_mirror_only_on_an_edge_node(app):
    from app.ops import scheduler

    names = {job.name for job in scheduler.periodic_jobs(app.config)}
    assert "sharing-mirror" not in names
    edge_config = dict(app.config, EDGE_UPSTREAM="http://upstream.test")
    jobs = {job.name: job for job in scheduler.periodic_jobs(edge_config)}
    assert jobs["sharing-mirror"].path == "app.sharing.services.mirror:mirror_job"


def test_mirror_job_is_a_no_op_off_an_edge_and_outside_its_window(app, ctx):
    from app.sharing.services import mirror

    assert mirror.mirror_job()["ran"] is False
    app.config.update(EDGE_UPSTREAM="http://upstream.test", EDGE_MIRROR_WINDOW="22:00-06:00")
    try:
        report = mirror.mirror(now=datetime(2026, 11, 30, 12, 0))
        assert report.ran is False and "22:00-06:00" in report.reason
    finally:
        app.config.update(EDGE_UPSTREAM=None, EDGE_MIRROR_WINDOW="")


# --- hostile media ----------------------------------------------------------------------


def _entry(data: bytes, **extra) -> dict:
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "media_type": "video/mp4",
        "filename": "lesson.mp4",
        "role": "primary",
    } | extra


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"filename": "../../etc/passwd"}, "unsafe file name"),
        ({"filename": "a/b.mp4"}, "unsafe file name"),
        ({"filename": "..\\x.mp4"}, "unsafe file name"),
        ({"filename": ".."}, "unsafe file name"),
        ({"filename": "bad\x00name"}, "unsafe file name"),
        ({"filename": ""}, "unsafe file name"),
        ({"size": 10**12}, "larger than"),
        ({"size": -1}, "not a number"),
        ({"size": True}, "not a number"),
        ({"sha256": "../" + "a" * 61}, "not a SHA-256"),
        ({"sha256": "A" * 64}, "not a SHA-256"),
        ({"media_type": "text/html; x"}, "bad media type"),
        ({"role": "../x"}, "bad media role"),
        ({"extra": 1}, "unknown or missing"),
    ],
)
def test_hostile_media_entries_are_refused(change, reason):
    problem = media_fetch.check_entry(_entry(b"x") | change, max_bytes=10**6)
    assert problem and reason in problem


def test_media_index_naming_another_origin_or_with_a_bad_entry_is_refused():
    good = {"origin": "http://peer.test", "catalog": "c1", "items": {"i1": [_entry(b"x")]}}
    assert media_fetch.check_index(good, "http://peer.test", "c1", 10) == good["items"]
    with pytest.raises(media_fetch.MediaRefused, match="another origin"):
        media_fetch.check_index(good, "http://other.test", "c1", 10)
    bad = good | {"items": {"i1": [_entry(b"x", filename="../x")]}}
    with pytest.raises(media_fetch.MediaRefused, match="unsafe file name"):
        media_fetch.check_index(bad, "http://peer.test", "c1", 10)
    with pytest.raises(media_fetch.MediaRefused, match="bad media index item"):
        media_fetch.check_index(good | {"items": {"../x": []}}, "http://peer.test", "c1", 10)


class _Cut(io.RawIOBase):
    """A body that breaks after ``n`` bytes, like a connection that died."""

    def __init__(self, data: bytes, n: int):
        self.data, self.n, self.pos = data, n, 0

    def readable(self):
        return True

    def read(self, size=-1):
        if self.pos >= self.n:
            raise ConnectionResetError("link lost")
        chunk = self.data[self.pos : min(self.n, self.pos + (size if size > 0 else self.n))]
        self.pos += len(chunk)
        return chunk


class FakePeer:
    """A ``requests.Session`` stand-in serving one object (honouring Range)."""

    def __init__(self, body: bytes, cut_at: int | None = None, ignore_range=False):
        self.body, self.cut_at, self.ignore_range = body, cut_at, ignore_range
        self.sent: list = []

    def send(self, prepared, **kw):
        self.sent.append(prepared)
        assert "Signature" in prepared.headers  # every media request is signed
        start = 0
        response = requests.Response()
        response.headers = CaseInsensitiveDict()
        asked = prepared.headers.get("Range")
        if asked and not self.ignore_range:
            start = int(asked.split("=")[1].rstrip("-"))
            response.status_code = 206
            response.headers["Content-Range"] = f"bytes {start}-{len(self.body) - 1}/*"
        else:
            response.status_code = 200
        rest = self.body[start:]
        response.raw = _Cut(rest, self.cut_at) if self.cut_at is not None else io.BytesIO(rest)
        self.cut_at = None  # only the first response is cut
        return response


@pytest.fixture
def media_app(app, ctx, tmp_path):
    keys.ensure_key()
    old = app.config["SHARING_PARTIAL_DIR"]
    app.config["SHARING_PARTIAL_DIR"] = str(tmp_path / "partial")
    yield tmp_path / "partial"
    app.config["SHARING_PARTIAL_DIR"] = old


def _stored(sha: str):
    from app.media.models import MediaObject
    from app.media.storage import get_storage

    row = db.session.execute(select(MediaObject).filter_by(checksum=sha)).scalar_one_or_none()
    return row, get_storage().stat(media_fetch.MEDIA_PREFIX + sha)


def test_hash_mismatch_is_refused_and_nothing_is_kept(media_app):
    data = uuid.uuid4().bytes * 1000
    entry = _entry(data)
    # Same size, one byte changed (a bit flipped: replacing it with b"X" left the data
    # unchanged whenever the random last byte was already "X", one run in 256).
    peer = FakePeer(data[:-1] + bytes([data[-1] ^ 0x01]))
    stats = media_fetch.FetchStats()
    with pytest.raises(media_fetch.MediaRefused, match="hash mismatch"):
        media_fetch.fetch_object(peer, "http://peer.test", entry, stats)
    assert _stored(entry["sha256"]) == (None, None)
    assert not (media_app / f"{entry['sha256']}.part").exists()


def test_more_bytes_than_listed_is_refused(media_app):
    data = uuid.uuid4().bytes * 1000
    entry = _entry(data)
    peer = FakePeer(data + b"and then some more")
    with pytest.raises(media_fetch.MediaRefused, match="more bytes than listed"):
        media_fetch.fetch_object(peer, "http://peer.test", entry, media_fetch.FetchStats())
    assert _stored(entry["sha256"]) == (None, None)
    assert not (media_app / f"{entry['sha256']}.part").exists()


def test_cut_download_keeps_its_part_and_resumes_with_range(media_app):
    data = uuid.uuid4().bytes * 40_000  # 640 kB
    entry = _entry(data)
    peer = FakePeer(data, cut_at=300_000)
    stats = media_fetch.FetchStats()
    with pytest.raises(media_fetch.Interrupted):
        media_fetch.fetch_object(peer, "http://peer.test", entry, stats)
    part = media_app / f"{entry['sha256']}.part"
    held = part.stat().st_size
    assert 0 < held <= 300_000 and _stored(entry["sha256"]) == (None, None)
    obj = media_fetch.fetch_object(peer, "http://peer.test", entry, stats)
    assert peer.sent[-1].headers["Range"] == f"bytes={held}-"
    assert stats.resumed == 1 and stats.bytes == len(data)  # no byte fetched twice
    assert obj.checksum == entry["sha256"] and not part.exists()
    from app.media.storage import get_storage

    assert b"".join(get_storage().iter_chunks(obj.key)) == data
    # A finished object is never fetched again.
    again = FakePeer(b"")
    assert media_fetch.fetch_object(again, "http://peer.test", entry, stats).id == obj.id
    assert again.sent == [] and stats.reused == 1


def test_a_peer_ignoring_range_restarts_cleanly(media_app):
    data = uuid.uuid4().bytes * 10_000
    entry = _entry(data)
    part = media_app / f"{entry['sha256']}.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(data[:5000])
    peer = FakePeer(data, ignore_range=True)
    obj = media_fetch.fetch_object(peer, "http://peer.test", entry, media_fetch.FetchStats())
    assert obj.size == len(data) and not part.exists()


def test_a_damaged_partial_file_ends_in_a_refusal_not_a_bad_object(media_app):
    data = uuid.uuid4().bytes * 10_000
    entry = _entry(data)
    part = media_app / f"{entry['sha256']}.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"\0" * 5000)  # garbage where the first bytes should be
    with pytest.raises(media_fetch.MediaRefused, match="hash mismatch"):
        media_fetch.fetch_object(
            FakePeer(data), "http://peer.test", entry, media_fetch.FetchStats()
        )
    assert not part.exists() and _stored(entry["sha256"]) == (None, None)
    # The next run starts from nothing and succeeds.
    obj = media_fetch.fetch_object(
        FakePeer(data), "http://peer.test", entry, media_fetch.FetchStats()
    )
    assert obj.checksum == entry["sha256"]


def test_unsigned_media_requests_are_refused(client):
    assert client.get("/sharing/federation/media/" + "a" * 64).status_code == 403
    assert client.get("/sharing/federation/catalogs/x/media").status_code == 403


# --- remote items as local rows ----------------------------------------------------------


def _fields(title, **extra):
    return {
        "title": title,
        "summary": "摘要",
        "kind": "video",
        "subject": "math",
        "grades": ["g7"],
        "edition": "",
        "tags": ["方程"],
        "licence": "CC-BY-4.0",
        "language": "zh",
        "unit": "",
        "publisher": "天津市 · 河西区",
        "url": "/resources/x",
    } | extra


def _release(sub, number, items: dict):
    manifest = {
        cid: {"type": "resource", "version": v, "digest": manifests.digest_of(f), "fields": f}
        for cid, (v, f) in items.items()
    }
    db.session.add(
        RemoteRelease(
            subscription_id=sub.id,
            number=number,
            manifest=manifest,
            digest=manifests.digest_of(manifest),
        )
    )
    commit()


def test_remote_items_become_local_rows_with_their_source(api, people, orgs, client, token_for):
    sub = Subscription(
        subscriber_district_id=orgs.review_district.id,
        remote_origin="http://peer.test",
        remote_catalog_uid=str(uuid.uuid4()),
        remote_title="河西拓展课",
        status=SubscriptionStatus.ACTIVE,
        requested_by_id=people.sub_admin.id,
    )
    db.session.add(sub)
    commit()
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    _release(sub, 1, {first: (1, _fields("一元一次方程")), second: (1, _fields("移项"))})
    subscriptions.accept(people.sub_admin, sub, 1)
    commit()

    teacher = people.sub_teacher
    listed = api.get("/api/v1/resources?per_page=100", teacher).json["items"]
    assert {first, second} <= {item["id"] for item in listed}
    # The publisher district's own people do not get the subscriber's copies.
    assert first not in {i["id"] for i in api.get("/api/v1/resources", people.author).json["items"]}
    hits = api.get("/api/v1/search?q=一元一次方程", teacher).json["items"]
    assert first in {hit["content_id"] for hit in hits}
    page = client.get(f"/resources/{first}", headers=token_for(teacher))
    assert page.status_code == 200 and "天津市 · 河西区" in page.get_data(as_text=True)
    browse = client.get("/resources", headers=token_for(teacher)).get_data(as_text=True)
    assert "天津市 · 河西区" in browse

    # The LTI picker of the subscribing district's LMS offers them.
    from app.lti.services import deeplinking

    picker = deeplinking.search_content(
        SimpleNamespace(
            user=teacher,
            deployment=SimpleNamespace(
                district_id=orgs.review_district.id, school_id=orgs.review_school.id
            ),
        ),
        None,
    )
    assert first in {p.content_id for p in picker}

    # A newer release changes one item: accepted, the local row follows.
    _release(sub, 2, {first: (2, _fields("一元一次方程（新版）")), second: (1, _fields("移项"))})
    subscriptions.accept(people.sub_admin, sub, 2)
    commit()
    row = db.session.execute(select(Resource).filter_by(content_id=first)).scalar_one()
    assert row.title == "一元一次方程（新版）" and row.version == 2
    assert db.session.get(FederatedItem, first).version == 2

    # Withdrawn by its publisher (learnt at a sync): gone from lists, links and LTI say so.
    federation._apply_withdrawals(sub, [second])
    commit()
    assert second not in {i["id"] for i in api.get("/api/v1/resources", teacher).json["items"]}
    link = client.get(f"/resources/{second}", headers=token_for(teacher))
    assert link.status_code == 302 and f"/sharing/withdrawn/{second}" in link.headers["Location"]
    notice = client.get(f"/sharing/withdrawn/{second}")
    assert notice.status_code == 410 and "移项" in notice.get_data(as_text=True)
    from app.lti.errors import LaunchRefused
    from app.lti.services import launch

    with pytest.raises(LaunchRefused) as refused:
        launch._visible(
            teacher, SimpleNamespace(district_id=None, school_id=None), Resource, second
        )
    assert refused.value.code == "lti_withdrawn"

    # A release without an item removes it from the subscriber once accepted.
    _release(sub, 3, {second: (1, _fields("移项"))})
    subscriptions.accept(people.sub_admin, sub, 3)
    commit()
    row = db.session.execute(select(Resource).filter_by(content_id=first)).scalar_one()
    assert row.state == State.ARCHIVED


def test_items_accepted_inside_a_savepoint_are_searchable(api, people, orgs):
    """A sync auto-accepts inside a savepoint; the signals it queues must still reach
    the search index at the outer commit (on PostgreSQL they run inside the commit)."""
    from app.common.transaction import savepoint

    sub = Subscription(
        subscriber_district_id=orgs.review_district.id,
        remote_origin="http://peer.test",
        remote_catalog_uid=str(uuid.uuid4()),
        status=SubscriptionStatus.ACTIVE,
        requested_by_id=people.sub_admin.id,
    )
    db.session.add(sub)
    commit()
    content_id = str(uuid.uuid4())
    _release(sub, 1, {content_id: (1, _fields("几何作图"))})
    with savepoint():
        subscriptions.accept(None, sub, 1, None, _system=True)
    commit()
    hits = api.get("/api/v1/search?q=几何作图", people.sub_teacher).json["items"]
    assert content_id in {hit["content_id"] for hit in hits}


def test_mirror_command_reports_what_it_did(app, ctx):
    result = app.test_cli_runner().invoke(args=["sharing", "mirror", "--force", "--no-forward"])
    assert result.exit_code == 0, result.output
    assert "synced 0 subscription(s); media 0 fetched" in result.output
    app.config["EDGE_MIRROR_WINDOW"] = "bad"
    try:
        refused = app.test_cli_runner().invoke(args=["sharing", "mirror"])
        assert refused.exit_code == 1 and "HH:MM-HH:MM" in refused.output
    finally:
        app.config["EDGE_MIRROR_WINDOW"] = ""
