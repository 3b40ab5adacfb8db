"""School edge node (issue 13): two real instances — an upstream publisher and an edge
subscriber, each a gunicorn process with its own database and storage — and a counting
proxy in front of the upstream (it tells how many bytes and requests the upstream
served, and can cut a connection).

The edge mirrors the catalog and its media; the upstream is stopped in the middle of a
media object; the edge keeps serving a page, a finished media file, browse and search
from its own data; statements made offline are forwarded when the upstream is back —
through a cut *mid-forward* (the upstream stored the batch, the edge never heard) — and
arrive exactly once; the mirror resumes the cut object with Range and never downloads a
finished object again; a withdrawal upstream shows the "withdrawn" page on the edge.
"""

from __future__ import annotations

import collections
import hashlib
import os
import signal
import threading
import uuid
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.wrappers import Request, Response

from app.accounts import services as accounts
from app.accounts.models import Role
from app.catalog.models import Resource, State
from app.common.events import commit
from app.common.models import utcnow
from app.extensions import db
from app.sharing.models import FederatedItem
from tests.conftest import free_port
from tests.sharing.instances import (
    Instance,
    Proxy,
    api_call,
    approve_remote_request,
    instance_app,
    person,
    publish_art_videos,
    release_databases,
    request_subscription,
    sharing_env,
    wait_until,
)

SIZES = (700_000, 900_000, 500_000)  # three media objects (the second one is cut)
CUT_AFTER = 300_000  # bytes of the second object served before the upstream dies


class CountingProxy(Proxy):
    """Forwards to the upstream; counts media bytes and requests per hash (a batch's body
    split by ``sizes``); ``cut`` = (sha256, n, callback): serve n bytes of that object,
    call back (stops the upstream) and break the connection; ``drop_xapi``: deliver
    statement batches upstream but answer 502, as if the link died before the answer
    came back."""

    def __init__(self, upstream: str, port: int):
        super().__init__(upstream, port)
        self.served: collections.Counter = collections.Counter()
        # (hashes asked for, Range): one hash a request, or several (a batch)
        self.media_requests: list[tuple[list[str], str | None]] = []
        self.sizes: dict[str, int] = {}  # sha → size, to tell a batch's objects apart
        self.cut: tuple[str, int, callable] | None = None
        self.drop_xapi = False
        self.lock = threading.Lock()

    def reset_counts(self):
        with self.lock:
            self.served.clear()
            self.media_requests.clear()

    @Request.application
    def _wsgi(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        try:
            upstream, out_headers = self.forward(request, headers, stream=True)
        except requests.RequestException:
            return Response("upstream unreachable", status=502)
        if request.method == "POST" and request.path.rstrip("/").endswith("/xapi/statements"):
            body = upstream.content
            if self.drop_xapi:
                return Response("link cut before the answer", status=502)
            return Response(body, status=upstream.status_code, headers=out_headers)
        if request.path == "/sharing/federation/media":  # several objects back to back
            hashes = request.args["objects"].split(",")
            segments = [(sha, self.sizes[sha]) for sha in hashes]
        elif "/sharing/federation/media/" in request.path:
            hashes = [request.path.rsplit("/", 1)[1]]
            segments = [(hashes[0], None)]  # the whole body (from its Range)
        else:
            return Response(upstream.content, status=upstream.status_code, headers=out_headers)
        with self.lock:
            self.media_requests.append((hashes, request.headers.get("Range")))

        def stream():
            index, sent = 0, 0  # the object being served, its bytes served so far
            for chunk in upstream.iter_content(32 * 1024):
                while chunk:
                    sha, size = segments[index]
                    room = len(chunk) if size is None else min(len(chunk), size - sent)
                    piece, chunk = chunk[:room], chunk[room:]
                    cut = self.cut
                    if cut and cut[0] == sha and sent + len(piece) >= cut[1]:
                        part = piece[: cut[1] - sent]
                        with self.lock:
                            self.served[sha] += len(part)
                        yield part
                        self.cut = None
                        cut[2]()
                        raise ConnectionAbortedError("upstream died mid-object")
                    with self.lock:
                        self.served[sha] += len(piece)
                    sent += len(piece)
                    yield piece
                    if size is not None and sent == size and index + 1 < len(segments):
                        index, sent = index + 1, 0

        return Response(stream(), status=upstream.status_code, headers=out_headers)


def _media_bytes(index: int, size: int) -> bytes:
    seed = hashlib.sha256(f"media-{index}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def _seed_upstream(app):
    from app.media.models import MediaAttachment, MediaObject
    from app.media.storage import get_storage
    from app.xapi.services import create_client

    items = []

    def attach_media(index, video):
        """The video's primary media object, stored (before it is submitted)."""
        storage = get_storage()
        data = _media_bytes(index, SIZES[index])
        sha = hashlib.sha256(data).hexdigest()
        storage.put_bytes(f"sha256/{sha}", data, "video/mp4")
        media = MediaObject(
            backend=storage.name,
            key=f"sha256/{sha}",
            size=len(data),
            checksum=sha,
            media_type="video/mp4",
            meta={},
        )
        db.session.add(media)
        db.session.flush()
        db.session.add(
            MediaAttachment(
                resource_id=video.id, role="primary", object_id=media.id, filename=f"{index}.mp4"
            )
        )
        items.append({"id": video.content_id, "title": video.title, "sha": sha, "data": data})

    with app.app_context():
        db.create_all()
        made = publish_art_videos(
            ("xa", "雄安新区", "Xiong'an"),
            ("rongcheng", "容城县", "Rongcheng"),
            ("rc1", "容城一中", "Rongcheng No.1"),
            teacher=("t@rc.test", "容城老师"),
            admin=("a@rc.test", "容城管理员"),
            titles=("古诗朗读", "几何作图", "英语听力"),
            catalog_title="容城资源",
            prepare=attach_media,
        )
        lrs, secret = create_client("edge forwarding", made.district, ["all"])
        commit()
        return made.seed(items=items, lrs=(lrs.key, secret))


def _seed_edge(app, upstream_url, upstream_lrs):
    from app.xapi.services import create_client, set_forward_target

    with app.app_context():
        db.create_all()
        region = accounts.ensure_region("xa2", "雄安学校", "Xiong'an schools")
        district = accounts.ensure_district(region, "edge", "容城边缘节点", "Edge")
        school = accounts.ensure_school(district, "e1", "容城小学", "Rongcheng Primary")
        admin = person("a@edge.test", "边缘管理员", Role.DISTRICT_ADMIN, district=district)
        student = person("s@edge.test", "学生", Role.STUDENT, school=school)
        _, admin_token = accounts.issue_token(admin, "test")
        _, student_token = accounts.issue_token(student, "test")
        lrs, secret = create_client("classroom", district, ["all"])
        set_forward_target(district, upstream_url + "/xapi/", *upstream_lrs)
        commit()
        return {
            "district_id": district.id,
            "token": admin_token,
            "student": student_token,
            "lrs": (lrs.key, secret),
        }


@pytest.fixture
def edge_setup(backend, tmp_path):
    up_port, proxy_port, edge_port = free_port(), free_port(), free_port()
    proxy_url, edge_url = f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{edge_port}"
    up_db, drop_up, app_up = instance_app(backend, tmp_path, "up", proxy_url, edge_url)
    edge_db, drop_edge, app_edge = instance_app(
        backend,
        tmp_path,
        "edge",
        edge_url,
        proxy_url,
        EDGE_UPSTREAM=proxy_url,
        EDGE_MIRROR_WINDOW="22:00-06:00",
    )
    up_seed = _seed_upstream(app_up)
    edge_seed = _seed_edge(app_edge, proxy_url, up_seed["lrs"])
    upstream = Instance("up", up_db, tmp_path / "up", up_port, sharing_env(proxy_url, edge_url))
    edge_env = sharing_env(edge_url, proxy_url, SHUYUAN_EDGE_UPSTREAM=proxy_url)
    edge = Instance("edge", edge_db, tmp_path / "edge", edge_port, edge_env)
    proxy = CountingProxy(upstream.url, proxy_port)
    try:
        _together(upstream.start, edge.start)  # both boot at once: half the wait
        proxy.start()
        yield type(
            "EdgeSetup",
            (),
            {
                "up": upstream,
                "edge": edge,
                "proxy": proxy,
                "app_up": app_up,
                "app_edge": app_edge,
                "up_seed": up_seed,
                "edge_seed": edge_seed,
                "folder": tmp_path,
            },
        )
    finally:
        proxy.stop()
        _together(upstream.stop, edge.stop)
        release_databases((app_up, app_edge), (drop_up, drop_edge))


def _together(*calls) -> None:
    """Run the calls in threads and wait for all; the first error is raised."""
    errors: list[BaseException] = []

    def run(call):
        try:
            call()
        except BaseException as exc:  # noqa: BLE001  (re-raised below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _quick_stop(instance: Instance) -> None:
    """Kill the upstream now (gunicorn's quick shutdown: workers exit at once)."""
    if instance.process and instance.process.poll() is None:
        instance.process.send_signal(signal.SIGQUIT)
        instance.process.wait(timeout=30)


def _statement(n: int) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "mbox": f"mailto:student{n}@edge.test"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en": "completed"}},
        "object": {"objectType": "Activity", "id": f"https://edge.test/activity/{n}"},
    }


def _media_of(s, content_id) -> bytes:
    """The item's primary media as the edge serves it to a student."""
    from app.media.models import MediaAttachment

    with s.app_edge.app_context():
        attachment = db.session.execute(
            select(MediaAttachment.public_id)
            .join(Resource, Resource.id == MediaAttachment.resource_id)
            .where(Resource.content_id == content_id)
        ).scalar_one()
    response = api_call("GET", f"{s.edge.url}/media/a/{attachment}", s.edge_seed["student"])
    assert response.status_code == 200, response.text[:300]
    return response.content


def _mirror(s, **kw):
    from app.sharing.services import mirror

    with s.app_edge.app_context():
        report = mirror.mirror(force=True, forward=False, **kw)
        db.session.remove()
        return report


def test_edge_mirrors_survives_a_cut_upstream_resumes_and_forwards_exactly_once(edge_setup):
    s = edge_setup
    # The mirror fetches in content id order: items[1] is the second object it asks for.
    items = sorted(s.up_seed["items"], key=lambda i: i["id"])
    ids = [i["id"] for i in items]
    sizes = [len(i["data"]) for i in items]

    # The edge's district subscribes (auto-accept), the publishing district approves.
    made = request_subscription(
        s.edge,
        s.edge_seed["token"],
        s.edge_seed["district_id"],
        s.proxy.url,
        s.up_seed["uid"],
        auto_accept=True,
    )
    assert made.status_code == 201, made.text

    def remote_requests():
        return api_call(
            "GET",
            f"{s.up.url}/api/v1/sharing/catalogs/{s.up_seed['catalog_id']}/remote-requests",
            s.up_seed["token"],
        ).json()

    # The request may travel in a background job: wait until the publisher has it.
    [remote] = wait_until(remote_requests, 60, "the subscription request upstream")
    assert approve_remote_request(s.up, s.up_seed["token"], remote["id"]).status_code == 200

    # Outside its window the scheduled job does nothing.
    from app.sharing.services import mirror

    with s.app_edge.app_context():
        noon = utcnow().replace(hour=12, minute=0)
        assert mirror.mirror(now=noon).ran is False

    # First mirror, one object at a time so the cut lands in a known object: the
    # upstream dies after CUT_AFTER bytes of the second one.
    # One connection: the three objects are asked for in one request (a batch).
    s.app_edge.config["EDGE_MIRROR_PARALLEL"] = 1
    s.proxy.sizes = {item["sha"]: len(item["data"]) for item in items}
    s.proxy.cut = (items[1]["sha"], CUT_AFTER, lambda: _quick_stop(s.up))
    report = _mirror(s)
    assert s.proxy.media_requests == [([item["sha"] for item in items], None)]
    assert report.ran and report.errors, report
    assert any("cut after" in e for e in report.errors), report.errors
    assert report.media.fetched == 1 and report.media.bytes >= sizes[0]
    assert s.up.process.poll() is not None  # the upstream really is down
    partial = s.folder / "edge" / "sharing-partial" / f"{items[1]['sha']}.part"
    held = partial.stat().st_size
    assert 0 < held <= CUT_AFTER

    # The edge keeps serving students from its own data: pages, browse, search, media.
    student = s.edge_seed["student"]
    page = api_call("GET", f"{s.edge.url}/resources/{ids[0]}", student)
    assert page.status_code == 200 and items[0]["title"] in page.text
    assert "容城县" in page.text  # marked with its source
    browse = api_call("GET", f"{s.edge.url}/resources", student)
    assert all(i["title"] in browse.text for i in items)
    found = api_call("GET", f"{s.edge.url}/search", student, params={"q": items[2]["title"]})
    assert found.status_code == 200 and ids[2] in found.text
    assert _media_of(s, ids[0]) == items[0]["data"]
    # Another run while the link is down fails softly and keeps the partial file.
    again = _mirror(s)
    assert again.errors and partial.stat().st_size == held

    # Statements made on the edge while the upstream is down wait in the outbox.
    statements = [_statement(n) for n in range(3)]
    key, secret = s.edge_seed["lrs"]
    posted = requests.post(
        f"{s.edge.url}/xapi/statements",
        json=statements,
        auth=(key, secret),
        headers={"X-Experience-API-Version": "1.0.3"},
        timeout=60,
    )
    assert posted.status_code == 200, posted.text
    from app.xapi.models import OutboxEntry
    from app.xapi.models import Statement as XStatement
    from app.xapi.services.forwarding import forward_due

    def outbox():
        with s.app_edge.app_context():
            rows = db.session.execute(select(OutboxEntry.attempts)).scalars().all()
            db.session.remove()
            return rows

    with s.app_edge.app_context():
        forward_due()
        commit()
    wait_until(lambda: len(outbox()) == 3 and min(outbox()) >= 1, 60, "a failed forward")

    # The upstream returns.  The first forward is cut after the upstream stored the
    # batch (the edge gets no answer) and the second sends it again: stored once.
    s.up.start()
    s.proxy.drop_xapi = True
    with s.app_edge.app_context():
        assert forward_due(now=utcnow() + timedelta(hours=2))["failed"] == 3
        commit()
    s.proxy.drop_xapi = False
    with s.app_edge.app_context():
        assert forward_due(now=utcnow() + timedelta(hours=4))["sent"] == 3
        commit()
    assert outbox() == []
    with s.app_up.app_context():
        stored = db.session.execute(
            select(XStatement.statement_id, func.count())
            .where(XStatement.statement_id.in_([st["id"] for st in statements]))
            .group_by(XStatement.statement_id)
        ).all()
        db.session.remove()
    assert sorted(stored) == sorted((st["id"], 1) for st in statements)

    # Resume (objects fetched in parallel now): the finished object is not asked for
    # again, the cut one continues from the bytes already here, the third comes in full.
    s.app_edge.config["EDGE_MIRROR_PARALLEL"] = 3
    s.proxy.reset_counts()
    report = _mirror(s)
    assert report.complete, report.errors
    assert report.media.reused == 1 and report.media.fetched == 2 and report.media.resumed == 1
    requested = {sha: rng for hashes, rng in s.proxy.media_requests for sha in hashes}
    assert items[0]["sha"] not in requested
    assert requested[items[1]["sha"]] == f"bytes={held}-"
    assert s.proxy.served[items[1]["sha"]] == sizes[1] - held
    assert s.proxy.served[items[2]["sha"]] == sizes[2]
    assert sum(s.proxy.served.values()) == report.media.bytes
    assert not partial.exists()
    for item in items:
        assert _media_of(s, item["id"]) == item["data"]

    # A third run fetches nothing at all.
    s.proxy.reset_counts()
    report = _mirror(s)
    assert report.complete and report.media.reused == 3 and s.proxy.media_requests == []

    # The publisher withdraws an item: the edge's link shows the withdrawn page.
    withdrawn = api_call(
        "POST",
        f"{s.up.url}/api/v1/sharing/catalogs/{s.up_seed['catalog_id']}/withdrawals",
        s.up_seed["token"],
        json={"content_id": ids[2], "reason": "版权到期"},
    )
    assert withdrawn.status_code == 201, withdrawn.text
    assert _mirror(s).complete
    gone = api_call("GET", f"{s.edge.url}/resources/{ids[2]}", student)
    assert gone.status_code == 410 and items[2]["title"] in gone.text
    assert items[2]["title"] not in api_call("GET", f"{s.edge.url}/resources", student).text
    with s.app_edge.app_context():
        fed = db.session.get(FederatedItem, ids[2])
        assert fed.withdrawn_at is not None
        row = db.session.execute(select(Resource).filter_by(content_id=ids[2])).scalar_one()
        assert row.state == State.ARCHIVED
    assert os.path.exists(s.edge.log_path)
