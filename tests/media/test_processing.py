"""Derivatives (in-process and on Redis), H5P unpacking, garbage collection, progress API."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import uuid
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import signals
from app.common.models import utcnow
from app.extensions import db
from app.media.models import MediaAttachment, MediaObject, MediaUpload, ProgressEvent
from tests.conftest import make_app
from tests.media.conftest import mp4_bytes, start_upload, upload_file

FFMPEG = shutil.which("ffmpeg")
# The Redis of the job-queue test (a machine shared by several runs gives each its DB).
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _png(size=(900, 600)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def _pdf() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (595, 842), (255, 255, 255)).save(out, "PDF")
    return out.getvalue()


def tiny_webm(tmp_path) -> bytes:
    path = tmp_path / "tiny.webm"
    subprocess.run(
        [
            FFMPEG,
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10",
            "-t",
            "3",
            "-c:v",
            "libvpx",
            "-b:v",
            "200k",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path.read_bytes()


def _object_of(content_id):
    from app.catalog.models import Resource

    return (
        db.session.execute(
            select(MediaObject)
            .join(MediaAttachment, MediaAttachment.object_id == MediaObject.id)
            .join(Resource, Resource.id == MediaAttachment.resource_id)
            .where(Resource.content_id == content_id)
        )
        .scalars()
        .first()
    )


def test_derivatives_image_pdf_video(client, storage, teacher, make_resource, token_for, tmp_path):
    headers = token_for(teacher)
    image, pdf, video = (
        make_resource(teacher, "image"),
        make_resource(teacher, "document"),
        make_resource(teacher),
    )
    assert upload_file(client, headers, image, "图.png", _png()).status_code == 200
    assert upload_file(client, headers, pdf, "讲义.pdf", _pdf()).status_code == 200
    db.session.expire_all()
    thumb = _object_of(image).derivative("thumbnail")
    assert (
        thumb is not None
        and thumb.media_type == "image/png"
        and storage.stat(thumb.key) == thumb.size
    )
    pdf_obj = _object_of(pdf)
    if shutil.which("pdftoppm"):
        assert pdf_obj.derivative("thumbnail") is not None
    else:
        assert "pdftoppm" in pdf_obj.meta["skipped"]["thumbnail"]
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed: video poster not tested")
    assert upload_file(client, headers, video, "片.webm", tiny_webm(tmp_path)).status_code == 200
    db.session.expire_all()
    obj = _object_of(video)
    assert obj.media_type == "video/webm"
    assert obj.derivative("poster") is not None
    assert 2.5 < obj.meta["duration"] < 3.5


def test_missing_tools_are_recorded_not_fatal(
    client, storage, teacher, make_resource, token_for, monkeypatch
):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    assert upload_file(client, headers, content_id, "x.mp4", mp4_bytes(3000)).status_code == 200
    db.session.expire_all()
    skipped = _object_of(content_id).meta["skipped"]
    assert skipped == {
        "duration": "ffprobe (ffmpeg) is not installed",
        "poster": "ffmpeg is not installed",
    }


def test_jobs_run_on_redis_with_a_burst_worker(app, database_url, tmp_path, orgs, make_user):
    """REDIS_URL set: finalisation and derivatives are queued on RQ and run by a worker."""
    import redis

    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis not reachable: {exc}")
    from rq import Queue, SimpleWorker

    queue_name = f"shuyuan-media-test-{uuid.uuid4().hex[:8]}"
    teacher_id = make_user("teacher").id
    queued = make_app(
        database_url,
        str(tmp_path),
        JOBS_EAGER=False,
        REDIS_URL=REDIS_URL,
        JOBS_QUEUE=queue_name,
        STORAGE_URL=f"file://{tmp_path}/media",
        MEDIA_SINGLE_PUT_MAX_BYTES=1024 * 1024,
    )
    queue = Queue(queue_name, connection=connection)
    try:
        with queued.app_context():
            from app.accounts.models import User
            from app.catalog import services as catalog
            from app.catalog.models import Resource
            from app.common.events import commit

            teacher = db.session.get(User, teacher_id)
            content_id = catalog.create_content(
                teacher, Resource, {"kind": "image", "title": "图"}
            ).content_id
            commit()
            client = queued.test_client()
            from app.accounts import services as accounts

            _, raw = accounts.issue_token(teacher, "t")
            commit()
            headers = {"Authorization": f"Bearer {raw}"}
            data = _png()
            answer = upload_file(client, headers, content_id, "图.png", data)
            assert answer.status_code == 202 and answer.get_json()["state"] == "verifying"
            assert queue.count == 1
            SimpleWorker([queue], connection=connection).work(burst=True)
            db.session.remove()
            upload = db.session.execute(
                select(MediaUpload).filter_by(public_id=answer.get_json()["id"])
            ).scalar_one()
            assert upload.state == "complete"
            # The finalising job queued the derivatives job; the burst worker ran it too.
            assert upload.object.derivative("thumbnail") is not None
            assert queue.count == 0
    finally:
        queue.delete(delete_jobs=True)
        with queued.app_context():
            db.session.remove()
            db.engine.dispose()


def _h5p(entries: dict[str, bytes] | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        base = (
            entries
            if entries is not None
            else {
                "h5p.json": json.dumps(
                    {"title": "互动", "mainLibrary": "H5P.Text", "preloadedDependencies": []}
                ).encode(),
                "content/content.json": b'{"text": "hello"}',
            }
        )
        for name, data in {**base, **(extra or {})}.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_h5p_package_is_unpacked_and_served(client, storage, teacher, make_resource, token_for):
    headers = token_for(teacher)
    content_id = make_resource(teacher, "interactive")
    assert upload_file(client, headers, content_id, "互动.h5p", _h5p()).status_code == 200
    db.session.expire_all()
    obj = _object_of(content_id)
    prefix = obj.meta["h5p"]["prefix"]
    assert storage.stat(prefix + "content/content.json") == len(b'{"text": "hello"}')
    # Served under a launch token inside the sandbox (tests/media/test_packages.py).
    base = _package_base(teacher, content_id)
    served = client.get(base + "content/content.json")
    assert served.status_code == 200 and served.get_json() == {"text": "hello"}
    assert client.get(base + "../h5p.json").status_code == 404


def _package_base(user, content_id) -> str:
    from flask import current_app

    from app.catalog.models import Resource
    from app.media import services

    resource = (
        db.session.execute(select(Resource).filter_by(content_id=content_id)).scalars().first()
    )
    with current_app.test_request_context():
        return services.media_context(db.session.merge(user), resource)["h5p_base"]


@pytest.mark.parametrize("case", ["escape", "absolute", "bomb", "many", "no_h5p_json", "not_zip"])
def test_bad_h5p_packages_are_refused(
    client, app, storage, teacher, make_resource, token_for, monkeypatch, case
):
    headers = token_for(teacher)
    content_id = make_resource(teacher, "interactive")
    monkeypatch.setitem(app.config, "MEDIA_H5P_MAX_UNPACKED_BYTES", 1_000_000)
    monkeypatch.setitem(app.config, "MEDIA_H5P_MAX_FILES", 50)
    data = {
        "escape": lambda: _h5p(extra={"content/../../evil.js": b"x"}),
        "absolute": lambda: _h5p(extra={"/etc/cron.d/x": b"x"}),
        "bomb": lambda: _h5p(extra={"content/zeros.bin": bytes(5_000_000)}),
        "many": lambda: _h5p(extra={f"content/f{i}.txt": b"x" for i in range(60)}),
        "no_h5p_json": lambda: _h5p(entries={"content/content.json": b"{}"}),
        "not_zip": lambda: b"PK\x03\x04" + bytes(200),
    }[case]()
    response = upload_file(client, headers, content_id, "坏.h5p", data)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["code"] == "upload_rejected"
    db.session.expire_all()
    assert db.session.execute(select(func.count(MediaObject.id))).scalar_one() == 0
    assert list(storage.list("h5p/")) == [] and list(storage.list("sha256/")) == []


def test_gc_removes_only_unreferenced_objects(
    client, app, storage, teacher, make_resource, token_for
):
    headers = token_for(teacher)
    keep, drop = make_resource(teacher, "image"), make_resource(teacher)
    assert upload_file(client, headers, keep, "留.png", _png()).status_code == 200
    assert (
        upload_file(client, headers, drop, "删.mp4", mp4_bytes(3000, seed=b"gc")).status_code == 200
    )
    # An abandoned multipart upload from long ago.
    data = mp4_bytes(2 * 1024 * 1024)
    stale = start_upload(client, headers, keep, "半.mp4", data).get_json()
    db.session.expire_all()
    row = db.session.execute(select(MediaUpload).filter_by(public_id=stale["id"])).scalar_one()
    row.created_at = utcnow() - timedelta(days=3)
    from app.catalog.models import Resource

    db.session.execute(
        MediaAttachment.__table__.delete().where(
            MediaAttachment.resource_id.in_(select(Resource.id).where(Resource.content_id == drop))
        )
    )
    db.session.commit()
    kept_obj = _object_of(keep)
    kept_keys = {kept_obj.key, kept_obj.derivative("thumbnail").key}
    dropped = (
        db.session.execute(select(MediaObject).filter_by(media_type="video/mp4")).scalar_one().key
    )

    runner = app.test_cli_runner()
    dry = runner.invoke(args=["media", "gc"])
    assert dry.exit_code == 0, dry.output
    assert f"Would delete object: {dropped}" in dry.output and "Would abort upload" in dry.output
    assert "Dry run" in dry.output
    assert storage.stat(dropped) is not None
    done = runner.invoke(args=["media", "gc", "--apply"])
    assert done.exit_code == 0, done.output
    assert f"Deleted object: {dropped}" in done.output
    db.session.expire_all()
    assert storage.stat(dropped) is None
    assert all(storage.stat(key) is not None for key in kept_keys)
    keys = set(db.session.execute(select(MediaObject.key)).scalars())
    assert keys == kept_keys
    assert (
        db.session.execute(select(MediaUpload).filter_by(public_id=stale["id"])).scalar_one().state
        == "aborted"
    )
    assert storage.pending_uploads("uploads/") == []
    again = runner.invoke(args=["media", "gc", "--apply"])
    assert "0 uploads, 0 objects" in again.output


def test_progress_api_records_events_and_signals(
    client, app, make_user, make_resource, token_for, login
):
    teacher = make_user("teacher")
    student = make_user("student")
    content_id = make_resource(teacher, publish=True)
    received = []

    def receiver(sender, **kwargs):
        # Read the row while the request's session delivers the signal: afterwards it
        # belongs to a closed session (each request has its own).
        received.append({**kwargs, "resource_content_id": kwargs["resource"].content_id})

    signals.learning_event.connect(receiver, sender=app)
    try:
        headers = token_for(student)
        response = client.post(
            "/api/v1/progress",
            headers=headers,
            json={
                "resource_id": content_id,
                "verb": "played",
                "result": {"progress": 0.25, "time": 3.5},
            },
        )
        assert response.status_code == 201, response.get_json()
        statement = {
            "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
            "result": {"score": {"scaled": 1}},
        }
        assert (
            client.post(
                "/api/v1/progress",
                headers=headers,
                json={"resource_id": content_id, "verb": "xapi", "statement": statement},
            ).status_code
            == 201
        )
        bad = client.post(
            "/api/v1/progress", headers=headers, json={"resource_id": content_id, "verb": "hacked"}
        )
        assert bad.status_code == 422
        too_far = client.post(
            "/api/v1/progress",
            headers=headers,
            json={"resource_id": content_id, "verb": "progressed", "result": {"progress": 7}},
        )
        assert too_far.status_code == 422
        no_statement = client.post(
            "/api/v1/progress", headers=headers, json={"resource_id": content_id, "verb": "xapi"}
        )
        assert no_statement.status_code == 422
        assert (
            client.post(
                "/api/v1/progress",
                headers=headers,
                json={"resource_id": str(uuid.uuid4()), "verb": "played"},
            ).status_code
            == 404
        )
        # Session cookie without the CSRF header is refused; with it accepted.
        login(student)
        no_csrf = client.post(
            "/api/v1/progress", json={"resource_id": content_id, "verb": "paused"}
        )
        assert no_csrf.status_code == 400
        from tests.conftest import csrf_token_from

        token = csrf_token_from(client, "/")
        ok = client.post(
            "/api/v1/progress",
            json={"resource_id": content_id, "verb": "paused", "result": {"progress": 0.5}},
            headers={"X-CSRFToken": token},
        )
        assert ok.status_code == 201
        mine = client.get(f"/api/v1/progress?resource_id={content_id}").get_json()
        assert [e["verb"] for e in mine] == ["paused", "xapi", "played"]
    finally:
        signals.learning_event.disconnect(receiver, sender=app)
    assert [r["verb"] for r in received] == ["played", "xapi", "paused"]
    assert received[1]["context"]["statement"] == statement
    assert received[0]["result"] == {"progress": 0.25, "time": 3.5}
    assert received[0]["resource_content_id"] == content_id
    assert db.session.execute(select(func.count(ProgressEvent.id))).scalar_one() == 3
    anonymous_client = app.test_client()
    assert (
        anonymous_client.post(
            "/api/v1/progress", json={"resource_id": content_id, "verb": "played"}
        ).status_code
        == 401
    )
