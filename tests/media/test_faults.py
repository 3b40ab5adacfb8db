"""Faults of the store (issue 15): a full disk under the media folder and an S3 that does
not answer give a clear 503 (Chinese or English, Retry-After), leave no row pointing at
missing bytes and no partial file, and the same upload finishes once the store is back."""

from __future__ import annotations

import errno
import socket
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.media.models import MediaObject, MediaUpload
from app.media.storage import local as storage_module
from tests.media.conftest import db, mp4_bytes, put, start_upload


class _FullDisk:
    """``open`` for app/media/storage/local.py whose files take ``room`` bytes, then fail
    with ENOSPC, as a write on a full filesystem does (the bytes before it stay on disk
    until someone removes them)."""

    def __init__(self, room: int):
        self.room = room

    def __call__(self, path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)  # noqa: SIM115 - returned to the caller
        if "w" not in mode:
            return handle
        outer = self
        real_write = handle.write

        def write(data):
            if len(data) > outer.room:
                real_write(data[: outer.room])
                handle.flush()
                outer.room = 0
                raise OSError(errno.ENOSPC, "No space left on device")
            outer.room -= len(data)
            return real_write(data)

        handle.write = write
        return handle


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _objects() -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count(MediaObject.id))).scalar_one()


def _start(client, headers, content_id, data) -> dict:
    response = start_upload(client, headers, content_id, "课.mp4", data, checksum=True)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _assert_unavailable(response, reason_words: str, retry_after: str) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["code"] == "storage_unavailable"
    assert reason_words in response.get_json()["error"]["message"]
    assert response.headers["Retry-After"] == retry_after


@pytest.fixture
def local_media(app, tmp_path):
    folder = tmp_path / "media"
    old = app.config["STORAGE_URL"]
    app.config["STORAGE_URL"] = f"file://{folder}"
    yield folder
    app.config["STORAGE_URL"] = old


def test_a_full_disk_during_an_upload_is_a_503_and_leaves_no_partial_file(
    client, local_media, teacher, make_resource, token_for, monkeypatch
):
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    data = mp4_bytes(300_000)
    upload = _start(client, headers, content_id, data)
    assert upload["mode"] == "single"
    before = _files(local_media)

    monkeypatch.setattr(storage_module, "open", _FullDisk(room=100_000), raising=False)
    answer = client.put(upload["url"][len("http://localhost") :], data=data)
    _assert_unavailable(answer, "已满", "300")
    english = client.put(
        upload["url"][len("http://localhost") :], data=data, headers={"Accept-Language": "en"}
    )
    _assert_unavailable(english, "is full", "300")
    assert _files(local_media) == before, "the partial file was removed"

    # Space again: the same upload URL works and the upload completes.
    monkeypatch.undo()
    assert put(client, upload["url"], data).status_code == 200
    done = client.post(
        f"/api/v1/media/uploads/{upload['id']}/complete",
        headers=headers,
        json={"parts": [{"part_number": 1}]},
    )
    assert done.status_code == 200 and done.get_json()["state"] == "complete"
    assert _objects() == 1


def test_a_full_disk_while_assembling_parts_records_nothing(
    app, client, local_media, teacher, make_resource, token_for, monkeypatch
):
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    data = mp4_bytes(3 * 1024 * 1024, seed=b"full")
    upload = _start(client, headers, content_id, data)
    assert upload["mode"] == "multipart"
    sent = []
    for number in range(1, upload["part_count"] + 1):
        chunk = data[(number - 1) * upload["part_size"] : number * upload["part_size"]]
        answer = put(client, upload["part_urls"][str(number)], chunk)
        sent.append({"part_number": number, "etag": answer.headers["ETag"].strip('"')})
    before = _files(local_media)

    monkeypatch.setattr(storage_module, "open", _FullDisk(room=1024 * 1024), raising=False)
    answer = client.post(
        f"/api/v1/media/uploads/{upload['id']}/complete", headers=headers, json={"parts": sent}
    )
    _assert_unavailable(answer, "已满", "300")
    assert _files(local_media) == before  # no half-assembled file; the parts are kept
    assert _objects() == 0
    db.session.expire_all()
    row = db.session.execute(select(MediaUpload).filter_by(public_id=upload["id"])).scalar_one()
    assert row.state == "pending" and row.object_id is None

    monkeypatch.undo()
    answer = client.post(
        f"/api/v1/media/uploads/{upload['id']}/complete", headers=headers, json={"parts": sent}
    )
    assert answer.status_code == 200 and answer.get_json()["state"] == "complete"
    assert _objects() == 1


def _dead_endpoint() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"  # nothing listens there once closed


def test_an_unreachable_s3_is_a_503_and_records_nothing(
    app, client, moto_endpoint, teacher, make_resource, token_for
):
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    bucket = f"media-{uuid.uuid4().hex[:12]}"
    live = f"s3://testing:testing@{moto_endpoint}/{bucket}?secure=false"
    dead = f"s3://testing:testing@{_dead_endpoint()}/{bucket}?secure=false"
    old = app.config["STORAGE_URL"]
    data = mp4_bytes(3 * 1024 * 1024, seed=b"s3down")
    try:
        app.config["STORAGE_URL"] = dead
        answer = client.post(
            "/api/v1/media/uploads",
            headers=headers,
            json={"resource_id": content_id, "filename": "课.mp4", "size": len(data)},
        )
        _assert_unavailable(answer, "无法连接", "30")
        db.session.expire_all()
        assert db.session.execute(select(func.count(MediaUpload.id))).scalar_one() == 0

        # Parts reach the store, then it goes away before the upload is completed.
        app.config["STORAGE_URL"] = live
        upload = _start(client, headers, content_id, data)
        sent = []
        for number in range(1, upload["part_count"] + 1):
            chunk = data[(number - 1) * upload["part_size"] : number * upload["part_size"]]
            answer = put(client, upload["part_urls"][str(number)], chunk)
            sent.append({"part_number": number, "etag": answer.headers["ETag"].strip('"')})
        app.config["STORAGE_URL"] = dead
        answer = client.post(
            f"/api/v1/media/uploads/{upload['id']}/complete",
            headers={**headers, "Accept-Language": "en"},
            json={"parts": sent},
        )
        _assert_unavailable(answer, "cannot be reached", "30")
        assert _objects() == 0

        app.config["STORAGE_URL"] = live
        answer = client.post(
            f"/api/v1/media/uploads/{upload['id']}/complete", headers=headers, json={"parts": sent}
        )
        assert answer.status_code == 200 and answer.get_json()["state"] == "complete"
        assert _objects() == 1
    finally:
        app.config["STORAGE_URL"] = old


class _SilentS3:
    """An S3 endpoint that accepts connections and never answers (a hung store, or one
    behind a network that drops its replies)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._hold, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _hold(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.held.append(connection)

    def close(self):
        self.sock.close()
        for connection in self.held:
            connection.close()


def test_a_silent_s3_is_a_503_after_the_configured_timeout_not_a_hung_worker(
    app, client, teacher, make_resource, token_for
):
    """minio's own client waits 5 minutes for an answer, 6 times: a web worker would hang
    until gunicorn killed it.  With the configured read timeout and retries the request
    answers 503 (it runs in a thread here so that the old behaviour fails the test
    instead of hanging the suite)."""
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    silent = _SilentS3()
    old = app.config["STORAGE_URL"], app.config["MEDIA_S3_READ_TIMEOUT"]
    answers = []
    try:
        app.config["STORAGE_URL"] = f"s3://testing:testing@{silent.endpoint}/media?secure=false"
        app.config["MEDIA_S3_READ_TIMEOUT"] = 1

        def ask():
            answers.append(
                client.post(
                    "/api/v1/media/uploads",
                    headers={**headers, "Accept-Language": "en"},
                    json={"resource_id": content_id, "filename": "a.mp4", "size": 1024},
                )
            )

        asking = threading.Thread(target=ask, daemon=True)
        asking.start()
        asking.join(timeout=60)  # 3 attempts of 1 s and 0.4 s of back-off are expected
        assert answers, "the request still waits for the silent store"
        _assert_unavailable(answers[0], "cannot be reached", "30")
        assert len(silent.held) == 3  # the first attempt and MEDIA_S3_RETRIES (2) more
        assert db.session.execute(select(func.count(MediaUpload.id))).scalar_one() == 0
    finally:
        app.config["STORAGE_URL"], app.config["MEDIA_S3_READ_TIMEOUT"] = old
        silent.close()
