"""Hostile uploads: packages that try to escape, explode or crash the unpacker, content
that lies about its type, bodies over their limits, and JSON of the wrong shape.  Each
one is refused with a 4xx (never a 500) and leaves nothing in storage."""

from __future__ import annotations

import io
import json
import stat
import struct
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.extensions import db
from app.media.models import MediaObject, MediaUpload
from tests.media.conftest import put, sha, start_upload, upload_file, webm_bytes
from tests.media.h5p_packages import zip_bytes

H5P_JSON = json.dumps({"title": "坏", "mainLibrary": "H5P.Text"}).encode()


def _valid(**extra: bytes) -> dict[str, bytes]:
    return {"h5p.json": H5P_JSON, "content/content.json": b"{}", **extra}


def _symlink_package() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in _valid().items():
            archive.writestr(name, data)
        link = zipfile.ZipInfo("content/passwd")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return out.getvalue()


def _patched(data: bytes, name: str, field: str, value: int) -> bytes:
    """Rewrite one header field of entry ``name`` in both its local and central headers
    (what a hand-made hostile archive does; zipfile cannot write such lies itself)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(name)
    raw = bytearray(data)
    local = info.header_offset
    central = _central_offset(raw, name)
    offsets = {  # (offset in local header, offset in central header, struct format)
        "flags": (6, 8, "<H"),
        "method": (8, 10, "<H"),
        "size": (22, 24, "<I"),
    }[field]
    struct.pack_into(offsets[2], raw, local + offsets[0], value)
    struct.pack_into(offsets[2], raw, central + offsets[1], value)
    return bytes(raw)


def _central_offset(raw: bytearray, name: str) -> int:
    start = 0
    encoded = name.encode()
    while True:
        start = raw.index(b"PK\x01\x02", start)
        length = struct.unpack_from("<H", raw, start + 28)[0]
        if bytes(raw[start + 46 : start + 46 + length]) == encoded:
            return start
        start += 4


def _broken_deflate() -> bytes:
    data = zip_bytes(_valid(**{"content/big.txt": b"abc" * 20_000}))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("content/big.txt")
    raw = bytearray(data)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for index in range(start + 5, start + 60):
        raw[index] ^= 0x5A
    return bytes(raw)


HOSTILE_PACKAGES = {
    "backslash": lambda: zip_bytes(_valid(**{"content\\..\\..\\evil.js": b"x"})),
    "drive_letter": lambda: zip_bytes(_valid(**{"C:/evil.js": b"x"})),
    "dot_segment": lambda: zip_bytes(_valid(**{"content/./../x.js": b"x"})),
    "control_char": lambda: zip_bytes(_valid(**{"content/a\x01.js": b"x"})),
    "player_folder": lambda: zip_bytes(_valid(**{"~player/frame.js": b"x"})),
    "symlink": _symlink_package,
    "encrypted": lambda: _patched(zip_bytes(_valid()), "content/content.json", "flags", 1),
    "unknown_method": lambda: _patched(zip_bytes(_valid()), "content/content.json", "method", 99),
    "broken_deflate": _broken_deflate,
    "nested_h5p_json": lambda: zip_bytes({"h5p.json": b"[" * 200_000 + b"]" * 200_000}),
    "h5p_json_list": lambda: zip_bytes({"h5p.json": b"[]"}),
    "main_library_not_text": lambda: zip_bytes({"h5p.json": b'{"mainLibrary": {"a": 1}}'}),
    "h5p_json_not_utf8": lambda: zip_bytes({"h5p.json": b'{"mainLibrary": "\xff\xfe"}'}),
    "empty_zip": lambda: zip_bytes({}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_PACKAGES))
def test_hostile_packages_are_refused_and_leave_nothing(
    client, storage, teacher, make_resource, token_for, case
):
    headers = token_for(teacher)
    content_id = make_resource(teacher, "interactive")
    response = upload_file(client, headers, content_id, "坏.h5p", HOSTILE_PACKAGES[case]())
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["code"] == "upload_rejected"
    db.session.expire_all()
    assert db.session.execute(select(func.count(MediaObject.id))).scalar_one() == 0
    [upload] = db.session.execute(select(MediaUpload)).scalars().all()
    assert upload.state == "failed" and upload.error
    assert list(storage.list("h5p/")) == [] and list(storage.list("sha256/")) == []
    assert storage.stat(upload.staging_key) is None


def test_a_header_that_understates_the_size_inflates_no_more_than_it_declares(
    client, app, storage, teacher, make_resource, token_for, monkeypatch
):
    """A zip bomb that lies in its headers: zipfile stops at the declared size, so the
    real 5 MB never reach storage whatever the outcome."""
    monkeypatch.setitem(app.config, "MEDIA_H5P_MAX_UNPACKED_BYTES", 1_000_000)
    headers = token_for(teacher)
    content_id = make_resource(teacher, "interactive")
    bomb = zip_bytes(_valid(**{"content/zeros.bin": bytes(5_000_000)}))
    lying = _patched(bomb, "content/zeros.bin", "size", 1000)
    response = upload_file(client, headers, content_id, "炸弹.h5p", lying)
    assert response.status_code in (200, 422), response.get_json()
    stored = sum(item.size for item in storage.list("h5p/"))
    assert stored <= 1000 + len(H5P_JSON) + 2


LYING_TYPES = [
    ("document", "讲义.pdf", b"<!doctype html><script>alert(1)</script>" + bytes(100)),
    ("image", "图.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    ("image", "图.png", b"<html><body onload=alert(1)></body></html>"),
    ("video", "课.mp4", b"\x89PNG\r\n\x1a\n" + bytes(200)),
    ("interactive", "互动.h5p", b"window.location='//evil'" + bytes(100)),
    ("audio", "音.mp3", b"MZ\x90\x00" + bytes(300)),
]


@pytest.mark.parametrize(("kind", "name", "data"), LYING_TYPES, ids=[n for _, n, _ in LYING_TYPES])
def test_content_that_lies_about_its_type_is_refused(
    client, storage, teacher, make_resource, token_for, kind, name, data
):
    headers = token_for(teacher)
    content_id = make_resource(teacher, kind)
    response = upload_file(client, headers, content_id, name, data)
    assert response.status_code == 422, response.get_json()
    assert "does not accept" in response.get_json()["error"]["message"]
    db.session.expire_all()
    assert db.session.execute(select(func.count(MediaObject.id))).scalar_one() == 0


def test_bodies_over_their_limit_are_413_and_the_upload_stays_open(
    client, app, tmp_path, teacher, make_resource, token_for, monkeypatch
):
    # Shuyuan enforces the size of its own signed PUTs; on S3 the server does (moto does
    # not check it, so the S3 half would test moto, not Shuyuan).
    monkeypatch.setitem(app.config, "STORAGE_URL", f"file://{tmp_path}/media")
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    data = webm_bytes(5000)
    upload = start_upload(client, headers, content_id, "课.webm", data).get_json()
    assert put(client, upload["url"], data + b"x").status_code == 413
    incomplete = client.post(
        f"/api/v1/media/uploads/{upload['id']}/complete", headers=headers, json={"parts": []}
    )
    assert incomplete.status_code == 422
    assert incomplete.get_json()["error"]["code"] == "upload_incomplete"
    assert put(client, upload["url"], data).status_code == 200
    done = client.post(
        f"/api/v1/media/uploads/{upload['id']}/complete", headers=headers, json={"parts": []}
    )
    assert done.status_code == 200 and done.get_json()["state"] == "complete"
    app.config["MEDIA_MAX_UPLOAD_BYTES"], old = 10_000, app.config["MEDIA_MAX_UPLOAD_BYTES"]
    try:
        big = client.post(
            "/api/v1/media/uploads",
            headers=headers,
            json={"resource_id": content_id, "filename": "大.webm", "size": 10_001},
        )
    finally:
        app.config["MEDIA_MAX_UPLOAD_BYTES"] = old
    assert big.status_code == 413 and big.get_json()["error"]["code"] == "too_large"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.one_of(
        JSON,
        st.fixed_dictionaries(
            {"resource_id": JSON, "filename": JSON, "size": JSON},
            optional={"checksum": JSON},
        ),
    ),
    parts=JSON,
    progress=st.fixed_dictionaries(
        {"resource_id": JSON, "verb": st.sampled_from(["xapi", "opened", "progressed"]) | JSON},
        optional={"result": JSON, "context": JSON, "statement": JSON, "data": JSON},
    ),
)
def test_any_json_shape_is_answered_without_a_server_error(
    client, storage, teacher, make_resource, token_for, body, parts, progress
):
    headers = token_for(teacher)
    started = client.post("/api/v1/media/uploads", headers=headers, json=body)
    assert started.status_code < 500, started.get_json()
    upload = client.post(
        "/api/v1/media/uploads",
        headers=headers,
        json={"resource_id": make_resource(teacher), "filename": "a.webm", "size": 10},
    ).get_json()
    completed = client.post(
        f"/api/v1/media/uploads/{upload['id']}/complete", headers=headers, json={"parts": parts}
    )
    assert completed.status_code < 500, completed.get_json()
    reported = client.post("/api/v1/progress", headers=headers, json=progress)
    assert reported.status_code < 500, reported.get_json()


def test_checksum_of_other_bytes_is_refused(client, storage, teacher, make_resource, token_for):
    headers = token_for(teacher)
    content_id = make_resource(teacher)
    response = upload_file(client, headers, content_id, "课.webm", webm_bytes(3000), sha(b"x"))
    assert response.status_code == 422
