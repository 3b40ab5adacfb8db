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
    parser.add_argument(
        "--phases", action="store_true", help="with --mirror: time each phase of the media step"
    )
    parser.add_argument(
        "--sync-workers",
        action="store_true",
        help="with --mirror: gunicorn sync workers (no keep-alive), not production's gthread",
    )
    parser.add_argument(
        "--pairs",
        action="store_true",
        help="with --mirror: alternate the floor and the mirror in one rig, --repeat times,"
        " and print each run (docs/sharing.md, session 10)",
    )
    parser.add_argument(
        "--connections", default="3,1", help="with --pairs: connection counts, e.g. 3 or 3,1"
    )
    parser.add_argument(
        "--fsync",
        action="store_true",
        help="time writing --object-mb MiB to a file and fsync-ing it, --objects times",
    )
    args = parser.parse_args()
    if args.fsync:
        time_fsync(args.objects, args.object_mb * 1024**2)
        return
    if args.mirror and args.pairs:
        pairs_mirror(
            args.objects,
            args.object_mb * 1024**2,
            args.repeat,
            [int(n) for n in args.connections.split(",")],
        )
        return
    if args.mirror and args.phases:
        phases_mirror(
            args.objects, args.object_mb * 1024**2, args.repeat, 0 if args.sync_workers else 4
        )
        return
    if args.mirror:
        profile_mirror(
            args.objects,
            args.object_mb * 1024**2,
            args.repeat,
            args.py_spy,
            0 if args.sync_workers else 4,
        )
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


def profile_mirror(
    objects: int, size: int, repeat: int, py_spy: str | None, threads: int = 4
) -> None:
    from app.sharing.services import mirror
    from bench.common import CpuMeter, _process_cpu_seconds, load_average, machine_description
    from bench.sharing import (
        _databases,
        _floor_download,
        _forget_mirrored_media,
        _plain_download,
        mirror_rig,
    )

    total = objects * size
    me = os.getpid()
    rows: dict[str, list[tuple[float, float, float]]] = {}  # name → (wall, client, server)
    print(machine_description())
    with _databases(False) as make_db, mirror_rig(make_db, objects, size, threads) as rig:
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
            for name, download in (("plain", _plain_download), ("floor", _floor_download)):
                for connections in (1, 3):
                    server, client = CpuMeter(rig.bare.pid).start(), _process_cpu_seconds(me)
                    elapsed = download(rig.bare_url, rig.shas, rig.root / "plain", connections)
                    # (client CPU includes deleting the files after the clock stopped;
                    # floor = plain + SHA-256 + fsync of each file)
                    rows.setdefault(f"{name} download, {connections} connection(s)", []).append(
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


def pairs_mirror(objects: int, size: int, repeat: int, connections: list[int]) -> None:
    """The mirror beside its floor (``bench/sharing.py``'s ``_floor_download``: the same
    plain download plus SHA-256 and an fsync of each file) in ONE rig, alternating A B B A
    so that a busy disk or CPU hits both alike, each run printed with its CPU per MiB
    (client = this process / server = the serving gunicorn tree); the mirror both as
    shipped and without its early writeback (``media_fetch._write_back`` off), which is
    the question the run answers besides the ratio (docs/sharing.md, "Mirror throughput
    (2026-12-01, session 10, helper mirror2)"):

        PYTHONPATH=$PWD:$PWD/plugins .venv/bin/python bench/sharing_profile.py --mirror \
            --pairs --objects 6 --object-mb 64 --repeat 8 --connections 3,1
    """
    from app.sharing.services import media_fetch, mirror
    from bench.common import CpuMeter, _process_cpu_seconds, load_average, machine_description
    from bench.sharing import (
        _databases,
        _floor_download,
        _forget_mirrored_media,
        _plain_download,
        mirror_rig,
    )

    total, me = objects * size, os.getpid()
    mib = total / 1024**2
    fadvise = media_fetch._FADVISE
    runs: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    print(machine_description())
    with _databases(False) as make_db, mirror_rig(make_db, objects, size) as rig:

        def run(kind: str, parallel: int) -> None:
            client = _process_cpu_seconds(me)
            if kind in ("plain", "floor"):
                server = CpuMeter(rig.bare.pid).start()
                download = _plain_download if kind == "plain" else _floor_download
                elapsed = download(rig.bare_url, rig.shas, rig.root / "plain", parallel)
            else:
                _forget_mirrored_media(rig.app_edge)
                rig.app_edge.config["EDGE_MIRROR_PARALLEL"] = parallel
                media_fetch._FADVISE = fadvise and kind == "mirror"
                server = CpuMeter(rig.up.process.pid).start()
                try:
                    with rig.app_edge.app_context():
                        report = mirror.mirror(force=True, forward=False)
                        assert report.complete and report.media.bytes == total, report
                        db.session.remove()
                finally:
                    media_fetch._FADVISE = fadvise
                elapsed = report.media_seconds
            cpu = (_process_cpu_seconds(me) - client, server.stop())
            runs.setdefault((kind, parallel), []).append((elapsed, *cpu))
            print(
                f"  {kind:22} {parallel} conn. {total / elapsed / 1e6:7.0f} MB/s"
                f"  CPU {cpu[0] * 1e3 / mib:.2f} / {cpu[1] * 1e3 / mib:.2f} ms/MiB",
                flush=True,
            )

        order = ["floor", "mirror", "mirror, no writeback"]
        for n in range(repeat):
            print(f"round {n}, load {load_average()}", flush=True)
            for parallel in connections:
                run("plain", parallel)
                for kind in order if n % 2 == 0 else order[::-1]:
                    run(kind, parallel)
    print(f"{objects} x {size / 1024**2:.0f} MiB, median of {repeat}, load {load_average()}")
    for (kind, parallel), values in runs.items():
        wall = statistics.median(v[0] for v in values)
        floor = runs[("floor", parallel)]
        ratios = [f[0] / v[0] for f, v in zip(floor, values, strict=True)]
        print(
            f"{kind:22} {parallel} conn. {total / wall / 1e6:7.0f} MB/s"
            f" (runs {min(total / v[0] for v in values) / 1e6:.0f}"
            f"-{max(total / v[0] for v in values) / 1e6:.0f}),"
            f" of the floor: median {statistics.median(ratios):.2f}x"
            f" ({min(ratios):.2f}-{max(ratios):.2f}x run by run),"
            f" CPU {statistics.median(v[1] for v in values) * 1e3 / mib:.2f}"
            f" / {statistics.median(v[2] for v in values) * 1e3 / mib:.2f} ms/MiB"
        )


def time_fsync(objects: int, size: int) -> None:
    """The durable write the mirror makes of every verified object (``durable_replace``
    syncs the file before its row), alone: ``size`` bytes written to a file in the temp
    folder (the benchmark's file system) in 1 MiB writes, then ``os.fsync``:

        .venv/bin/python bench/sharing_profile.py --fsync --objects 4 --object-mb 16
    """
    from bench.common import load_average

    data = os.urandom(size)
    with tempfile.TemporaryDirectory() as folder:
        for n in range(objects):
            path = Path(folder) / f"object-{n}"
            start = time.perf_counter()
            with path.open("wb") as out:
                for offset in range(0, size, 1024**2):
                    out.write(data[offset : offset + 1024**2])
            written = time.perf_counter()
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            synced = time.perf_counter()
            print(
                f"{size / 1024**2:.0f} MiB: write {1e3 * (written - start):.1f} ms, fsync "
                f"{1e3 * (synced - written):.1f} ms = "
                f"{size / 1024**2 / (synced - written):.0f} MiB/s (load {load_average()})"
            )


class _Phases:
    """Wall-clock intervals of the mirror's media step: which thread did what, when
    (milliseconds from the start of the step), by wrapping the functions of
    ``media_fetch`` and ``mirror`` that make up a phase."""

    def __init__(self):
        import threading

        self.events: list[tuple[str, str, float, float]] = []  # (thread, phase, start, end)
        self.lock = threading.Lock()
        self.origin = time.perf_counter()
        self.patched: list[tuple[object, str, object]] = []

    def wrap(self, module, name: str, phase: str | None = None) -> None:
        import functools
        import threading

        original = getattr(module, name, None)
        if original is None:  # code before that function existed
            return

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                end = time.perf_counter()
                with self.lock:
                    self.events.append((threading.current_thread().name, phase or name, start, end))

        setattr(module, name, timed)
        self.patched.append((module, name, original))

    def restore(self) -> None:
        for module, name, original in reversed(self.patched):
            setattr(module, name, original)

    def report(self, step_start: float, step_end: float) -> str:
        lines = [f"  media step {1e3 * (step_end - step_start):7.1f} ms"]
        totals: dict[str, list[float]] = {}
        for thread, phase, start, end in sorted(self.events, key=lambda e: e[2]):
            if start < step_start or start > step_end:
                continue
            totals.setdefault(phase, []).append(1e3 * (end - start))
            lines.append(
                f"  {1e3 * (start - step_start):7.1f} → {1e3 * (end - step_start):7.1f} ms"
                f"  {1e3 * (end - start):6.1f} ms  {thread[-18:]:18} {phase}"
            )
        lines.append(
            "  totals: "
            + ", ".join(f"{phase} {sum(v):.1f} ms ({len(v)}×)" for phase, v in totals.items())
        )
        self.events.clear()
        return "\n".join(lines)


def phases_mirror(objects: int, size: int, repeat: int, threads: int) -> None:
    """Each phase of the mirror's media step timed (docs/sharing.md, "Mirror
    throughput"), beside a plain download of the same objects, alternating:

        PYTHONPATH=. .venv/bin/python bench/sharing_profile.py --mirror --phases \\
            --objects 4 --object-mb 16 --repeat 3
    """
    from app.sharing.services import media_fetch, mirror
    from bench.common import load_average, machine_description
    from bench.sharing import _databases, _forget_mirrored_media, _plain_download, mirror_rig

    total = objects * size
    print(machine_description())
    phases = _Phases()
    # fetch_index: the signed index round trip (request, publisher, verification);
    # _signed_get: a request until the publisher's headers arrive (its checks included);
    # _receive: the body (read, write, hand to the hash), _split the body of a batch;
    # the hash wait: from the last byte to the digest; finish: move into storage and
    # the media row; commit: the edge's commit after each object.
    for module, name, phase in (
        (media_fetch, "fetch_index", "index (signed round trip + checks)"),
        (media_fetch, "plan", "plan"),
        (media_fetch, "already_here", "already_here"),
        (media_fetch, "_signed_get", "request → headers"),
        (media_fetch, "_receive", "body (read+write+hash hand-off)"),
        (media_fetch, "_split", "batch body (read+write+hash hand-off, all its objects)"),
        (media_fetch, "_Hasher.hexdigest", None),
        (media_fetch, "finish", "finish (durable move + row)"),
        (media_fetch, "attach", "attach"),
        (mirror, "commit", "commit"),
    ):
        if "." in name:
            cls, method = name.split(".")
            phases.wrap(getattr(module, cls), method, "hash wait after body")
        else:
            phases.wrap(module, name, phase)
    try:
        with _databases(False) as make_db, mirror_rig(make_db, objects, size, threads) as rig:
            for n in range(repeat):
                for connections in (1, 3):
                    elapsed = _plain_download(
                        rig.bare_url, rig.shas, rig.root / "plain", connections
                    )
                    print(
                        f"run {n}: plain download, {connections} connection(s): "
                        f"{1e3 * elapsed:.1f} ms = {total / elapsed / 1e6:.0f} MB/s"
                    )
                for parallel in (1, 3):
                    _forget_mirrored_media(rig.app_edge)
                    rig.app_edge.config["EDGE_MIRROR_PARALLEL"] = parallel
                    with rig.app_edge.app_context():
                        start = time.perf_counter()
                        report = mirror.mirror(force=True, forward=False)
                        end = time.perf_counter()
                        assert report.complete and report.media.bytes == total, report
                        db.session.remove()
                    step_start = end - (report.media_seconds or 0)
                    print(
                        f"run {n}: mirror, {parallel} connection(s): media step "
                        f"{1e3 * report.media_seconds:.1f} ms = "
                        f"{total / report.media_seconds / 1e6:.0f} MB/s "
                        f"(whole run {1e3 * (end - start):.1f} ms), load {load_average()}"
                    )
                    print(phases.report(step_start, end))
    finally:
        phases.restore()


if __name__ == "__main__":
    main()
