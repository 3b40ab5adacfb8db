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
import socket
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
    args = parser.parse_args()
    run(args)


def run(args) -> dict:
    """The whole benchmark (``args``: size, threads, presign_requests); prints the
    figures and returns them (seconds, rates) for :func:`table_rows`."""

    import logging
    import subprocess

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
    source = workdir / "lesson.mp4"
    print(f"writing {args.size} MB test file ...", flush=True)
    checksum = make_file(source, args.size)
    size = source.stat().st_size
    print(
        f"moto S3 server 127.0.0.1:{port}; file {size / 1024 / 1024:.0f} MB; "
        f"part {PART // 1024 // 1024} MB; "
        f"{args.threads} client threads; {os.cpu_count()} CPUs"
    )

    with app.app_context():
        db.create_all()
        region = accounts.ensure_region("r", "市", "City")
        district = accounts.ensure_district(region, "d", "区", "District")
        school = accounts.ensure_school(district, "s", "校", "School")
        teacher = accounts.create_user("t@example.test", "T", "password123", school=school)
        accounts.assign_role(teacher, Role.TEACHER, school=school)
        commit()
        resource = catalog.create_content(
            teacher, Resource, {"kind": "video", "title": "基准", "visibility": "region"}
        )
        commit()
        content_id = resource.content_id
        _, raw_token = accounts.issue_token(teacher, "bench")
        commit()
        teacher_id = teacher.id
    # Requests run outside this context so that each gets its own, as in a real worker.
    headers = {"Authorization": f"Bearer {raw_token}"}
    # The floor of any request to this app: the same hooks (request id, bearer check,
    # commit, security headers), no database work of its own and no presign.
    app.add_url_rule("/bench/empty", "bench_empty", lambda: {"ok": True})
    client = app.test_client()
    if True:
        raw = Minio(f"127.0.0.1:{port}", "bench", "bench", secure=False, region="us-east-1")
        if not raw.bucket_exists(bucket):
            raw.make_bucket(bucket)

        # --- raw SDK upload / download
        t0 = time.perf_counter()
        raw.fput_object(
            bucket, "raw/lesson.mp4", str(source), part_size=PART, num_parallel_uploads=args.threads
        )
        raw_up = time.perf_counter() - t0
        t0 = time.perf_counter()
        response = raw.get_object(bucket, "raw/lesson.mp4")
        got = sum(len(c) for c in response.stream(1024 * 1024))
        response.close()
        response.release_conn()
        raw_down = time.perf_counter() - t0
        assert got == size

        # --- Shuyuan flow
        t0 = time.perf_counter()
        start = client.post(
            "/api/v1/media/uploads",
            headers=headers,
            json={
                "resource_id": content_id,
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
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=args.threads * 2))

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
        shuyuan_up = time.perf_counter() - t0
        attachment_id = state["attachment_id"]
        # Derivatives (poster frame, duration: ffmpeg) follow in the pool; they are not
        # part of the upload, and must not share the CPU with the next measurements.
        from app import jobs

        jobs.drain(app, timeout=600)

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
        raw.presigned_get_object(bucket, "raw/lesson.mp4")
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


def table_rows(full: bool) -> list:
    """The media rows of ``python -m bench`` (bench/table.py), moto S3 in its own process."""
    from types import SimpleNamespace

    from bench.table import Row

    size_mb, presigns = (256, 2000) if full else (64, 400)
    load_before = os.getloadavg()[0]
    got = run(SimpleNamespace(size=size_mb, threads=4, presign_requests=presigns))
    load = f"load average {load_before:.1f}->{os.getloadavg()[0]:.1f}"
    size = got["size"]
    up, raw_up = mbps(size, got["shuyuan_up"]), mbps(size, got["raw_up"])
    down, raw_down = mbps(size, got["shuyuan_down"]), mbps(size, got["raw_down"])
    label = f"{size_mb} MiB file, moto S3"
    return [
        Row(
            path="S3 upload incl. verification (API + presigned part PUTs + complete + verify)",
            figure=up,
            unit="MB/s",
            baseline=raw_up,
            baseline_label="raw minio fput_object, same server",
            target=">= 0.9x raw",
            met=up >= 0.9 * raw_up,
            size=label,
            note=f"part PUTs alone {mbps(size, got['parts_up']):.0f} MB/s; verification "
            f"{got['shuyuan_up'] - got['parts_up']:.1f} s (moto assembling the parts, as in "
            f"the baseline, and the read-back for SHA-256; a background job, the upload answered "
            f"202 verifying after {got['accepted_up']:.1f} s); {load}",
        ),
        Row(
            path="S3 download (API URL + presigned GET)",
            figure=down,
            unit="MB/s",
            baseline=raw_down,
            baseline_label="raw minio get_object",
            target=">= 0.9x raw",
            met=down >= 0.9 * raw_down,
            size=label,
            note=load,
        ),
        Row(
            path="presigned URL issuance, GET /api/v1/media/<id>/url, bearer auth "
            "(WSGI in-process, 1 thread = one worker)",
            figure=got["presign_rate"],
            unit="req/s",
            baseline=got["bare_presign_rate"],
            baseline_label="bare minio presigned_get_object, no HTTP/auth/DB",
            target=">= 1000 req/s",
            met=got["presign_rate"] >= 1000,
            size=f"{presigns} requests",
            note=f"service call alone (can_view + presign) {got['service_rate']:.0f}/s; "
            f"empty route of the same app with the bearer token {got['empty_bearer_rate']:.0f}/s, "
            f"anonymous {got['empty_anonymous_rate']:.0f}/s; {load}",
        ),
    ]


if __name__ == "__main__":
    main()
