"""Media test fixtures: a moto S3 server on 127.0.0.1 (real HTTP, real minio SDK), a
``storage`` fixture that runs a test on the local folder AND on S3, and helpers to make
users, resources and uploads."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from app.catalog import services as catalog
from app.catalog.models import Resource
from app.common.events import commit
from app.extensions import db


def _free_port() -> int:
    """A free port; within ``SHUYUAN_TEST_PORTS`` ("23100-23199") when that is set (a
    machine shared by several test runs gives each its own range)."""
    span = os.environ.get("SHUYUAN_TEST_PORTS", "")
    if span:
        low, high = (int(p) for p in span.split("-"))
        for port in range(low, high + 1):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise RuntimeError(f"no free port in SHUYUAN_TEST_PORTS={span}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["file", "s3"])
def storage(request, app, tmp_path):
    """Point the app at a fresh local folder or a fresh bucket on the moto server."""
    if request.param == "file":
        url = f"file://{tmp_path}/media"
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        url = f"s3://testing:testing@{endpoint}/media-{uuid.uuid4().hex[:12]}?secure=false"
    old = app.config["STORAGE_URL"]
    app.config["STORAGE_URL"] = url
    with app.app_context():
        from app.media.storage import get_storage

        backend = get_storage()
        if request.param == "s3":
            backend.ensure_bucket()
    yield backend
    app.config["STORAGE_URL"] = old


@pytest.fixture
def teacher(make_user):
    return make_user("teacher")


@pytest.fixture
def make_resource(ctx):
    def make(user, kind="video", title="测试资源", publish=False, **extra):
        # An upload's job (run inline in tests) replaces the session: re-attach the user.
        user = db.session.merge(user)
        resource = catalog.create_content(
            user, Resource, {"kind": kind, "title": title, "visibility": "school", **extra}
        )
        commit()
        if publish:
            catalog.submit_content(user, Resource, resource.content_id)
            commit()
        return resource.content_id

    return make


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def webm_clip(path: Path, seconds: int = 3, size: str = "160x120") -> Path:
    """A real WebM video of ffmpeg's test picture (``make system-deps`` installs ffmpeg):
    for what must decode — posters, durations, players, the walkthrough's upload."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=10",
         "-t", str(seconds), "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
         "-b:v", "80k", str(path)],
        check=True,
        timeout=120,
    )  # fmt: skip
    return path


def webm_bytes(size: int = 4096) -> bytes:
    """Bytes that sniff as WebM (EBML header) padded to ``size``."""
    head = (
        b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
        b"\x42\x82\x84webm"
    )
    return head + bytes(size - len(head))


def mp4_bytes(size: int = 4096, seed: bytes = b"") -> bytes:
    head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + seed
    body = (hashlib.sha256(seed).digest() * (size // 32 + 1))[: size - len(head)]
    return head + body


def put(client, url: str, data: bytes):
    """PUT bytes to an upload URL: Flask test client for local URLs, real HTTP for S3."""
    if url.startswith("http://localhost/"):
        return client.put(url[len("http://localhost") :], data=data)
    return requests.put(url, data=data, timeout=60)


def start_upload(client, headers, content_id, name, data, checksum=None):
    """``POST /api/v1/media/uploads`` for ``data`` as file ``name`` of resource
    ``content_id``; ``checksum``: True for the SHA-256 of ``data``, or the one to send
    (none sent by default).  Returns the response."""
    body = {"resource_id": content_id, "filename": name, "size": len(data)}
    if checksum is not None:
        body["checksum"] = sha(data) if checksum is True else checksum
    return client.post("/api/v1/media/uploads", headers=headers, json=body)


def send_parts(client, upload: dict, data: bytes) -> list[dict]:
    """PUT every part of a multipart upload to its URL; the parts list for ``complete``."""
    sent = []
    for number in range(1, upload["part_count"] + 1):
        chunk = data[(number - 1) * upload["part_size"] : number * upload["part_size"]]
        result = put(client, upload["part_urls"][str(number)], chunk)
        assert result.status_code == 200
        sent.append({"part_number": number, "etag": result.headers.get("ETag", "").strip('"')})
    return sent


def upload_file(client, headers, content_id, name, data, checksum=True, parts=None):
    """Whole upload flow through the API; returns the last JSON answer and status."""
    response = start_upload(client, headers, content_id, name, data, checksum)
    if response.status_code != 201:
        return response
    upload = response.get_json()
    if upload["mode"] == "single":
        result = put(client, upload["url"], data)
        assert result.status_code == 200, (
            result.text if isinstance(result, requests.Response) else result.data
        )
        sent = [{"part_number": 1}]
    else:
        sent = send_parts(client, upload, data)
    response = client.post(
        f"/api/v1/media/uploads/{upload['id']}/complete",
        headers=headers,
        json={"parts": parts if parts is not None else sent},
    )
    # The derivatives job ran inline after the commit and ended the session: the user
    # Flask-Login cached in this shared app context is detached now.
    return response


__all__ = ["db", "sha", "webm_bytes", "mp4_bytes", "put", "start_upload", "upload_file"]


@pytest.fixture(autouse=True)
def _small_single_put(request, monkeypatch):
    """Files over 1 MiB go multipart in these tests (the default threshold is 16 MiB)."""
    if "app" in request.fixturenames:
        application = request.getfixturevalue("app")
        monkeypatch.setitem(application.config, "MEDIA_SINGLE_PUT_MAX_BYTES", 1024 * 1024)
