"""Sharing benchmark.

1. **Diff of two 10,000-item releases** (target < 2 s): the pure diff, and the whole
   "pending release" path a subscriber's page takes (load her 10,000 accepted items and
   the release manifest from the database, diff), beside a bare baseline (a dict
   comparison that only finds *which* ids differ, no field-level detail).
2. **Sync of a 10,000-item release between two instances** (target < 60 s, no media):
   two gunicorn instances, each with its own database; subscriber asks, publisher
   approves, then the timed part: signed paged feed fetched, every page's signature and
   every item's hash checked, stored; then accepting all 10,000.  Baseline: the same
   pages' bytes downloaded from a bare WSGI server without signatures or checks.

3. **Mirror throughput** (edge node, target >= 0.8x): the mirror fetching N media objects
   from an upstream instance (signed index and requests, SHA-256 of every byte, partial
   file, move into storage, a media row per object) vs a plain HTTP download of the same
   objects to files, over as many connections and with the same read size, from a bare
   WSGI app under the same gunicorn settings, alternating runs in one process; beside it
   a second baseline, the *floor*: the same download plus SHA-256 of every byte and an
   fsync of each file (what verification and durability cost at the least), so a ratio
   to plain that no verified, durable mirror could reach on the machine shows; plus one
   run under a bandwidth limit.  ``--mirror`` (``--objects``,
   ``--object-mb``); also ``table_rows(full)`` for ``python -m bench``.

    .venv/bin/python bench/sharing.py            # SQLite
    .venv/bin/python bench/sharing.py --postgres # throwaway PostgreSQL databases
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402
from werkzeug.wrappers import Request, Response  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from bench.common import (  # noqa: E402
    Gunicorn,
    free_port,
    gunicorn_command,
    load_average,
    machine_description,
    throwaway_postgres,
)


def synthetic_manifest(n: int, seed: int = 0, publisher: str = "河西区") -> dict:
    from app.sharing.services.manifest import digest_of

    manifest = {}
    for i in range(n):
        fields = {
            "title": f"资源 {i}",
            "summary": "七年级数学练习与讲解" * 3,
            "kind": "video",
            "subject": "math",
            "grades": ["g7"],
            "edition": "",
            "tags": ["方程", "练习"],
            "licence": "CC-BY-4.0",
            "language": "zh",
            "unit": f"第{i % 20}单元",
            "publisher": publisher,
            "url": f"/resources/r{i:08d}",
        }
        manifest[f"r{i:08d}-{seed:04d}"[:36] if seed else f"r{i:08d}"] = {
            "type": "resource",
            "version": 1,
            "digest": digest_of(fields),
            "fields": fields,
        }
    return manifest


def next_release(old: dict) -> dict:
    """5% re-titled, 2% re-licensed, 2% moved, 1% removed, 1% added."""
    from app.sharing.services.manifest import digest_of

    new = {}
    ids = sorted(old)
    for n, cid in enumerate(ids):
        if n % 100 == 99:
            continue  # removed
        entry = {"type": "resource", "version": 1, "fields": dict(old[cid]["fields"])}
        changed = False
        if n % 20 == 0:
            entry["fields"]["title"] += "（修订）"
            changed = True
        if n % 50 == 1:
            entry["fields"]["licence"] = "CC-BY-NC-4.0"
            changed = True
        if n % 50 == 2:
            entry["fields"]["unit"] = "第99单元"
            changed = True
        entry["version"] = 2 if changed else 1
        entry["digest"] = digest_of(entry["fields"])
        new[cid] = entry
    extra = synthetic_manifest(len(old) // 100, seed=7)
    new.update(extra)
    return new


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bench_diff(database_url: str, n: int) -> dict:
    """Times in seconds: ``bare``, ``pure``, ``pending`` (the page's path), ``accept``."""
    from app.accounts import services as accounts
    from app.accounts.models import Role
    from app.sharing.models import Release, SharedCatalog, SubscribedItem, Subscription
    from app.sharing.services import diff as diffs
    from app.sharing.services import subscriptions

    old = synthetic_manifest(n)
    new = next_release(old)
    bare, _ = timed(lambda: {k for k in new if new[k] != old.get(k)} | (old.keys() - new.keys()))
    pure, result = timed(lambda: diffs.diff(old, new))
    print(f"diff {n} → {len(new)} items: {result.counts()}")
    print(f"  bare dict comparison (ids only)       {bare * 1000:8.1f} ms")
    print(f"  field-level diff (pure)               {pure * 1000:8.1f} ms")

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": database_url,
                "SECRET_KEY": "bench",
                "INSTANCE_PATH": folder,
                "PLUGINS": None,
            }
        )
        with app.app_context():
            db.create_all()
            region = accounts.ensure_region("b", "测试", "Bench")
            pub = accounts.ensure_district(region, "p", "发布区", "Pub")
            sub_d = accounts.ensure_district(region, "s", "订阅区", "Sub")
            admin = accounts.create_user("a@b.test", "admin", None, district=sub_d)
            accounts.assign_role(admin, Role.DISTRICT_ADMIN, district=sub_d)
            catalog = SharedCatalog(district_id=pub.id, title="bench")
            db.session.add(catalog)
            db.session.flush()
            for number, manifest in ((1, old), (2, new)):
                db.session.add(
                    Release(
                        catalog_id=catalog.id,
                        number=number,
                        notes="",
                        manifest=manifest,
                        digest=str(number) * 64,
                        item_count=len(manifest),
                    )
                )
            sub = Subscription(
                subscriber_district_id=sub_d.id,
                catalog_id=catalog.id,
                status="active",
                accepted_number=1,
            )
            db.session.add(sub)
            db.session.flush()
            db.session.execute(
                insert(SubscribedItem),
                [
                    {
                        "subscription_id": sub.id,
                        "content_id": cid,
                        "item_type": "resource",
                        "version": e["version"],
                        "digest": e["digest"],
                        "fields": e["fields"],
                        "withdrawn": False,
                    }
                    for cid, e in old.items()
                ],
            )
            db.session.commit()
            service, pending = timed(lambda: subscriptions.pending(admin, sub), repeat=3)
            print(
                f"  pending release from the database     {service * 1000:8.1f} ms "
                f"({pending.diff.counts()['changed']} changed)"
            )
            accept_time, _ = timed(
                lambda: (subscriptions.accept(admin, sub, 2), db.session.rollback()), repeat=1
            )
            print(f"  accept all (write {len(new)} rows, rolled back) {accept_time * 1000:8.1f} ms")
            db.session.remove()
            db.engine.dispose()
    return {"bare": bare, "pure": pure, "pending": service, "accept": accept_time}


def seed_district_admin(region: tuple, district: tuple, email: str):
    """A district (``district``: code, Chinese and English name) of a region (``region``,
    likewise) and its administrator ``email`` (run in the app's context; not committed)."""
    from app.accounts import services as accounts
    from app.accounts.models import Role

    made = accounts.ensure_district(accounts.ensure_region(*region), *district)
    admin = accounts.create_user(email, "admin", None, district=made)
    accounts.assign_role(admin, Role.DISTRICT_ADMIN, district=made)
    return made, admin


def seed_publisher(manifest: dict, notes: str = "bench"):
    """Tianjin's Hexi district with a shared catalog whose release 1 is ``manifest``: the
    upstream end of a sync (run in the publisher's app context; flushed, not committed)."""
    from app.accounts import services as accounts
    from app.sharing.models import Release, SharedCatalog
    from app.sharing.services.manifest import digest_of

    region = accounts.ensure_region("tj", "天津", "Tianjin")
    hexi = accounts.ensure_district(region, "hexi", "河西区", "Hexi")
    catalog = SharedCatalog(district_id=hexi.id, title="bench")
    db.session.add(catalog)
    db.session.flush()
    db.session.add(
        Release(
            catalog_id=catalog.id,
            number=1,
            notes=notes,
            manifest=manifest,
            digest=digest_of(manifest),
            item_count=len(manifest),
        )
    )
    db.session.flush()
    return catalog


def bench_sync(make_db, n: int) -> dict:
    """Times in seconds: ``bare`` download, ``sync`` (signed, checked, stored), ``accept``."""
    from app.accounts import services as accounts
    from app.sharing.models import RemoteSubscriber

    manifest = synthetic_manifest(n)
    with make_db() as a_db, make_db() as b_db, tempfile.TemporaryDirectory() as folder:
        a = Gunicorn(a_db, instance_path=f"{folder}/a")
        b = Gunicorn(b_db, instance_path=f"{folder}/b")
        Path(f"{folder}/a").mkdir()
        Path(f"{folder}/b").mkdir()
        for server, own, peer in ((a, a.base_url, b.base_url), (b, b.base_url, a.base_url)):
            # Threads: while a worker waits on the peer, the peer reads our well-known keys.
            server.env |= {
                "SHUYUAN_SHARING_ORIGIN": own,
                "SHUYUAN_SHARING_PEERS": peer,
                "GUNICORN_CMD_ARGS": "--threads 4",
            }
        apps = {}
        for name, url in (("a", a_db), ("b", b_db)):
            apps[name] = create_app(
                {
                    "SQLALCHEMY_DATABASE_URI": url,
                    "SECRET_KEY": "bench",
                    "INSTANCE_PATH": f"{folder}/{name}",
                    "PLUGINS": None,
                }
            )
            with apps[name].app_context():
                db.create_all()
        with apps["a"].app_context():
            catalog = seed_publisher(manifest)
            uid, catalog_id = catalog.uid, catalog.id
            db.session.commit()
        with apps["b"].app_context():
            district, admin = seed_district_admin(
                ("wh", "武汉", "Wuhan"), ("jh", "江汉区", "Jianghan"), "a@wh.test"
            )
            _, token = accounts.issue_token(admin, "bench")
            district_id = district.id
            db.session.commit()
        headers = {"Authorization": f"Bearer {token}"}
        # A loaded machine can take minutes to boot two workers each.
        a.start(timeout=600)
        b.start(timeout=600)
        try:
            made = requests.post(
                b.base_url + "/api/v1/sharing/subscriptions",
                headers=headers,
                json={"district_id": district_id, "origin": a.base_url, "catalog_uid": uid},
                timeout=60,
            )
            if made.status_code != 201:
                raise RuntimeError(
                    f"{made.status_code} {made.text}\nA: {a.log_path.read_text()[-2000:]}"
                    f"\nB: {b.log_path.read_text()[-2000:]}"
                )
            # The request reaches A from a job once B's own request has answered.
            deadline = time.monotonic() + 120
            while True:
                with apps["a"].app_context():
                    approved = db.session.execute(
                        RemoteSubscriber.__table__.update()
                        .where(RemoteSubscriber.catalog_id == catalog_id)
                        .values(status="active")
                    ).rowcount
                    db.session.commit()
                if approved or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            sub_id = made.json()["id"]
            start = time.perf_counter()
            synced = requests.post(
                f"{b.base_url}/api/v1/sharing/subscriptions/{sub_id}/sync",
                headers=headers,
                timeout=600,
            )
            sync_time = time.perf_counter() - start
            synced.raise_for_status()
            start = time.perf_counter()
            accepted = requests.post(
                f"{b.base_url}/api/v1/sharing/subscriptions/{sub_id}/accept",
                headers=headers,
                json={"release": 1},
                timeout=600,
            )
            accept_time = time.perf_counter() - start
            accepted.raise_for_status()

        finally:
            a.stop()
            b.stop()
        pages = _feed_pages(manifest, uid)
        bare = _bare_download(pages)
        print(f"sync of a {n}-item release between two instances: {synced.json()}")
        print(
            f"  bare download of the same {len(pages)} pages "
            f"({sum(map(len, pages)) / 1e6:.1f} MB)   {bare:7.2f} s"
        )
        print(f"  signed, checked sync (fetch+verify+store) {sync_time:7.2f} s")
        print(f"  accept all {n} items                     {accept_time:7.2f} s")
        for application in apps.values():
            with application.app_context():
                db.session.remove()
                db.engine.dispose()
    return {"bare": bare, "sync": sync_time, "accept": accept_time, "pages": len(pages)}


def _feed_pages(manifest: dict, uid: str, size: int | None = None) -> list[bytes]:
    from app.config import load_config
    from app.sharing.services.manifest import canonical

    # The same page size as the instances' feed (their default configuration).
    size = size or load_config()["SHARING_PAGE_SIZE"]
    ids = sorted(manifest)
    return [
        canonical({"catalog": uid, "items": {c: manifest[c] for c in ids[i : i + size]}})
        for i in range(0, len(ids), size)
    ]


def _bare_download(pages: list[bytes]) -> float:
    @Request.application
    def serve(request):
        return Response(pages[int(request.args["page"]) - 1], mimetype="application/json")

    server = make_server("127.0.0.1", 0, serve, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/?page="
    start = time.perf_counter()
    with requests.Session() as session:
        for n in range(1, len(pages) + 1):
            session.get(url + str(n), timeout=60).json()
    elapsed = time.perf_counter() - start
    server.shutdown()
    return elapsed


@contextlib.contextmanager
def _databases(postgres: bool):
    """``make_db()`` context managers: throwaway PostgreSQL or SQLite files."""
    folder = tempfile.mkdtemp(prefix="shuyuan-bench-sharing-")
    counter = {"n": 0}

    @contextlib.contextmanager
    def make_db():
        if postgres:
            with throwaway_postgres() as url:
                yield url
        else:
            counter["n"] += 1
            yield f"sqlite:///{folder}/db{counter['n']}.db"

    yield make_db


def table_rows(full: bool) -> list:
    """Rows for ``python -m bench``: diff and sync, each beside its bare baseline of the
    same run (10,000 items when ``full``, 2,000 otherwise; SQLite)."""
    from bench.table import Row

    n = 10_000 if full else 2_000
    size = f"{n:,} items"
    with _databases(False) as make_db:
        with make_db() as url:
            diff = bench_diff(url, n)
        sync = bench_sync(make_db, n)
    return [
        Row(
            "Sharing: pending release diff from the database (SQLite)",
            round(diff["pending"] * 1000, 1),
            "ms",
            round(diff["bare"] * 1000, 1),
            "dict comparison finding only which ids differ",
            "< 2000 ms",
            diff["pending"] < 2,
            size,
            f"field-level diff alone: {diff['pure'] * 1000:.1f} ms",
        ),
        Row(
            "Sharing: sync of a release between two gunicorn instances (SQLite, no media)",
            round(sync["sync"], 2),
            "s",
            round(sync["bare"], 2),
            "the same feed pages downloaded unsigned from a bare WSGI server",
            "< 60 s",
            sync["sync"] < 60,
            size,
            "profile: bench/sharing_profile.py (pyinstrument, both instances in one process)",
        ),
        *mirror_rows(full),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--skip-sync", action="store_true")
    parser.add_argument("--skip-diff", action="store_true")
    parser.add_argument("--mirror", action="store_true", help="Only the edge mirror bench.")
    parser.add_argument("--objects", type=int, default=6)
    parser.add_argument("--object-mb", type=int, default=64)
    parser.add_argument("--limit-mb", type=float, default=16.0)
    parser.add_argument(
        "--sync-workers",
        action="store_true",
        help="mirror bench: serve with sync workers (no keep-alive), not production's gthread",
    )
    args = parser.parse_args()
    print(machine_description())
    print(f"backend: {'PostgreSQL' if args.postgres else 'SQLite'}")

    with _databases(args.postgres) as make_db:
        if args.mirror:
            bench_mirror(
                make_db,
                args.objects,
                args.object_mb * 1024**2,
                limit=int(args.limit_mb * 1024**2),
                threads=0 if args.sync_workers else MIRROR_THREADS,
            )
            return
        if not args.skip_diff:
            with make_db() as url:
                bench_diff(url, args.items)
        if not args.skip_sync:
            bench_sync(make_db, args.items)


# --- edge node: mirror throughput vs a plain HTTP download ------------------------------


def _seed_mirror_upstream(app, media_dir: Path, objects: int, size: int) -> dict:
    """A publisher with ``objects`` video resources of ``size`` random bytes each."""
    import hashlib

    from app.catalog.models import Resource, State, Visibility
    from app.common.models import utcnow
    from app.media.models import MediaAttachment, MediaObject
    from app.sharing.services import catalogs

    with app.app_context():
        db.create_all()
        district, admin = seed_district_admin(
            ("xa", "雄安新区", "Xiong'an"), ("rc", "容城县", "Rongcheng"), "a@rc.test"
        )
        db.session.flush()
        (media_dir / "sha256").mkdir(parents=True, exist_ok=True)
        shas = []
        for n in range(objects):
            data = os.urandom(size)
            sha = hashlib.sha256(data).hexdigest()
            (media_dir / "sha256" / sha).write_bytes(data)
            shas.append(sha)
            resource = Resource(
                title=f"视频 {n}",
                kind="video",
                state=State.PUBLISHED,
                visibility=Visibility.DISTRICT,
                subject="art",
                licence="CC-BY-4.0",
                author_id=admin.id,
                district_id=district.id,
                published_at=utcnow(),
            )
            obj = MediaObject(
                backend="file",
                key=f"sha256/{sha}",
                size=size,
                checksum=sha,
                media_type="video/mp4",
                meta={},
            )
            db.session.add_all([resource, obj])
            db.session.flush()
            db.session.add(
                MediaAttachment(
                    resource_id=resource.id, role="primary", object_id=obj.id, filename=f"{n}.mp4"
                )
            )
        shared = catalogs.create_catalog(
            admin, district.id, {"title": "容城资源", "rules": {"subject": ["art"]}}
        )
        catalogs.publish_release(admin, shared, "bench")
        db.session.commit()
        return {"uid": shared.uid, "catalog_id": shared.id, "shas": shas}


def _plain_download(base_url: str, shas: list[str], folder: Path, connections: int = 1) -> float:
    """The baseline client: the same objects streamed to files over ``connections``
    connections, with the mirror's read size, and nothing else (no index, no signature,
    no hash, no database).  The files are deleted after the clock stops."""
    from concurrent.futures import ThreadPoolExecutor

    from app.sharing.services.media_fetch import CHUNK

    folder.mkdir(parents=True, exist_ok=True)
    local = threading.local()

    def fetch(sha: str) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        with local.session.get(f"{base_url}/{sha}", stream=True, timeout=120) as response:
            response.raise_for_status()
            with (folder / sha).open("wb") as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)

    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(fetch, shas))
    elapsed = time.perf_counter() - start
    for sha in shas:
        (folder / sha).unlink()
    return elapsed


def _floor_download(base_url: str, shas: list[str], folder: Path, connections: int = 1) -> float:
    """The second baseline: :func:`_plain_download` plus what verification and durability
    cost at the least — SHA-256 of every byte (checked against the object's name) and an
    ``fsync`` of each file before the clock stops — and nothing of the protocol (no index,
    no signature, no partial-file bookkeeping, no database).  Done the cheap way, so the
    figure is what a verified, durable mirror can reach here: the hash arranged as the
    mirror arranges it (in one thread beside the transfer with one connection, in each
    receiving thread with several — hashlib releases the GIL on 1 MiB buffers, so the
    hashes use both cores), and each file's ``fsync`` in a thread of its own while the
    connection fetches the next file, so the disk writes overlap the transfer
    (docs/sharing.md, "Mirror throughput, 2026-12-01 (session 9)").  The files are
    deleted after the clock stops."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    from app.sharing.services.media_fetch import CHUNK

    folder.mkdir(parents=True, exist_ok=True)
    local = threading.local()

    def sync(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def fetch(sha: str):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        digest, hashed = hashlib.sha256(), []
        with local.session.get(f"{base_url}/{sha}", stream=True, timeout=120) as response:
            response.raise_for_status()
            with (folder / sha).open("wb") as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
                    if connections > 1:
                        digest.update(chunk)
                        continue
                    # One thread hashes the chunks in order; at most 4 waiting.
                    hashed.append(hasher.submit(digest.update, chunk))
                    if len(hashed) > 4:
                        hashed.pop(0).result()
        for update in hashed:
            update.result()
        if digest.hexdigest() != sha:
            raise RuntimeError(f"floor baseline: {sha[:12]} does not match its hash")
        return syncs.submit(sync, folder / sha)

    start = time.perf_counter()
    with (
        ThreadPoolExecutor(connections) as syncs,
        ThreadPoolExecutor(1) as hasher,
        ThreadPoolExecutor(connections) as pool,
    ):
        for synced in list(pool.map(fetch, shas)):
            synced.result()
    elapsed = time.perf_counter() - start
    for sha in shas:
        (folder / sha).unlink()
    return elapsed


def _forget_mirrored_media(app) -> None:
    """Between runs: drop what the mirror fetched so the next run fetches it all again."""
    import shutil

    from app.media.models import MediaAttachment, MediaObject
    from app.media.storage import get_storage

    with app.app_context():
        db.session.execute(MediaAttachment.__table__.delete())
        db.session.execute(MediaObject.__table__.delete())
        db.session.commit()
        shutil.rmtree(Path(get_storage().local_path("sharing/media/x")).parent, True)


@dataclasses.dataclass
class MirrorRig:
    """An upstream and an edge gunicorn instance (catalog synced, media not yet fetched),
    the edge's app for ``mirror()`` in this process, and the bare baseline server."""

    app_edge: object
    up: Gunicorn
    edge_server: Gunicorn
    bare: subprocess.Popen
    bare_url: str
    shas: list
    root: Path


# The mirror's servers run the way production runs Shuyuan (deploy/gunicorn.conf.py:
# gthread workers with keep-alive, here 2 workers x 4 threads as on one web host):
# the upstream, the edge and the bare baseline alike, so the comparison stays fair.
# 0 = gunicorn's sync workers (every connection closed after one request), the setup of
# the figures before 2026-11-30 23:00 (``--sync-workers``).
MIRROR_THREADS = 4


@contextlib.contextmanager
def mirror_rig(make_db, objects: int, size: int, threads: int = MIRROR_THREADS):
    """Set up :class:`MirrorRig` (used by :func:`bench_mirror` and by the profiler,
    ``bench/sharing_profile.py --mirror``); stops every server on the way out.  All three
    servers run 2 workers with ``threads`` threads each (:data:`MIRROR_THREADS`)."""
    from app.accounts import services as accounts
    from app.sharing.models import RemoteSubscriber, Subscription
    from app.sharing.services import federation

    with make_db() as up_db, make_db() as edge_db, tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        up = Gunicorn(up_db, instance_path=f"{folder}/up", threads=threads or None)
        edge_server = Gunicorn(edge_db, instance_path=f"{folder}/edge", threads=threads or None)
        (root / "up").mkdir()
        (root / "edge").mkdir()
        up.env |= {
            "SHUYUAN_SHARING_ORIGIN": up.base_url,
            "SHUYUAN_SHARING_PEERS": edge_server.base_url,
            "STORAGE_URL": f"file://{folder}/up/media",
        }
        edge_server.env |= {
            "SHUYUAN_SHARING_ORIGIN": edge_server.base_url,
            "SHUYUAN_SHARING_PEERS": up.base_url,
            "STORAGE_URL": f"file://{folder}/edge/media",
        }
        common = {"SECRET_KEY": "bench", "PLUGINS": None, "JOBS_EAGER": True}
        app_up = create_app(
            common
            | {
                "SQLALCHEMY_DATABASE_URI": up_db,
                "INSTANCE_PATH": f"{folder}/up",
                "STORAGE_URL": f"file://{folder}/up/media",
                "SHARING_ORIGIN": up.base_url,
                "SHARING_PEERS": [edge_server.base_url],
            }
        )
        app_edge = create_app(
            common
            | {
                "SQLALCHEMY_DATABASE_URI": edge_db,
                "INSTANCE_PATH": f"{folder}/edge",
                "STORAGE_URL": f"file://{folder}/edge/media",
                "SHARING_ORIGIN": edge_server.base_url,
                "SHARING_PEERS": [up.base_url],
                "EDGE_UPSTREAM": up.base_url,
            }
        )
        seed = _seed_mirror_upstream(app_up, root / "up" / "media", objects, size)
        with app_edge.app_context():
            db.create_all()
            district, admin = seed_district_admin(
                ("xa2", "雄安学校", "Schools"), ("edge", "边缘节点", "Edge"), "a@edge.test"
            )
            _, token = accounts.issue_token(admin, "bench")
            district_id = district.id
            db.session.commit()
        bare_port = free_port()
        bare_log = (root / "bare.log").open("wb")
        bare = subprocess.Popen(
            gunicorn_command("bench.mirror_bare_server:app", bare_port, 2, threads or None),
            cwd=Path(__file__).resolve().parents[1],
            env=os.environ | {"BARE_MEDIA_DIR": f"{folder}/up/media/sha256"},
            stdout=bare_log,
            stderr=subprocess.STDOUT,
        )
        try:
            up.start(timeout=600)
            edge_server.start(timeout=600)
            bare_url = f"http://127.0.0.1:{bare_port}"
            deadline = time.monotonic() + 120
            while True:
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"{bare_url}/{seed['shas'][0]}", timeout=5).ok:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("bare server did not start")
                time.sleep(0.2)
            made = requests.post(
                edge_server.base_url + "/api/v1/sharing/subscriptions",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "district_id": district_id,
                    "origin": up.base_url,
                    "catalog_uid": seed["uid"],
                    "auto_accept": True,
                },
                timeout=60,
            )
            made.raise_for_status()
            # The request reaches the upstream from a job after the response: approve it
            # once it is there.
            deadline = time.monotonic() + 60
            while True:
                with app_up.app_context():
                    approved = db.session.execute(
                        RemoteSubscriber.__table__.update().values(status="active")
                    ).rowcount
                    db.session.commit()
                if approved:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the subscription request never reached the upstream")
                time.sleep(0.2)
            with app_edge.app_context():
                # Catalog synced and materialised before the timed runs: they time media.
                federation.sync(db.session.get(Subscription, made.json()["id"]))
                db.session.commit()
            yield MirrorRig(app_edge, up, edge_server, bare, bare_url, seed["shas"], root)
        finally:
            bare.terminate()
            bare.wait(timeout=30)
            bare_log.close()
            up.stop()
            edge_server.stop()
            for application in (app_up, app_edge):
                with application.app_context():
                    db.session.remove()
                    db.engine.dispose()


def bench_mirror(
    make_db, objects: int, size: int, repeat: int = 3, limit: int = 0, threads: int = MIRROR_THREADS
) -> dict:
    """Mirror (signed index, signed Range-capable requests through the Shuyuan app, SHA-256
    of every byte, partial file, move into storage, one media row committed per object)
    vs a plain HTTP download of the same objects from a bare WSGI app, same gunicorn
    settings, same client machine, alternating runs; median of ``repeat``."""
    from app.sharing.services import edge, mirror

    total = objects * size
    with mirror_rig(make_db, objects, size, threads) as rig:
        app_edge, root = rig.app_edge, rig.root
        plain_times, plain3_times, mirror_times, run_times = [], [], [], []
        single_times, floor_times, floor3_times = [], [], []
        for _ in range(repeat):
            plain_times.append(_plain_download(rig.bare_url, rig.shas, root / "plain"))
            plain3_times.append(_plain_download(rig.bare_url, rig.shas, root / "plain", 3))
            floor_times.append(_floor_download(rig.bare_url, rig.shas, root / "plain"))
            floor3_times.append(_floor_download(rig.bare_url, rig.shas, root / "plain", 3))
            for parallel, times in ((1, single_times), (3, mirror_times)):
                _forget_mirrored_media(app_edge)
                app_edge.config["EDGE_MIRROR_PARALLEL"] = parallel
                with app_edge.app_context():
                    start = time.perf_counter()
                    report = mirror.mirror(force=True, forward=False)
                    if parallel == 3:
                        run_times.append(time.perf_counter() - start)
                    # The media step: signed index, downloads, hashing, storing,
                    # recording (the catalog sync before it is benchmarked above).
                    times.append(report.media_seconds)
                    assert report.complete and report.media.bytes == total, report
                    db.session.remove()
        limited = None
        if limit:
            _forget_mirrored_media(app_edge)
            with app_edge.app_context():
                start = time.perf_counter()
                report = mirror.mirror(force=True, forward=False, bucket=edge.TokenBucket(limit))
                limited = time.perf_counter() - start
                assert report.complete, report
                db.session.remove()
    plain, mirrored = statistics.median(plain_times), statistics.median(mirror_times)
    result = {
        "objects": objects,
        "size": size,
        "plain_mb_s": total / plain / 1e6,
        "mirror_mb_s": total / mirrored / 1e6,
        "plain_times": plain_times,
        "plain3_mb_s": total / statistics.median(plain3_times) / 1e6,
        "plain3_times": plain3_times,
        "floor_mb_s": total / statistics.median(floor_times) / 1e6,
        "floor_times": floor_times,
        "floor3_mb_s": total / statistics.median(floor3_times) / 1e6,
        "floor3_times": floor3_times,
        "mirror_times": mirror_times,
        "single_mb_s": total / statistics.median(single_times) / 1e6,
        "single_times": single_times,
        # Each repeat's floor and mirror run seconds apart in one rig: their ratio is
        # read run by run, as the disk's other users move both (docs/sharing.md,
        # "Mirror throughput (2026-12-01, session 10, helper mirror2)").
        "floor3_ratios": [f / m for f, m in zip(floor3_times, mirror_times, strict=True)],
        "floor_ratios": [f / m for f, m in zip(floor_times, single_times, strict=True)],
        "run_mb_s": total / statistics.median(run_times) / 1e6,
        "limit_mb_s": limit / 1e6 if limit else None,
        "limited_mb_s": total / limited / 1e6 if limited else None,
        "load": load_average(),
        "servers": f"gunicorn 2 x {threads} gthread" if threads else "gunicorn -w 2 sync",
    }
    print(
        f"mirror of {objects} x {size / 1e6:.0f} MB (median of {repeat}, load {result['load']},"
        f" {result['servers']}):\n"
        f"  plain HTTP download, 1 connection               {result['plain_mb_s']:7.1f} MB/s\n"
        f"  plain HTTP download, 3 connections              {result['plain3_mb_s']:7.1f} MB/s\n"
        f"  floor: plain + SHA-256 + fsync, 1 connection    {result['floor_mb_s']:7.1f} MB/s"
        f"  = {result['floor_mb_s'] / result['plain_mb_s']:.2f}x of plain\n"
        f"  floor: plain + SHA-256 + fsync, 3 connections   {result['floor3_mb_s']:7.1f} MB/s"
        f"  = {result['floor3_mb_s'] / result['plain3_mb_s']:.2f}x of plain\n"
        f"  mirror, 3 connections (default)                  {result['mirror_mb_s']:7.1f} MB/s"
        f"  = {result['mirror_mb_s'] / result['plain3_mb_s']:.2f}x of plain,"
        f" {result['mirror_mb_s'] / result['floor3_mb_s']:.2f}x of the floor"
        f" ({_ratios(result['floor3_ratios'])} run by run)\n"
        f"  mirror, one connection (EDGE_MIRROR_PARALLEL=1) {result['single_mb_s']:7.1f} MB/s"
        f"  = {result['single_mb_s'] / result['plain_mb_s']:.2f}x of plain,"
        f" {result['single_mb_s'] / result['floor_mb_s']:.2f}x of the floor"
        f" ({_ratios(result['floor_ratios'])} run by run)\n"
        f"  whole mirror run incl. catalog sync (304)      {result['run_mb_s']:7.1f} MB/s"
    )
    if limited:
        print(
            f"  mirror with a {limit / 1e6:.0f} MB/s limit              "
            f"{result['limited_mb_s']:7.1f} MB/s"
        )
    return result


def _ratios(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}x" for value in values)


def mirror_rows(full: bool) -> list:
    """Rows for ``python -m bench`` (bench/table.py): mirror throughput beside a plain
    HTTP download of the same objects, and the bandwidth limit held."""
    from bench.table import Row

    objects, size = (6, 64 * 1024**2) if full else (4, 16 * 1024**2)
    limit = 16 * 1024**2
    with _databases(False) as make_db:
        result = bench_mirror(make_db, objects, size, repeat=3 if full else 2, limit=limit)
    label = f"{objects} x {size // 1024**2} MiB"
    total = objects * size
    # Each mirror row beside a plain download over as many connections: the same work
    # without the protocol (docs/sharing.md, "Mirror throughput": how the baseline is fair).
    ratio = result["mirror_mb_s"] / result["plain3_mb_s"]

    def floor_note(
        mirrored: float, floor: float, plain: float, connections: str, ratios: list[float]
    ) -> str:
        # The second baseline of the same run: what verification and durability cost at
        # the least, so a ratio to plain that no verified, durable mirror could reach shows.
        return (
            f"floor, the same plain download plus SHA-256 of every byte and an fsync of "
            f"each file ({connections}, same run): {floor:,.0f} MB/s = {floor / plain:.2f}x "
            f"of plain; the mirror = {mirrored / floor:.2f}x of the floor "
            f"({_ratios(ratios)} repeat by repeat)"
        )

    return [
        Row(
            path=(
                "Edge mirror media throughput, 3 connections (default; signed, "
                "SHA-256 verified, resumable; SQLite)"
            ),
            figure=round(result["mirror_mb_s"], 1),
            unit="MB/s",
            baseline=round(result["plain3_mb_s"], 1),
            baseline_label=(
                "plain HTTP download of the same objects to files, 3 connections "
                f"(bare WSGI app, {result['servers']})"
            ),
            target=">= 0.8x baseline",
            met=ratio >= 0.8,
            size=label,
            note=floor_note(
                result["mirror_mb_s"],
                result["floor3_mb_s"],
                result["plain3_mb_s"],
                "3 connections",
                result["floor3_ratios"],
            ),
        ),
        Row(
            path="Edge mirror media throughput, one connection (EDGE_MIRROR_PARALLEL=1)",
            figure=round(result["single_mb_s"], 1),
            unit="MB/s",
            baseline=round(result["plain_mb_s"], 1),
            baseline_label=(
                "plain HTTP download of the same objects to files, 1 connection "
                f"(bare WSGI app, {result['servers']})"
            ),
            target=">= 0.8x baseline",
            met=result["single_mb_s"] / result["plain_mb_s"] >= 0.8,
            size=label,
            note=floor_note(
                result["single_mb_s"],
                result["floor_mb_s"],
                result["plain_mb_s"],
                "1 connection",
                result["floor_ratios"],
            ),
        ),
        Row(
            path=f"Edge mirror under a {limit / 1e6:.1f} MB/s bandwidth limit",
            figure=round(result["limited_mb_s"], 2),
            unit="MB/s",
            baseline=round(limit / 1e6, 2),
            baseline_label="the configured limit",
            target="<= limit (+ one second's burst)",
            # The bucket starts full (one second's worth), so over ``total`` bytes the
            # rate may exceed the limit by at most total / (total - limit).
            met=result["limited_mb_s"] <= limit / 1e6 * total / (total - limit) * 1.001,
            size=label,
        ),
    ]


if __name__ == "__main__":
    main()
