"""Uploads through the production server: gunicorn with two workers, started by the test
on a free port, sharing the test's database, local-folder storage, background jobs on
the workers' thread pools (not inline).  Werkzeug's test client and development server
never showed that every local PUT failed with 413 under gunicorn."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.media.conftest import _free_port, mp4_bytes, webm_bytes

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(condition, timeout: float, what: str):
    """Poll ``condition`` until it returns a true value (a condition, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def gunicorn_site(app, database_url, tmp_path):
    port = _free_port()
    instance = tmp_path / "instance"
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": app.config["SECRET_KEY"],
        "SHUYUAN_INSTANCE_PATH": str(instance),
        "STORAGE_URL": f"file://{tmp_path}/media",
        "SEARCH_INDEX_DIR": str(instance / "search-index"),
        "SHUYUAN_MEDIA_SINGLE_PUT_MAX_BYTES": str(1024 * 1024),
        "REDIS_URL": "",
    }
    with open(log, "wb") as out:
        server = subprocess.Popen(  # noqa: S603  (fixed command line)
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "120",
                "--graceful-timeout",
                "5",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def up():
        if server.poll() is not None:
            raise AssertionError("gunicorn exited:\n" + log.read_text()[-3000:])
        try:
            return requests.get(f"{base}/healthz", timeout=10).status_code == 200
        except requests.RequestException:  # not listening yet, or still importing the app
            return False

    try:
        _wait_for(up, 90, "gunicorn to answer")
        yield base, log
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _upload(base: str, headers: dict, content_id: str, name: str, data: bytes) -> dict:
    answer = requests.post(
        f"{base}/api/v1/media/uploads",
        headers=headers,
        json={
            "resource_id": content_id,
            "filename": name,
            "size": len(data),
            "checksum": hashlib.sha256(data).hexdigest(),
        },
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    upload = answer.json()
    sent = []
    if upload["mode"] == "single":
        put = requests.put(upload["url"], data=data, timeout=60)
        assert put.status_code == 200, put.text
        sent.append({"part_number": 1})
    else:
        size = upload["part_size"]
        for number in range(1, upload["part_count"] + 1):
            chunk = data[(number - 1) * size : number * size]
            put = requests.put(upload["part_urls"][str(number)], data=chunk, timeout=60)
            assert put.status_code == 200, put.text
            sent.append({"part_number": number, "etag": put.headers["ETag"].strip('"')})
    done = requests.post(
        f"{base}/api/v1/media/uploads/{upload['id']}/complete",
        headers=headers,
        json={"parts": sent},
        timeout=60,
    )
    # Background jobs here: the answer is 202 while the worker verifies.
    assert done.status_code in (200, 202), done.text

    def finished():
        state = requests.get(
            f"{base}/api/v1/media/uploads/{upload['id']}", headers=headers, timeout=30
        ).json()
        return state if state["state"] in ("complete", "failed") else None

    return _wait_for(finished, 120, f"verification of {name}")


@pytest.mark.parametrize("kind", ["single", "multipart"])
def test_local_uploads_work_under_gunicorn(gunicorn_site, teacher, make_resource, token_for, kind):
    base, log = gunicorn_site
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    # single: under the 1 MiB single-PUT limit; multipart: 8 MiB + 1 MiB parts.
    data = webm_bytes(300_000) if kind == "single" else mp4_bytes(9 * 1024 * 1024, b"gunicorn")
    state = _upload(base, headers, content_id, f"课堂-{kind}.bin", data)
    assert state["state"] == "complete", (state, log.read_text()[-3000:])
    assert state["mode"] == kind and state["attachment_id"]
    # The bytes went into storage intact: served back through the signed URL.
    url = requests.get(
        f"{base}/api/v1/media/{state['attachment_id']}/url", headers=headers, timeout=30
    ).json()["url"]
    served = requests.get(url, timeout=60)
    assert served.status_code == 200 and served.content == data


def test_oversize_part_is_413_under_gunicorn(gunicorn_site, teacher, make_resource, token_for):
    base, _ = gunicorn_site
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    data = webm_bytes(200_000)
    upload = requests.post(
        f"{base}/api/v1/media/uploads",
        headers=headers,
        json={"resource_id": content_id, "filename": "大.webm", "size": len(data)},
        timeout=30,
    ).json()
    too_big = requests.put(upload["url"], data=data + b"x" * 1000, timeout=60)
    assert too_big.status_code == 413
    exact = requests.put(upload["url"], data=data, timeout=60)
    assert exact.status_code == 200
