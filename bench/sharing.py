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

Mirror throughput (edge node) is not measured: the edge node is not built.

    .venv/bin/python bench/sharing.py            # SQLite
    .venv/bin/python bench/sharing.py --postgres # throwaway PostgreSQL databases
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
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
from bench.common import Gunicorn, machine_description, throwaway_postgres  # noqa: E402


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


def bench_sync(make_db, n: int) -> dict:
    """Times in seconds: ``bare`` download, ``sync`` (signed, checked, stored), ``accept``."""
    from app.accounts import services as accounts
    from app.accounts.models import Role
    from app.sharing.models import Release, RemoteSubscriber, SharedCatalog
    from app.sharing.services.manifest import digest_of

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
            region = accounts.ensure_region("tj", "天津", "Tianjin")
            hexi = accounts.ensure_district(region, "hexi", "河西区", "Hexi")
            catalog = SharedCatalog(district_id=hexi.id, title="bench")
            db.session.add(catalog)
            db.session.flush()
            db.session.add(
                Release(
                    catalog_id=catalog.id,
                    number=1,
                    notes="bench",
                    manifest=manifest,
                    digest=digest_of(manifest),
                    item_count=len(manifest),
                )
            )
            uid, catalog_id = catalog.uid, catalog.id
            db.session.commit()
        with apps["b"].app_context():
            region = accounts.ensure_region("wh", "武汉", "Wuhan")
            district = accounts.ensure_district(region, "jh", "江汉区", "Jianghan")
            admin = accounts.create_user("a@wh.test", "admin", None, district=district)
            accounts.assign_role(admin, Role.DISTRICT_ADMIN, district=district)
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
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--skip-sync", action="store_true")
    parser.add_argument("--skip-diff", action="store_true")
    args = parser.parse_args()
    print(machine_description())
    print(f"backend: {'PostgreSQL' if args.postgres else 'SQLite'}")

    with _databases(args.postgres) as make_db:
        if not args.skip_diff:
            with make_db() as url:
                bench_diff(url, args.items)
        if not args.skip_sync:
            bench_sync(make_db, args.items)


if __name__ == "__main__":
    main()
