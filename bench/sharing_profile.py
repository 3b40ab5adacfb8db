"""Profile the sync of a remote release with pyinstrument, both instances in ONE process.

The subscriber's ``federation.sync`` runs in the main thread and its HTTP requests are
handed straight to the publisher's WSGI app (a ``requests`` adapter around Flask's test
client), so one profile shows both sides: feed pages built and signed by the publisher,
fetched, verified, checked and stored by the subscriber.  No sockets, no gunicorn: what is
left is the application's own work.

    PYTHONPATH=. .venv/bin/python bench/sharing_profile.py --items 10000 \\
        --html /tmp/sharing-sync-profile.html

``--mirror`` profiles the edge node's media mirror instead (docs/sharing.md, "Mirror
throughput"): the rig of ``bench/sharing.py`` (an upstream and an edge gunicorn instance,
the bare baseline server), then alternating plain downloads and mirror runs, each with the
CPU seconds of the client (this process, every thread) and of the serving gunicorn tree,
so CPU per MiB can be compared on a busy machine; with ``--py-spy PATH`` (a py-spy
binary) the client and the upstream's workers are sampled during the one-connection mirror
runs and the hottest lines of each are printed:

    PYTHONPATH=. .venv/bin/python bench/sharing_profile.py --mirror --objects 4 \\
        --object-mb 64 --py-spy /tmp/py-spy/bin/py-spy
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402
import urllib3  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402

A, B = "http://publisher.bench", "http://subscriber.bench"


class WSGIAdapter(requests.adapters.BaseAdapter):
    """Sends a prepared request to a Flask app in this process."""

    def __init__(self, app):
        super().__init__()
        self.client = app.test_client()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        url = urlsplit(request.url)
        response = self.client.open(
            url.path + (f"?{url.query}" if url.query else ""),
            method=request.method,
            headers=dict(request.headers),
            data=request.body or b"",
            base_url=f"{url.scheme}://{url.netloc}",
        )
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(response.get_data()),
            headers=dict(response.headers),
            status=response.status_code,
            preload_content=False,
            decode_content=False,
        )
        return requests.adapters.HTTPAdapter().build_response(request, raw)

    def close(self):
        """Nothing to release: the test client holds no connection."""


def build(folder: str, n: int):
    from app.accounts import services as accounts
    from app.sharing.models import RemoteSubscriber, Subscription
    from bench.sharing import seed_publisher, synthetic_manifest

    apps = {}
    for name, own, peer in (("a", A, B), ("b", B, A)):
        apps[name] = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/{name}.db",
                "SECRET_KEY": "bench",
                "INSTANCE_PATH": f"{folder}/{name}",
                "PLUGINS": None,
                "SHARING_ORIGIN": own,
                "SHARING_PEERS": [peer],
                "JOBS_EAGER": True,
                "RATELIMIT_ENABLED": False,
            }
        )
        Path(f"{folder}/{name}").mkdir(exist_ok=True)
        with apps[name].app_context():
            db.create_all()
    manifest = synthetic_manifest(n)
    with apps["a"].app_context():
        catalog = seed_publisher(manifest, notes="")
        db.session.add(
            RemoteSubscriber(
                catalog_id=catalog.id,
                origin=B,
                request_id="bench-request",
                district_name="江汉区",
                status="active",
            )
        )
        uid = catalog.uid
        db.session.commit()
    with apps["b"].app_context():
        region = accounts.ensure_region("wh", "武汉", "Wuhan")
        district = accounts.ensure_district(region, "jh", "江汉区", "Jianghan")
        sub = Subscription(
            subscriber_district_id=district.id,
            remote_origin=A,
            remote_catalog_uid=uid,
            status="active",
            remote_request_id="bench-request",
        )
        db.session.add(sub)
        db.session.commit()
        sub_id = sub.id
    adapters = {
        "publisher.bench": WSGIAdapter(apps["a"]),
        "subscriber.bench": WSGIAdapter(apps["b"]),
    }
    requests.Session.get_adapter = lambda self, url: adapters[urlsplit(url).netloc]
    return apps, sub_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--html", help="also write pyinstrument's HTML report here")
    parser.add_argument("--mirror", action="store_true", help="profile the edge mirror")
    parser.add_argument("--objects", type=int, default=4)
    parser.add_argument("--object-mb", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--py-spy", help="a py-spy binary: sample both sides of the mirror")
    args = parser.parse_args()
    if args.mirror:
        profile_mirror(args.objects, args.object_mb * 1024**2, args.repeat, args.py_spy)
        return
    from pyinstrument import Profiler

    from app.sharing.models import Subscription
    from app.sharing.services import federation

    with tempfile.TemporaryDirectory() as folder:
        apps, sub_id = build(folder, args.items)
        with apps["b"].app_context():
            # Warm-up outside the profile: keys made and exchanged, the manifest decoded.
            federation.keys.ensure_key()
            with apps["a"].app_context():
                federation.keys.ensure_key()
            profiler = Profiler(interval=0.002)
            start = time.perf_counter()
            profiler.start()
            result = federation.sync(db.session.get(Subscription, sub_id))
            db.session.commit()
            profiler.stop()
            elapsed = time.perf_counter() - start
        print(f"in-process sync of {args.items} items: {result} in {elapsed:.2f} s")
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        if args.html:
            Path(args.html).write_text(profiler.output_html())
        for application in apps.values():
            with application.app_context():
                db.session.remove()
                db.engine.dispose()


# --- the edge node's media mirror ----------------------------------------------------


def _hot_lines(raw: Path, top: int = 18) -> str:
    """The leaf lines of py-spy's collapsed stacks ("a;b;c N"), by share of samples."""
    counts: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        total += int(n)
        leaf = stack.rsplit(";", 1)[-1]
        counts[leaf] = counts.get(leaf, 0) + int(n)
    rows = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    return (
        "\n".join(f"  {n / total:6.1%}  {leaf}" for leaf, n in rows)
        + f"\n  ({total} samples; collapsed stacks in {raw})"
    )


class _Spy:
    """py-spy recording some processes (collapsed stacks) until stopped."""

    def __init__(self, binary: str | None, pids: dict[str, int], folder: Path):
        self.processes = {}
        for name, pid in pids.items() if binary else ():
            out = folder / f"mirror-py-spy-{name}.txt"
            self.processes[name] = (
                subprocess.Popen(
                    [
                        binary,
                        "record",
                        "--pid",
                        str(pid),
                        "--rate",
                        "250",
                        "--nonblocking",
                        "--format",
                        "raw",
                        "--output",
                        str(out),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
                out,
            )
        time.sleep(1.0 if self.processes else 0)  # py-spy attaches

    def stop(self) -> dict[str, str]:
        out = {}
        for name, (process, path) in self.processes.items():
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
            out[name] = _hot_lines(path) if path.exists() else "(no samples)"
        return out


def profile_mirror(objects: int, size: int, repeat: int, py_spy: str | None) -> None:
    from app.sharing.services import mirror
    from bench.common import CpuMeter, _process_cpu_seconds, load_average, machine_description
    from bench.sharing import _databases, _forget_mirrored_media, _plain_download, mirror_rig

    total = objects * size
    me = os.getpid()
    rows: dict[str, list[tuple[float, float, float]]] = {}  # name → (wall, client, server)
    print(machine_description())
    with _databases(False) as make_db, mirror_rig(make_db, objects, size) as rig:
        up_workers = {
            f"upstream-worker-{n}": pid
            for n, pid in enumerate(
                int(p)
                for p in Path(f"/proc/{rig.up.process.pid}/task/{rig.up.process.pid}/children")
                .read_text()
                .split()
            )
        }
        spied = {}
        for _ in range(repeat):
            for connections in (1, 3):
                server, client = CpuMeter(rig.bare.pid).start(), _process_cpu_seconds(me)
                elapsed = _plain_download(rig.bare_url, rig.shas, rig.root / "plain", connections)
                # (client CPU includes deleting the files after the clock stopped)
                rows.setdefault(f"plain download, {connections} connection(s)", []).append(
                    (elapsed, _process_cpu_seconds(me) - client, server.stop())
                )
            for parallel in (1, 3):
                _forget_mirrored_media(rig.app_edge)
                rig.app_edge.config["EDGE_MIRROR_PARALLEL"] = parallel
                spy = _Spy(
                    py_spy if parallel == 1 and not spied else None,
                    {"client": me, **up_workers},
                    Path(tempfile.gettempdir()),
                )
                server, client = CpuMeter(rig.up.process.pid).start(), _process_cpu_seconds(me)
                with rig.app_edge.app_context():
                    report = mirror.mirror(force=True, forward=False)
                    assert report.complete and report.media.bytes == total, report
                    db.session.remove()
                rows.setdefault(f"mirror, {parallel} connection(s), media step", []).append(
                    (report.media_seconds, _process_cpu_seconds(me) - client, server.stop())
                )
                spied = spied or spy.stop()
    mib = total / 1024**2
    print(f"{objects} x {size / 1024**2:.0f} MiB, median of {repeat}, load {load_average()}")
    print(f"{'':44} {'MB/s':>8} {'client ms/MiB':>14} {'server ms/MiB':>14}")
    for name, values in rows.items():
        wall, client, server = (statistics.median(v[i] for v in values) for i in range(3))
        print(
            f"{name:44} {total / wall / 1e6:8.1f} {client * 1e3 / mib:14.2f}"
            f" {server * 1e3 / mib:14.2f}"
        )
    for name, text in spied.items():
        print(f"\npy-spy, {name} (one-connection mirror run; leaf lines, CPU samples):\n{text}")


if __name__ == "__main__":
    main()
