"""Benchmark of media storage (issue 4), against moto's S3 server on 127.0.0.1.

1. Upload throughput of one file of ``--size`` MB through Shuyuan's flow (API start ->
   presigned multipart part PUTs straight to S3 from 4 client threads -> API complete ->
   verification: size, sniffed type, SHA-256 streamed back, the object recorded at its
   upload key by its SHA-256; a background job on the thread pool as in production, the
   client polling until the upload is verified) versus the raw ``minio`` SDK
   (``fput_object``, same part size, 4 parallel uploads) to the same server in the same
   run.  moto runs as a separate ``moto_server`` process on a free port (``--port``).
2. Download throughput: Shuyuan's delivery URL (API call + presigned GET streamed with
   ``requests``) versus ``minio.get_object`` streaming.
3. Presigned-URL issuance with authorisation: ``GET /api/v1/media/<id>/url`` with a bearer
   token through the WSGI app in one thread (= one worker), requests per second.

    .venv/bin/python bench/media.py               # 1024 MB
    .venv/bin/python bench/media.py --size 256    # quicker
    .venv/bin/python bench/media.py --size 64 --eager --profile /tmp/prof   # pyinstrument

The file lives in a temporary folder; SQLite in a temporary folder holds the rows.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

PART = 8 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_file(path: Path, size_mb: int) -> str:
    """An MP4-looking file (ftyp box) of pseudo-random bytes; returns its SHA-256."""
    digest = hashlib.sha256()
    block = os.urandom(PART)
    with open(path, "wb") as out:
        head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
        first = head + block[len(head) :]
        for i in range(size_mb * 1024 * 1024 // PART):
            chunk = first if i == 0 else block[i % 7 :] + block[: i % 7]
            out.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1024 / 1024


@contextlib.contextmanager
def profiled(args, name: str):
    """pyinstrument around a block when ``--profile DIR`` is given (DIR/<name>.txt)."""
    folder = getattr(args, "profile", None)
    if not folder:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        Path(folder).mkdir(parents=True, exist_ok=True)
        text = profiler.output_text(unicode=True, color=False, show_all=False)
        (Path(folder) / f"{name}.txt").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024, help="file size in MB (multiple of 8)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--upload-rounds", type=int, default=2, help="uploads each way, taking turns with raw"
    )
    parser.add_argument("--presign-requests", type=int, default=3000)
    parser.add_argument("--port", type=int, default=0, help="moto's port (default: a free one)")
    parser.add_argument(
        "--eager",
        action="store_true",
        help="run the verification job inside the complete request (JOBS_EAGER)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="write pyinstrument profiles (text) of the complete request (verification) "
        "and of the presigned-URL requests to DIR",
    )
    http = parser.add_argument_group(
        "presigned URLs over HTTP (--presign-http: only this, wrk against gunicorn -w 2)"
    )
    http.add_argument("--presign-http", action="store_true")
    http.add_argument("--seconds", type=float, default=10, help="wrk duration per measure")
    http.add_argument("--connections", type=int, default=8, help="wrk connections")
    http.add_argument("--rounds", type=int, default=2)
    http.add_argument("--http-port", type=int, default=0, help="first of 3-5 ports (default: free)")
    http.add_argument(
        "--redis-url", default=None, help="default: BENCH_REDIS_URL, else redis://127.0.0.1:6379/10"
    )
    http.add_argument("--only", nargs="*", help="bare, shuyuan, shuyuan+redis, before:…")
    http.add_argument("--before", metavar="DIR", help="also measure the app in DIR (a checkout)")
    args = parser.parse_args()
    if args.presign_http:
        if args.profile:
            presign_profile(args)
        else:
            presign_http(args)
        return
    run(args)


def run(args) -> dict:
    """The whole benchmark (``args``: size, threads, presign_requests); prints the
    figures and returns them (seconds, rates) for :func:`table_rows`."""

    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    # moto's server in its own process, so that it does not share the GIL with the client.
    port = getattr(args, "port", 0) or free_port()
    command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        return _run(args, port)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _run(args, port: int) -> dict:
    from minio import Minio

    workdir = Path(tempfile.mkdtemp(prefix="shuyuan-bench-media-"))
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    storage_url = f"s3://bench:bench@127.0.0.1:{port}/{bucket}?secure=false"

    from app import create_app
    from app.accounts import services as accounts
    from app.accounts.models import Role
    from app.catalog import services as catalog
    from app.catalog.models import Resource
    from app.common.events import commit
    from app.extensions import db

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'bench.db'}",
            "INSTANCE_PATH": str(workdir),
            "SECRET_KEY": "bench",
            "STORAGE_URL": storage_url,
            # --eager: verification (and derivatives) inside the complete request, so that
            # --profile sees them; by default they are jobs on the pool, as in production.
            "JOBS_EAGER": bool(getattr(args, "eager", False)),
            "REDIS_URL": None,
            "SEARCH_INDEX_DIR": str(workdir / "search"),
            "MEDIA_MAX_UPLOAD_BYTES": 8 * 1024**3,
        }
    )
    # Raw and Shuyuan take turns (raw, ours, ours, raw, ...), one file per round with bytes
    # of its own (so that no upload is a duplicate of one before it): measured once each,
    # raw first, whichever met a cold server or an unlucky moment of the shared machine
    # decided the ratio.
    rounds = max(1, getattr(args, "upload_rounds", 2))
    print(f"writing {rounds} test files of {args.size} MB ...", flush=True)
    sources = []
    for n in range(rounds):
        path = workdir / f"lesson-{n}.mp4"
        sources.append((path, make_file(path, args.size)))
    source = sources[0][0]
    size = source.stat().st_size
    print(
        f"moto S3 server 127.0.0.1:{port}; file {size / 1024 / 1024:.0f} MB; "
        f"part {PART // 1024 // 1024} MB; "
        f"{args.threads} client threads; {os.cpu_count()} CPUs; {rounds} rounds"
    )

    with app.app_context():
        db.create_all()
        region = accounts.ensure_region("r", "市", "City")
        district = accounts.ensure_district(region, "d", "区", "District")
        school = accounts.ensure_school(district, "s", "校", "School")
        teacher = accounts.create_user("t@example.test", "T", "password123", school=school)
        accounts.assign_role(teacher, Role.TEACHER, school=school)
        commit()
        content_ids = []
        for n in range(rounds):  # one resource per round: each upload is its primary file
            resource = catalog.create_content(
                teacher, Resource, {"kind": "video", "title": f"基准 {n}", "visibility": "region"}
            )
            commit()
            content_ids.append(resource.content_id)
        _, raw_token = accounts.issue_token(teacher, "bench")
        commit()
        teacher_id = teacher.id
    # Requests run outside this context so that each gets its own, as in a real worker.
    headers = {"Authorization": f"Bearer {raw_token}"}
    # The floor of any request to this app: the same hooks (request id, bearer check,
    # commit, security headers), no database work of its own and no presign.
    app.add_url_rule("/bench/empty", "bench_empty", lambda: {"ok": True})
    client = app.test_client()
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=args.threads * 2))
    from app import jobs

    raw = Minio(f"127.0.0.1:{port}", "bench", "bench", secure=False, region="us-east-1")
    if not raw.bucket_exists(bucket):
        raw.make_bucket(bucket)

    def raw_upload(n: int) -> float:
        t0 = time.perf_counter()
        raw.fput_object(
            bucket,
            f"raw/lesson-{n}.mp4",
            str(sources[n][0]),
            part_size=PART,
            num_parallel_uploads=args.threads,
        )
        return time.perf_counter() - t0

    def shuyuan_upload(n: int) -> dict:
        """API start -> part PUTs -> complete -> poll until verified; the seconds to each."""
        source, checksum = sources[n]
        t0 = time.perf_counter()
        start = client.post(
            "/api/v1/media/uploads",
            headers=headers,
            json={
                "resource_id": content_ids[n],
                "filename": "基准课.mp4",
                "size": size,
                "checksum": checksum,
            },
        )
        assert start.status_code == 201, start.get_json()
        upload = start.get_json()
        urls = dict(upload["part_urls"])
        missing = [n for n in range(1, upload["part_count"] + 1) if str(n) not in urls]
        for i in range(0, len(missing), 500):
            more = client.post(
                f"/api/v1/media/uploads/{upload['id']}/parts",
                headers=headers,
                json={"part_numbers": missing[i : i + 500]},
            ).get_json()
            urls.update(more["part_urls"])

        def send(number: int) -> dict:
            with open(source, "rb") as handle:
                handle.seek((number - 1) * upload["part_size"])
                data = handle.read(upload["part_size"])
            answer = session.put(urls[str(number)], data=data, timeout=300)
            answer.raise_for_status()
            return {"part_number": number, "etag": answer.headers["ETag"].strip('"')}

        with ThreadPoolExecutor(args.threads) as pool:
            parts = list(pool.map(send, range(1, upload["part_count"] + 1)))
        t_parts = time.perf_counter() - t0
        with profiled(args, "complete"):
            done = client.post(
                f"/api/v1/media/uploads/{upload['id']}/complete",
                headers=headers,
                json={"parts": parts},
            )
        t_accepted = time.perf_counter() - t0
        state = done.get_json()
        assert done.status_code in (200, 202), state
        # In production verification is a background job (202 "verifying"); the upload
        # counts as done once the page's poll sees it verified and attached.
        while state["state"] == "verifying":
            time.sleep(0.02)
            state = client.get(f"/api/v1/media/uploads/{upload['id']}", headers=headers).get_json()
        assert state["state"] == "complete", state
        total = time.perf_counter() - t0
        # Derivatives (poster frame, duration: ffmpeg) follow in the pool; they are not
        # part of the upload, and must not share the CPU with the next measurements.
        jobs.drain(app, timeout=600)
        return {
            "parts": t_parts,
            "accepted": t_accepted,
            "total": total,
            "attachment_id": state["attachment_id"],
        }

    raws: list[float] = []
    ours: list[dict] = []
    for n in range(rounds):
        for which in ("raw", "ours") if n % 2 == 0 else ("ours", "raw"):
            if which == "raw":
                raws.append(raw_upload(n))
            else:
                ours.append(shuyuan_upload(n))
    raw_up = sum(raws) / rounds
    t_parts = sum(run["parts"] for run in ours) / rounds
    t_accepted = sum(run["accepted"] for run in ours) / rounds
    shuyuan_up = sum(run["total"] for run in ours) / rounds
    attachment_id = ours[-1]["attachment_id"]
    if rounds > 1:
        print(
            "upload rounds (s): raw "
            + ", ".join(f"{value:.2f}" for value in raws)
            + "; Shuyuan "
            + ", ".join(f"{run['total']:.2f}" for run in ours)
        )
    if True:
        t0 = time.perf_counter()
        response = raw.get_object(bucket, "raw/lesson-0.mp4")
        got = sum(len(c) for c in response.stream(1024 * 1024))
        response.close()
        response.release_conn()
        raw_down = time.perf_counter() - t0
        assert got == size

        t0 = time.perf_counter()
        delivery = client.get(f"/api/v1/media/{attachment_id}/url", headers=headers).get_json()
        with session.get(delivery["url"], stream=True, timeout=300) as answer:
            answer.raise_for_status()
            got = sum(len(c) for c in answer.iter_content(1024 * 1024))
        shuyuan_down = time.perf_counter() - t0
        assert got == size

        # --- presigned URL issuance with authorisation, one thread
        for _ in range(50):
            client.get(f"/api/v1/media/{attachment_id}/url", headers=headers)
        n = args.presign_requests
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        for _ in range(n):
            answer = client.get(f"/api/v1/media/{attachment_id}/url", headers=headers)
            assert answer.status_code == 200
        presign_rate = n / (time.perf_counter() - t0)
        presign_cpu_ms = (time.process_time() - cpu0) / n * 1000
        floor = {}
        for label, sent in (("bearer", headers), ("anonymous", {})):
            t0 = time.perf_counter()
            for _ in range(n):
                assert client.get("/bench/empty", headers=sent).status_code == 200
            floor[label] = n / (time.perf_counter() - t0)
        with profiled(args, "presign"):
            for _ in range(n):
                client.get(f"/api/v1/media/{attachment_id}/url", headers=headers)
        from app.accounts.models import User
        from app.media import services

    with app.test_request_context():
        user = db.session.get(User, teacher_id)
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        for _ in range(n):
            services.delivery_url(user, attachment_id)
        service_rate = n / (time.perf_counter() - t0)
        service_cpu_ms = (time.process_time() - cpu0) / n * 1000

    def row(label: str, seconds: float, raw_seconds: float | None = None, note: str = "") -> None:
        ratio = f"  ratio {raw_seconds / seconds:.2f} of raw" if raw_seconds else ""
        print(f"{label:<38} {mbps(size, seconds):8.1f} MB/s ({seconds:6.1f} s){ratio}{note}")

    print()
    row("upload   raw minio fput_object", raw_up)
    row("upload   Shuyuan: part PUTs only", t_parts, raw_up)
    row(
        "upload   Shuyuan: incl. verification",
        shuyuan_up,
        raw_up,
        f"  (complete + SHA-256 read-back: {shuyuan_up - t_parts:.1f} s; "
        f"202 verifying after {t_accepted:.1f} s)",
    )
    row("download raw minio get_object", raw_down)
    row("download Shuyuan: URL + presigned GET", shuyuan_down, raw_down)
    print(
        f"presigned URL issuance, HTTP API, 1 thread, bearer + can_view: {presign_rate:8.0f} req/s"
        f"  (CPU {presign_cpu_ms:.2f} ms/request)"
    )
    print(
        f"empty route of the same app, 1 thread: {floor['bearer']:8.0f} req/s with the bearer "
        f"token, {floor['anonymous']:8.0f} req/s anonymous"
    )
    print(
        f"presigned URLs, service call only (can_view + presign): {service_rate:8.0f} /s"
        f"  (CPU {service_cpu_ms:.2f} ms/call)"
    )
    t0 = time.perf_counter()
    for _ in range(n):
        raw.presigned_get_object(bucket, "raw/lesson-0.mp4")
    bare_presign_rate = n / (time.perf_counter() - t0)
    print(f"presigned URLs, bare minio presigned_get_object: {bare_presign_rate:8.0f} /s")
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "size": size,
        "raw_up": raw_up,
        "parts_up": t_parts,
        "shuyuan_up": shuyuan_up,
        "accepted_up": t_accepted,
        "raw_down": raw_down,
        "shuyuan_down": shuyuan_down,
        "presign_rate": presign_rate,
        "presign_cpu_ms": presign_cpu_ms,
        "empty_bearer_rate": floor["bearer"],
        "empty_anonymous_rate": floor["anonymous"],
        "service_rate": service_rate,
        "bare_presign_rate": bare_presign_rate,
    }


# --- presigned URLs over HTTP (issue 14: >= 1,000/s, 2 gunicorn workers, PostgreSQL) -------


def _presign_app(database_url: str, storage_url: str, redis_url: str | None):
    """(instance folder, app) for the presign bench on ``database_url``."""
    from app import create_app

    workdir = tempfile.mkdtemp(prefix="shuyuan-bench-presign-")
    config = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_PATH": workdir,
        "SECRET_KEY": "bench",
        "STORAGE_URL": storage_url,
        "REDIS_URL": redis_url,
        "SEARCH_INDEX_DIR": str(Path(workdir) / "search"),
    }
    return workdir, create_app(config)


def _seed_presign(database_url: str, storage_url: str) -> tuple[str, str]:
    """A teacher, her resource with one S3 object attached, and a bearer token, committed
    in ``database_url``; returns (attachment public id, raw token)."""
    from app.accounts import services as accounts
    from app.catalog import services as catalog
    from app.catalog.models import Resource
    from app.common.events import commit
    from app.extensions import db
    from app.media.models import MediaAttachment, MediaObject
    from bench.common import seed_school_people

    workdir, app = _presign_app(database_url, storage_url, None)
    with app.app_context():
        db.create_all()
        teacher = seed_school_people()[2]
        resource = catalog.create_content(
            teacher, Resource, {"kind": "video", "title": "基准", "visibility": "region"}
        )
        obj = MediaObject(
            backend="s3:" + urlsplit(storage_url).path.strip("/"),
            key="sha256/ab/" + "ab" * 32,
            size=64 * 1024 * 1024,
            checksum="ab" * 32,
            media_type="video/mp4",
        )
        db.session.add(obj)
        db.session.flush()
        db.session.add(
            MediaAttachment(
                resource_id=resource.id, object_id=obj.id, filename="基准课.mp4", role="primary"
            )
        )
        commit()
        _, raw_token = accounts.issue_token(teacher, "bench")
        commit()
        attachment_id = db.session.execute(db.select(MediaAttachment.public_id)).scalar_one()
        db.engine.dispose()
    shutil.rmtree(workdir, ignore_errors=True)
    return attachment_id, raw_token


class _Server:
    """``gunicorn -c deploy/gunicorn.conf.py`` (gthread, 4 threads a worker, as in
    production) with ``workers`` workers on ``port``, access log to /dev/null."""

    def __init__(self, app_module: str, port: int, env: dict, root: str | None = None):
        from bench.common import PROJECT_ROOT

        root = Path(root or PROJECT_ROOT)
        self.base = f"http://127.0.0.1:{port}"
        command = [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            str(root / "deploy" / "gunicorn.conf.py"),
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            app_module,
        ]
        self.log = tempfile.NamedTemporaryFile(prefix="shuyuan-bench-gunicorn-")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            cwd=root,
            env={**os.environ, "PYTHONPATH": f"{root}:{root}/plugins", **env},
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

    def wait(self, path: str, headers: dict) -> None:
        for _ in range(300):
            if self.process.poll() is not None:
                raise RuntimeError(Path(self.log.name).read_text()[-3000:])
            with contextlib.suppress(requests.RequestException):
                answer = requests.get(self.base + path, headers=headers, timeout=2)
                if answer.status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.base}{path} did not answer 200")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def _wrk(url: str, headers: dict, seconds: float, connections: int) -> dict:
    """``wrk -t1`` (one client thread, event loop) for ``seconds``: requests, rate, errors,
    and the client's own CPU seconds (it shares the 2 cores with the server)."""
    import re
    import resource

    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    count, took = int(found.group(1)), float(found.group(2))
    took = took / 1000 if found.group(3) == "ms" else took
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "requests": count,
        "rate": count / took,
        "errors": int(bad.group(1)) if bad else 0,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "client_cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    }


def presign_http(args) -> dict:
    """``GET /api/v1/media/<id>/url`` with a bearer token over HTTP, ``wrk`` against
    ``gunicorn -w 2`` (deploy/gunicorn.conf.py) on PostgreSQL, beside the bare baseline
    (bench/presign_bare.py) in the same run, without and with Redis; the three servers
    run side by side and are measured in turn, ``rounds`` times.  Returns the best round
    of each (req/s, server CPU ms per request incl. PostgreSQL backends)."""
    from bench.common import CpuMeter, throwaway_postgres

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian: apt-get install wrk)")
    port = getattr(args, "http_port", 0)
    redis_url = (
        getattr(args, "redis_url", None)
        or os.environ.get("BENCH_REDIS_URL")
        or "redis://127.0.0.1:6379/10"
    )
    storage_url = "s3://bench:benchsecret@127.0.0.1:9/bench-presign?secure=false"
    seconds, connections = args.seconds, args.connections
    with throwaway_postgres() as database_url:
        attachment_id, token = _seed_presign(database_url, storage_url)
        path = f"/api/v1/media/{attachment_id}/url"
        headers = {"Authorization": f"Bearer {token}"}
        common = {
            "DATABASE_URL": database_url,
            "STORAGE_URL": storage_url,
            "SECRET_KEY": "bench",
            "SHUYUAN_WEB_WORKERS": "2",
            "SHUYUAN_PLUGINS": "",
            "REDIS_URL": "",
        }
        instance = tempfile.mkdtemp(prefix="shuyuan-bench-presign-instance-")
        specs = {
            "bare": (
                "bench.presign_bare:app",
                {
                    "BENCH_DATABASE_URL": database_url,
                    "BENCH_TOKEN": token,
                    "BENCH_STORAGE_URL": storage_url,
                },
            ),
            "shuyuan": ("wsgi:app", {**common, "SHUYUAN_INSTANCE_PATH": instance + "/a"}),
            "shuyuan+redis": (
                "wsgi:app",
                {**common, "SHUYUAN_INSTANCE_PATH": instance + "/b", "REDIS_URL": redis_url},
            ),
        }
        before = getattr(args, "before", None)
        if before:  # the same app from another checkout (e.g. git archive of main)
            for label in ("shuyuan", "shuyuan+redis"):
                module, env = specs[label]
                instance_path = env["SHUYUAN_INSTANCE_PATH"] + "-before"
                specs[f"before:{label}"] = (
                    module,
                    {**env, "_ROOT": before, "SHUYUAN_INSTANCE_PATH": instance_path},
                )
        only = getattr(args, "only", None)
        if only:
            specs = {k: v for k, v in specs.items() if k in only}
        servers = {}
        try:
            for offset, (label, (module, env)) in enumerate(specs.items()):
                env = dict(env)
                root = env.pop("_ROOT", None)
                servers[label] = _Server(module, port + offset if port else free_port(), env, root)
            for label, server in servers.items():
                server.wait(path, headers)
                print(f"{label}: {server.base} (pid {server.process.pid})", flush=True)
            results: dict[str, dict] = {}
            for round_ in range(args.rounds):
                for label, server in servers.items():
                    _wrk(server.base + path, headers, 2, connections)  # warm-up
                    meter = CpuMeter(server.process.pid, database_url).start()
                    app_meter = CpuMeter(server.process.pid).start()
                    got = _wrk(server.base + path, headers, seconds, connections)
                    done = max(got["requests"], 1)
                    got["app_cpu_ms"] = app_meter.stop() / done * 1000
                    got["server_cpu_ms"] = meter.stop() / done * 1000
                    got["load"] = os.getloadavg()[0]
                    print(
                        f"round {round_ + 1} {label:<21} {got['rate']:7.0f} req/s  CPU/req: "
                        f"{got['server_cpu_ms']:.2f} ms (gunicorn {got['app_cpu_ms']:.2f})  "
                        f"p99 {got['p99_ms']:.1f} ms  "
                        f"non-2xx {got['errors']}  wrk CPU {got['client_cpu']:.1f} s  "
                        f"load {got['load']:.1f}",
                        flush=True,
                    )
                    best = results.get(label)
                    if best is None or got["rate"] > best["rate"]:
                        results[label] = got
            if "bare" in servers:
                empty = _wrk(servers["bare"].base + "/empty", {}, seconds, connections)
                results["bare_empty"] = empty
                print(f"bare /empty (gunicorn + Flask floor): {empty['rate']:.0f} req/s")
        finally:
            for server in servers.values():
                server.stop()
            shutil.rmtree(instance, ignore_errors=True)
    return results


def presign_profile(args) -> None:
    """pyinstrument of ``GET /api/v1/media/<id>/url`` in-process (test client, one thread)
    on a throwaway PostgreSQL database, without and with Redis (``--redis-url``); writes
    DIR/presign-http-{local,redis}.txt and prints statements per request."""
    from sqlalchemy import event

    from app.extensions import db
    from bench.common import throwaway_postgres

    storage_url = "s3://bench:benchsecret@127.0.0.1:9/bench-presign?secure=false"
    with throwaway_postgres() as database_url:
        attachment_id, token = _seed_presign(database_url, storage_url)
        headers = {"Authorization": f"Bearer {token}"}
        shared = args.redis_url or os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/10"
        for name, redis_url in (("local", None), ("redis", shared)):
            workdir, app = _presign_app(database_url, storage_url, redis_url)
            client = app.test_client()
            url = f"/api/v1/media/{attachment_id}/url"
            for _ in range(200):
                assert client.get(url, headers=headers).status_code == 200
            with app.app_context():
                engine = db.engine
            statements: list[str] = []

            def record(conn, cursor, statement, *rest, seen=statements):
                seen.append(statement)

            event.listen(engine, "before_cursor_execute", record)
            client.get(url, headers=headers)
            event.remove(engine, "before_cursor_execute", record)
            n = args.presign_requests
            cpu0 = time.process_time()
            with profiled(args, f"presign-http-{name}"):
                for _ in range(n):
                    client.get(url, headers=headers)
            cpu = (time.process_time() - cpu0) / n * 1000
            print(f"{name}: {len(statements)} statements/request, CPU {cpu:.2f} ms/request")
            with app.app_context():
                db.engine.dispose()
            shutil.rmtree(workdir, ignore_errors=True)


def table_rows(full: bool) -> list:
    """The media rows of ``python -m bench`` (bench/table.py): upload and download against
    moto S3 in its own process; presigned URLs over HTTP (wrk, gunicorn -w 2, PostgreSQL)."""
    from types import SimpleNamespace

    from bench.table import Row

    size_mb, seconds = (256, 20) if full else (64, 10)
    load_before = os.getloadavg()[0]
    got = run(SimpleNamespace(size=size_mb, threads=4, presign_requests=400, upload_rounds=2))
    load = f"load average {load_before:.1f}->{os.getloadavg()[0]:.1f}"
    size = got["size"]
    label = f"{size_mb} MiB file, moto S3"

    def versus_raw(path: str, ours: float, raw: float, raw_label: str, note: str) -> Row:
        figure, baseline = mbps(size, ours), mbps(size, raw)
        return Row(
            path=path,
            figure=figure,
            unit="MB/s",
            baseline=baseline,
            baseline_label=raw_label,
            target=">= 0.9x raw",
            met=figure >= 0.9 * baseline,
            size=label,
            note=note,
        )

    rows = [
        versus_raw(
            "S3 upload incl. verification (API + presigned part PUTs + complete + verify)",
            got["shuyuan_up"],
            got["raw_up"],
            "raw minio fput_object, same server",
            f"part PUTs alone {mbps(size, got['parts_up']):.0f} MB/s; verification "
            f"{got['shuyuan_up'] - got['parts_up']:.1f} s (moto assembling the parts, as in "
            f"the baseline, and the read-back for SHA-256; a background job, the upload answered "
            f"202 verifying after {got['accepted_up']:.1f} s); {load}",
        ),
        versus_raw(
            "S3 download (API URL + presigned GET)",
            got["shuyuan_down"],
            got["raw_down"],
            "raw minio get_object",
            load,
        ),
    ]
    load_before = os.getloadavg()[0]
    http = presign_http(SimpleNamespace(seconds=seconds, connections=8, rounds=2))
    load = f"load average {load_before:.1f}->{os.getloadavg()[0]:.1f}"
    bare = http["bare"]
    for name, redis in (("shuyuan", "without Redis"), ("shuyuan+redis", "with Redis")):
        ours = http[name]
        rows.append(
            Row(
                path="presigned URL issuance, GET /api/v1/media/<id>/url, bearer auth "
                f"(HTTP, wrk -t1 -c8, gunicorn -w 2 gthread, PostgreSQL, {redis})",
                figure=ours["rate"],
                unit="req/s",
                baseline=bare["rate"],
                baseline_label="bare Flask route, same gunicorn: fixed token, same SELECT, "
                "same presign",
                target=">= 1000 req/s",
                met=ours["rate"] >= 1000,
                size=f"{seconds} s x 2 rounds, best",
                note=f"server CPU {ours['server_cpu_ms']:.2f} ms/request (bare "
                f"{bare['server_cpu_ms']:.2f}), incl. PostgreSQL; in-process service call "
                f"(can_view + presign) {got['service_rate']:.0f}/s; {load}",
            )
        )
    return rows


if __name__ == "__main__":
    main()
