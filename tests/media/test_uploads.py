"""Uploads through the API on both backends (local folder and S3 on a moto server)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from app.extensions import db
from app.media import services
from app.media.models import MediaAttachment, MediaObject, MediaUpload
from tests.media.conftest import mp4_bytes, put, sha, start_upload, upload_file, webm_bytes


def _attachments(content_id):
    from app.catalog.models import Resource

    return (
        db.session.execute(
            select(MediaAttachment)
            .join(Resource, Resource.id == MediaAttachment.resource_id)
            .where(Resource.content_id == content_id)
        )
        .scalars()
        .all()
    )


def test_single_upload_is_verified_and_stored_once(
    client, storage, teacher, make_resource, token_for
):
    headers = token_for(teacher)
    first, second = make_resource(teacher), make_resource(teacher)
    data = mp4_bytes(5000)
    response = upload_file(client, headers, first, "第一课 导入.mp4", data)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["state"] == "complete" and body["checksum"] == sha(data)
    assert upload_file(client, headers, second, "副本.mp4", data).status_code == 200
    db.session.expire_all()
    objects = (
        db.session.execute(select(MediaObject).where(MediaObject.checksum == sha(data)))
        .scalars()
        .all()
    )
    assert len(objects) == 1
    obj = objects[0]
    # The first upload's bytes stay at its own key (moved away from the key its PUT URL
    # names), recorded with their SHA-256; the second upload reuses them and its copy goes.
    assert obj.key == f"uploads/{body['id']}/file"
    assert obj.media_type == "video/mp4" and obj.size == 5000 and obj.backend == storage.name
    assert storage.stat(obj.key) == 5000
    names = sorted(a.filename for a in _attachments(first) + _attachments(second))
    assert names == sorted(["第一课 导入.mp4", "副本.mp4"])
    # Nothing else left: no staging file, no second copy.
    assert [o.key for o in storage.list("uploads/")] == [obj.key]
    assert not list(storage.list("sha256/"))


def test_multipart_upload_resumes_and_checks_parts(
    client, storage, teacher, make_resource, token_for
):
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    data = mp4_bytes(9 * 1024 * 1024, seed=b"multi")
    start = start_upload(client, headers, content_id, "长视频.mp4", data, checksum=True)
    assert start.status_code == 201
    upload = start.get_json()
    assert (
        upload["mode"] == "multipart"
        and upload["part_count"] == 2
        and upload["part_size"] == 8 * 1024**2
    )
    part_size = upload["part_size"]
    first = put(client, upload["part_urls"]["1"], data[:part_size])
    assert first.status_code == 200
    etag1 = first.headers["ETag"].strip('"')
    # The connection drops here; the page asks which parts are stored.
    status = client.get(f"/api/v1/media/uploads/{upload['id']}", headers=headers).get_json()
    assert [p["part_number"] for p in status["done_parts"]] == [1]
    # Completing now: part 2 is missing.
    missing = client.post(
        f"/api/v1/media/uploads/{upload['id']}/complete",
        headers=headers,
        json={"parts": [{"part_number": 1, "etag": etag1}]},
    )
    assert missing.status_code == 422 and missing.get_json()["error"]["code"] == "parts_missing"
    fresh = client.post(
        f"/api/v1/media/uploads/{upload['id']}/parts", headers=headers, json={"part_numbers": [2]}
    ).get_json()
    second = put(client, fresh["part_urls"]["2"], data[part_size:])
    etag2 = second.headers["ETag"].strip('"')
    reordered = client.post(
        f"/api/v1/media/uploads/{upload['id']}/complete",
        headers=headers,
        json={"parts": [{"part_number": 2, "etag": etag2}, {"part_number": 1, "etag": etag1}]},
    )
    assert reordered.status_code == 422
    assert reordered.get_json()["error"]["code"] == "parts_out_of_order"
    wrong_etag = client.post(
        f"/api/v1/media/uploads/{upload['id']}/complete",
        headers=headers,
        json={"parts": [{"part_number": 1, "etag": etag2}, {"part_number": 2, "etag": etag2}]},
    )
    assert wrong_etag.status_code == 422
    assert (
        client.get(f"/api/v1/media/uploads/{upload['id']}", headers=headers).get_json()["state"]
        == "pending"
    )
    done = client.post(
        f"/api/v1/media/uploads/{upload['id']}/complete",
        headers=headers,
        json={"parts": [{"part_number": 1, "etag": etag1}, {"part_number": 2, "etag": etag2}]},
    )
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["state"] == "complete"
    db.session.expire_all()
    obj = db.session.execute(select(MediaObject).filter_by(checksum=sha(data))).scalar_one()
    assert obj.size == len(data)
    assert b"".join(storage.iter_chunks(obj.key)) == data


def test_checksum_mismatch_and_fake_video_leave_existing_media_intact(
    client, storage, teacher, make_resource, token_for
):
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    good = webm_bytes(3000)
    assert upload_file(client, headers, content_id, "好.webm", good).status_code == 200
    objects_before = db.session.execute(select(func.count(MediaObject.id))).scalar_one()

    mismatch = upload_file(
        client, headers, content_id, "坏.mp4", mp4_bytes(4000), checksum=sha(b"other")
    )
    assert mismatch.status_code == 422
    assert "Checksum mismatch" in mismatch.get_json()["error"]["message"]

    elf = b"\x7fELF\x02\x01\x01\x00" + bytes(4000)
    executable = upload_file(client, headers, content_id, "lesson.mp4", elf)
    assert executable.status_code == 422
    message = executable.get_json()["error"]["message"]
    assert "does not accept" in message and "video/mp4" in message

    db.session.expire_all()
    attachments = _attachments(content_id)
    assert [a.filename for a in attachments] == ["好.webm"]
    assert db.session.execute(select(func.count(MediaObject.id))).scalar_one() == objects_before
    failed = db.session.execute(select(MediaUpload).filter_by(state="failed")).scalars().all()
    assert len(failed) == 2
    assert all(storage.stat(u.staging_key) is None for u in failed)


BAD_REQUESTS = [
    ("empty.mp4", 0, 422, "empty_file"),
    ("../../etc/passwd.mp4", 100, 422, "validation_error"),
    ("a/b.mp4", 100, 422, "validation_error"),
    ("bell\x07.mp4", 100, 422, "validation_error"),
    ("new\nline.mp4", 100, 422, "validation_error"),
    ("长" * 300 + ".mp4", 100, 422, "validation_error"),
    ("huge.mp4", 10**12, 413, "too_large"),
]


def test_bad_upload_requests_are_refused(client, teacher, make_resource, token_for):
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    for name, size, status, code in BAD_REQUESTS:
        response = client.post(
            "/api/v1/media/uploads",
            headers=headers,
            json={"resource_id": content_id, "filename": name, "size": size},
        )
        assert response.status_code == status, (name, response.get_json())
        error = response.get_json()["error"]
        assert error["code"] == code and error["message"], name
    assert db.session.execute(select(func.count(MediaUpload.id))).scalar_one() == 0


def test_quota_is_checked_before_upload_starts(
    client, app, teacher, make_resource, token_for, orgs
):
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    other_district = orgs.review_district.id
    services.set_district_quota(orgs.district.id, 6000)
    db.session.commit()
    assert upload_file(client, headers, content_id, "a.mp4", mp4_bytes(5000)).status_code == 200
    other = make_resource(teacher)
    over = client.post(
        "/api/v1/media/uploads",
        headers=headers,
        json={"resource_id": other, "filename": "b.mp4", "size": 2000},
    )
    assert over.status_code == 413 and over.get_json()["error"]["code"] == "quota_exceeded"
    # Another district is not affected by this one's override.
    assert services.district_quota(other_district) == app.config["MEDIA_DISTRICT_QUOTA_BYTES"]


def test_only_editors_upload(client, make_user, make_resource, token_for, orgs):
    owner = make_user("teacher")
    content_id = make_resource(owner, publish=True)
    colleague = make_user("teacher")
    student = make_user("student")
    # (first: the test app context keeps the last logged-in user in flask.g between requests)
    anonymous = client.post(
        "/api/v1/media/uploads", json={"resource_id": content_id, "filename": "x.mp4", "size": 10}
    )
    assert anonymous.status_code == 401
    for user in (colleague, student):
        response = client.post(
            "/api/v1/media/uploads",
            headers=token_for(user),
            json={"resource_id": content_id, "filename": "x.mp4", "size": 10},
        )
        assert response.status_code in (403, 404)
    link = make_resource(owner, kind="exercise")
    response = client.post(
        "/api/v1/media/uploads",
        headers=token_for(owner),
        json={"resource_id": link, "filename": "x.mp4", "size": 10},
    )
    assert response.status_code == 422


def test_abort_discards_staging(client, storage, teacher, make_resource, token_for):
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    data = mp4_bytes(9 * 1024 * 1024)
    upload = start_upload(client, headers, content_id, "x.mp4", data).get_json()
    put(client, upload["part_urls"]["1"], data[: upload["part_size"]])
    assert (
        client.delete(f"/api/v1/media/uploads/{upload['id']}", headers=headers).status_code == 204
    )
    assert storage.pending_uploads("uploads/") == []
    again = client.post(
        f"/api/v1/media/uploads/{upload['id']}/complete", headers=headers, json={"parts": []}
    )
    assert again.status_code == 409


def test_local_put_url_is_closed_once_the_upload_is_completed(
    client, tmp_path, app, teacher, make_resource, token_for
):
    """A signed PUT URL outlives ``complete``; bytes sent through it afterwards could
    replace the verified file.  So keys under ``uploads/<id>/`` take bytes only while
    their upload is pending."""
    old = app.config["STORAGE_URL"]
    app.config["STORAGE_URL"] = f"file://{tmp_path}/media"
    try:
        headers = token_for(teacher)
        content_id = make_resource(teacher)
        data = mp4_bytes(5000)
        started = start_upload(client, headers, content_id, "课.mp4", data).get_json()
        assert put(client, started["url"], data).status_code == 200
        assert put(client, started["url"], data).status_code == 200  # a retry while pending
        client.post(f"/api/v1/media/uploads/{started['id']}/complete", headers=headers, json={})
        other = mp4_bytes(5000, seed=b"other")
        late = put(client, started["url"], other)
        assert late.status_code == 403 and late.get_json()["error"]["code"] == "upload_closed"
        stored = db.session.execute(select(MediaObject)).scalar_one()
        assert stored.checksum == sha(data)
        with app.app_context():
            from app.media.storage import get_storage

            path = get_storage().local_path(stored.key)
        with open(path, "rb") as handle:
            assert handle.read() == data
        assert [
            p for p in (tmp_path / "media").rglob("*") if "uploads" in p.parts and p.is_file()
        ] == [Path(path)]
    finally:
        app.config["STORAGE_URL"] = old
