"""Where an S3 upload with verification spends its time, call by call (issue 14).

    .venv/bin/python bench/media_steps.py --size 64 --runs 5 [--port 8520]

Against ``moto_server`` in its own process, ``--runs`` times in turn: the raw baseline
(``minio.fput_object``: its part PUTs and moto assembling them), then the calls Shuyuan's
upload makes, each timed alone: presigned part PUTs (4 threads), ``ListParts`` (the
complete request's check), ``CompleteMultipartUpload`` (moto assembling, as in the
baseline), the HEAD that names the version, the ``If-Match`` GET hashed with SHA-256 as
verification does it (``_prefetched``), the HEAD after it; then, to split the read-back,
the same GET without hashing and ``hashlib.sha256`` of the bytes in memory.  For the
read-back also the time to its first byte (moto reads the whole object from its spool file
before it sends any of it) and the CPU seconds of this process and of ``moto_server``
(``/proc``, 10 ms ticks).  Prints the median of each and the ratio raw ÷ ours.  No
database, no Flask: the job's statements and the client's poll are what
``bench/media.py`` adds on top.  A profiler, not a row of ``python -m bench``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PART = 8 * 1024 * 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` so far (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="MiB, a multiple of 8")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    import requests
    from minio import Minio

    from app.media.services.verification import VERIFY_CHUNK, _prefetched
    from app.media.storage.s3 import S3Storage

    port = args.port
    if not port:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        data = os.urandom(args.size * 1024 * 1024)
        handle, name = tempfile.mkstemp(prefix="shuyuan-media-steps-", suffix=".bin")
        os.close(handle)
        path = Path(name)
        path.write_bytes(data)
        raw = Minio(f"127.0.0.1:{port}", "steps", "steps", secure=False, region="us-east-1")
        raw.make_bucket("steps")
        storage = S3Storage(f"s3://steps:steps@127.0.0.1:{port}/steps?secure=false")
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=8))
        times: dict[str, list[float]] = {}

        def took(label: str, since: float) -> float:
            now = time.perf_counter()
            times.setdefault(label, []).append(now - since)
            return now

        for run in range(args.runs):
            began = time.perf_counter()
            raw.fput_object(
                "steps", f"raw-{run}", str(path), part_size=PART, num_parallel_uploads=4
            )
            took("raw fput_object (part PUTs + moto assembling)", began)
            key = f"ours-{run}"
            began = time.perf_counter()
            token = storage.start_upload(key, "video/mp4")
            count = len(data) // PART
            urls = {n: storage.part_url(key, token, n, PART, 3600) for n in range(1, count + 1)}

            def put(number: int, urls=urls) -> None:
                body = data[(number - 1) * PART : number * PART]
                session.put(urls[number], data=body, timeout=300).raise_for_status()

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(put, range(1, count + 1)))
            now = took("ours: start + presigned part PUTs (4 threads)", began)
            parts = storage.list_parts(key, token)
            now = took("ours: ListParts", now)
            storage.complete_upload(key, token, parts)
            now = took("ours: CompleteMultipartUpload (moto assembling)", now)
            version = storage.fingerprint(key)[1]
            now = took("ours: HEAD (size, ETag)", now)
            digest = hashlib.sha256()
            client_cpu, server_cpu, first = time.process_time(), cpu_seconds(server.pid), None
            with _prefetched(storage.read_version(key, version, VERIFY_CHUNK)) as blocks:
                for block in blocks:
                    if first is None:
                        first = time.perf_counter()
                    digest.update(block)
            began_read, now = now, took("ours: GET If-Match + SHA-256 (as verification)", now)
            times.setdefault("  of which: to the first byte (moto reads the object)", []).append(
                first - began_read
            )
            times.setdefault("  CPU: this process (receive + hash)", []).append(
                time.process_time() - client_cpu
            )
            times.setdefault("  CPU: moto_server (read its file + send)", []).append(
                cpu_seconds(server.pid) - server_cpu
            )
            storage.fingerprint(key)
            now = took("ours: HEAD after the read", now)
            times.setdefault("ours: total", []).append(now - began)
            deque(storage.read_version(key, version, VERIFY_CHUNK), maxlen=0)  # read, drop
            now = took("split: the same GET, not hashed", now)
            cpu = time.process_time()
            hashlib.sha256(data).digest()
            took("split: SHA-256 of the bytes in memory", now)
            times.setdefault("  CPU of that SHA-256", []).append(time.process_time() - cpu)
            print(f"run {run + 1}: load average {os.getloadavg()[0]:.1f}", flush=True)
        path.unlink()
        for label, values in times.items():
            each = ", ".join(f"{value:.2f}" for value in values)
            print(f"{label:<52} median {statistics.median(values):7.3f} s  ({each})")
        ratio = statistics.median(times["raw fput_object (part PUTs + moto assembling)"])
        ratio /= statistics.median(times["ours: total"])
        print(f"raw / ours (medians): {ratio:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
