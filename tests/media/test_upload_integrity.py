"""Integrity of verified uploads now that their bytes stay at the upload's own key
(recorded by SHA-256, no copy to ``sha256/…``): nothing a client still holds can change
a verified object, a change during verification is refused, duplicates reuse the stored
object (old ``sha256/…`` layout included), and failures leave nothing behind.  Both
backends (local folder and S3 on moto)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.common.models import utcnow
from app.media import services
from app.media.models import MediaAttachment, MediaObject, MediaUpload
from tests.media.conftest import db, mp4_bytes, put, send_parts, sha, upload_file

BIG = 9 * 1024 * 1024  # multipart in these tests (two parts of 8 MiB and 1 MiB)


def _start(client, headers, content_id, data, name="课.mp4"):
    answer = client.post(
        "/api/v1/media/uploads",
        headers=headers,
        json={
            "resource_id": content_id,
            "filename": name,
            "size": len(data),
            "checksum": sha(data),
        },
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def _read(storage, key) -> bytes:
    return b"".join(storage.iter_chunks(key))


def _upload_row(public_id) -> MediaUpload:
    db.session.expire_all()
    return db.session.execute(select(MediaUpload).filter_by(public_id=public_id)).scalar_one()


def test_multipart_object_stays_at_its_key_and_part_urls_cannot_rewrite_it(
    client, storage, teacher, make_resource, token_for
):
    headers = token_for(teacher)
    data = mp4_bytes(BIG, seed=b"keep")
    upload = _start(client, headers, make_resource(teacher), data)
    assert upload["mode"] == "multipart"
    sent = send_parts(client, upload, data)
    done = client.post(
        f"/api/v1/media/uploads/{upload['id']}/complete", headers=headers, json={"parts": sent}
    )
    assert done.status_code == 200 and done.get_json()["state"] == "complete"
    db.session.expire_all()
    obj = db.session.execute(select(MediaObject).filter_by(checksum=sha(data))).scalar_one()
    assert obj.key == f"uploads/{upload['id']}/data"
    # The client still holds its part URLs: the completed upload takes no more parts
    # (S3/MinIO: 404 NoSuchUpload; moto 5.2.5: 500, a KeyError on the finished upload
    # id; local: 403, the key is closed once the upload is not pending).
    other = mp4_bytes(8 * 1024 * 1024, seed=b"evil")
    late = put(client, upload["part_urls"]["1"], other)
    assert late.status_code >= 400
    assert _read(storage, obj.key) == data
    assert storage.pending_uploads("uploads/") == []


def test_single_put_url_used_after_verification_cannot_touch_the_object(
    client, storage, teacher, make_resource, token_for
):
    headers = token_for(teacher)
    data = mp4_bytes(5000, seed=b"single")
    upload = _start(client, headers, make_resource(teacher), data)
    assert upload["mode"] == "single"
    assert put(client, upload["url"], data).status_code == 200
    done = client.post(f"/api/v1/media/uploads/{upload['id']}/complete", headers=headers, json={})
    assert done.status_code == 200 and done.get_json()["state"] == "complete"
    db.session.expire_all()
    obj = db.session.execute(select(MediaObject).filter_by(checksum=sha(data))).scalar_one()
    assert obj.key == f"uploads/{upload['id']}/file"
    # A presigned PUT URL cannot be revoked (S3 takes the bytes, at the key it names);
    # the object was moved away from that key before it was read.
    late = put(client, upload["url"], mp4_bytes(5000, seed=b"evil"))
    assert late.status_code in (200, 403)
    assert _read(storage, obj.key) == data
    # What such a late PUT left goes with the garbage after the grace period; the
    # object stays.
    report = services.collect_garbage(apply=True, now=utcnow() + timedelta(days=3))
    db.session.commit()
    services.delete_collected_bytes(report)
    assert obj.key not in report.deleted_objects
    assert [o.key for o in storage.list("uploads/")] == [obj.key]
    assert _read(storage, obj.key) == data


def _replace_during(monkeypatch, storage, *, before_first_block: bool):
    """Make the verification read meet other bytes of the same size written to the key:
    just before the read starts, or after its first block."""
    cls = type(storage)
    original = cls.read_version

    def read_version(self, key, version, chunk=1024 * 1024):
        other = mp4_bytes(self.stat(key), seed=b"swapped")
        if before_first_block:
            self.put_bytes(key, other, "application/octet-stream")
            yield from original(self, key, version, chunk)
            return
        blocks = original(self, key, version, chunk)
        yield next(blocks)
        self.put_bytes(key, other, "application/octet-stream")
        yield from blocks

    monkeypatch.setattr(cls, "read_version", read_version)


@pytest.mark.parametrize("before_first_block", [True, False], ids=["before", "while"])
def test_object_changed_before_or_while_it_is_read_is_refused(
    client, storage, teacher, make_resource, token_for, monkeypatch, before_first_block
):
    headers = token_for(teacher)
    data = mp4_bytes(BIG, seed=b"before" if before_first_block else b"during")
    _replace_during(monkeypatch, storage, before_first_block=before_first_block)
    answer = upload_file(client, headers, make_resource(teacher), "换.mp4", data)
    assert answer.status_code == 422, answer.get_json()
    upload = _upload_row(_last_upload_id())
    assert upload.state == "failed" and "changed" in upload.error
    assert db.session.scalar(select(func.count()).select_from(MediaObject)) == 0
    assert not list(storage.list("uploads/"))


def _last_upload_id() -> str:
    db.session.expire_all()
    return db.session.execute(
        select(MediaUpload.public_id).order_by(MediaUpload.id.desc()).limit(1)
    ).scalar_one()


def test_duplicate_of_an_object_in_the_old_sha256_layout_reuses_it(
    client, storage, teacher, make_resource, token_for
):
    """Objects stored before this layout (``sha256/ab/<hex>``) keep working and are
    found by their SHA-256: the new upload attaches them and its own copy goes."""
    headers = token_for(teacher)
    data = mp4_bytes(BIG, seed=b"legacy")
    digest = sha(data)
    legacy_key = f"sha256/{digest[:2]}/{digest}"
    storage.put_bytes(legacy_key, data, "video/mp4")
    legacy = MediaObject(
        backend=storage.name,
        key=legacy_key,
        size=len(data),
        checksum=digest,
        media_type="video/mp4",
        meta={"derivatives": {"none": "nothing to make"}},
    )
    db.session.add(legacy)
    db.session.commit()
    legacy_id = legacy.id
    answer = upload_file(client, headers, make_resource(teacher), "旧.mp4", data)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    db.session.expire_all()
    attachment = db.session.execute(
        select(MediaAttachment).filter_by(public_id=body["attachment_id"])
    ).scalar_one()
    assert attachment.object_id == legacy_id
    assert db.session.scalar(select(func.count()).select_from(MediaObject)) == 1
    assert not list(storage.list("uploads/"))  # the duplicate was dropped after the commit
    assert _read(storage, legacy_key) == data
    url = client.get(f"/api/v1/media/{body['attachment_id']}/url", headers=headers)
    assert url.status_code == 200


def test_failed_verification_leaves_nothing_and_keeps_the_stored_duplicate(
    client, storage, teacher, make_resource, token_for
):
    headers = token_for(teacher)
    first = mp4_bytes(5000, seed=b"first")
    assert upload_file(client, headers, make_resource(teacher), "一.mp4", first).status_code == 200
    db.session.expire_all()
    kept = db.session.execute(select(MediaObject)).scalar_one()
    # Declared as the first file's hash, but other bytes: refused, and the first file's
    # object (whose hash was claimed) is untouched.
    other = mp4_bytes(5000, seed=b"other")
    wrong = upload_file(
        client, headers, make_resource(teacher), "二.mp4", other, checksum=sha(first)
    )
    assert wrong.status_code == 422
    assert _upload_row(_last_upload_id()).state == "failed"
    db.session.expire_all()
    assert [o.id for o in db.session.execute(select(MediaObject)).scalars()] == [kept.id]
    assert [o.key for o in storage.list("uploads/")] == [kept.key]
    assert _read(storage, kept.key) == first


def test_gc_keeps_the_bytes_of_an_upload_still_being_verified(
    client, storage, teacher, make_resource, token_for
):
    """Bytes under ``uploads/<id>/`` that no row uses yet are garbage only once their
    upload is no longer in progress, however old they are."""
    headers = token_for(teacher)
    data = mp4_bytes(5000, seed=b"waiting")
    upload = _start(client, headers, make_resource(teacher), data)
    assert put(client, upload["url"], data).status_code == 200
    row = _upload_row(upload["id"])
    row.state = "verifying"  # completed; its verification job has not run yet
    db.session.commit()
    later = utcnow() + timedelta(days=3)
    report = services.collect_garbage(apply=True, now=later)
    db.session.commit()
    services.delete_collected_bytes(report)
    assert _read(storage, row.staging_key) == data
    row = _upload_row(upload["id"])
    row.state = "failed"  # now it will never use them
    db.session.commit()
    report = services.collect_garbage(apply=True, now=later)
    db.session.commit()
    services.delete_collected_bytes(report)
    assert row.staging_key in report.deleted_objects
    assert not list(storage.list("uploads/"))
