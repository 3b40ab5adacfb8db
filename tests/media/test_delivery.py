"""Who gets a URL, Range requests, Chinese file names, signed-URL expiry and tampering,
and media following resource versions."""

from __future__ import annotations

from urllib.parse import unquote

import requests
from sqlalchemy import select

from app.catalog import services as catalog
from app.catalog.models import Resource
from app.common.events import commit
from app.extensions import db
from app.media import services
from app.media.models import MediaAttachment
from app.media.storage import sign_token
from tests.media.conftest import mp4_bytes, upload_file

NAME = "第三课：光的折射 (实验).mp4"


def _get(client, url, headers=None):
    if url.startswith("http://localhost/"):
        return client.get(url[len("http://localhost") :], headers=headers or {})
    return requests.get(url, headers=headers or {}, timeout=30)


def _body(response):
    return response.content if isinstance(response, requests.Response) else response.data


def _published_with_file(client, make_user, make_resource, token_for, data):
    teacher = make_user("teacher")
    content_id = make_resource(teacher)
    assert upload_file(client, token_for(teacher), content_id, NAME, data).status_code == 200
    teacher = db.session.merge(teacher)
    catalog.submit_content(teacher, Resource, content_id)
    commit()
    return teacher, content_id


def test_readers_get_short_lived_urls_with_range(
    client, storage, make_user, make_resource, token_for, orgs
):
    data = mp4_bytes(20_000, seed=b"range")
    # Users first: the upload's inline job replaces the session (fixtures' rows detach).
    outsider = make_user("student", school=orgs.review_school)
    student = make_user("student")
    outsider_headers, student_headers = token_for(outsider), token_for(student)
    _, content_id = _published_with_file(client, make_user, make_resource, token_for, data)
    files = client.get(f"/api/v1/resources/{content_id}/media", headers=student_headers).get_json()
    assert [f["filename"] for f in files] == [NAME]
    attachment_id = files[0]["id"]
    answer = client.get(f"/api/v1/media/{attachment_id}/url", headers=student_headers)
    assert answer.status_code == 200
    delivery = answer.get_json()
    assert delivery["expires_in"] == 900 and delivery["media_type"] == "video/mp4"
    full = _get(client, delivery["url"])
    assert full.status_code == 200 and _body(full) == data
    disposition = full.headers["Content-Disposition"]
    assert disposition.startswith("inline")
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == NAME
    ranged = _get(client, delivery["url"], {"Range": "bytes=1000-1999"})
    assert ranged.status_code == 206 and _body(ranged) == data[1000:2000]
    assert ranged.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    # The stable player address redirects to a fresh URL.
    redirect = client.get(f"/media/a/{attachment_id}", headers=student_headers)
    assert redirect.status_code == 302 and redirect.headers["Cache-Control"] == "private, no-store"
    # Someone who may not see the resource gets nothing.
    assert (
        client.get(f"/api/v1/media/{attachment_id}/url", headers=outsider_headers).status_code
        == 404
    )
    assert client.get(f"/media/a/{attachment_id}", headers=outsider_headers).status_code == 404
    assert client.get(f"/api/v1/media/{attachment_id}/url").status_code == 404


def test_local_urls_expire_and_cannot_be_tampered_with(
    client, app, tmp_path, make_user, make_resource, token_for
):
    app.config["STORAGE_URL"] = f"file://{tmp_path}/media"
    try:
        data = mp4_bytes(5000)
        _, content_id = _published_with_file(client, make_user, make_resource, token_for, data)
        attachment = db.session.execute(select(MediaAttachment)).scalars().first()
        key = attachment.object.key
        good = sign_token({"op": "get", "k": key, "n": "a.mp4", "t": "video/mp4", "i": True}, 60)
        assert client.get(f"/media/local/get/{good}").status_code == 200
        expired = sign_token({"op": "get", "k": key, "n": "a.mp4", "t": "video/mp4", "i": True}, -1)
        response = client.get(f"/media/local/get/{expired}", headers={"Accept": "application/json"})
        assert (
            response.status_code == 403 and response.get_json()["error"]["code"] == "link_expired"
        )
        page = client.get(f"/media/local/get/{expired}")
        assert page.status_code == 403 and b"<html" in page.data.lower()
        tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
        response = client.get(
            f"/media/local/get/{tampered}", headers={"Accept": "application/json"}
        )
        assert (
            response.status_code == 403 and response.get_json()["error"]["code"] == "link_invalid"
        )
        # A download token cannot be used to upload, nor an upload token replayed after expiry.
        assert client.put(f"/media/local/up/{good}", data=b"x").status_code == 403
        old_put = sign_token({"op": "put", "k": "uploads/x/data", "m": 10}, -1)
        response = client.put(f"/media/local/up/{old_put}", data=b"x")
        assert (
            response.status_code == 403 and response.get_json()["error"]["code"] == "link_expired"
        )
        # A token signed with another key is refused.
        secret = app.config["SECRET_KEY"]
        app.config["SECRET_KEY"] = "another-installation"
        foreign = sign_token({"op": "get", "k": key, "n": "a.mp4", "t": "video/mp4", "i": True}, 60)
        app.config["SECRET_KEY"] = secret
        assert client.get(f"/media/local/get/{foreign}").status_code == 403
        # A part larger than signed is refused and leaves nothing behind.
        small = sign_token({"op": "put", "k": "uploads/y/data", "m": 10}, 60)
        response = client.put(f"/media/local/up/{small}", data=b"x" * 11)
        assert response.status_code == 413
        assert not (tmp_path / "media" / "uploads" / "y" / "data").exists()
        # Keys cannot leave the storage folder.
        escape = sign_token(
            {"op": "get", "k": "../../etc/passwd", "n": "p", "t": "text/plain", "i": True}, 60
        )
        assert client.get(f"/media/local/get/{escape}").status_code == 404
    finally:
        app.config["STORAGE_URL"] = f"file://{app.config['INSTANCE_PATH']}/media"


def test_new_version_keeps_files_and_published_version_is_untouched(
    client, storage, make_user, make_resource, token_for
):
    first = mp4_bytes(4000, seed=b"v1")
    teacher, content_id = _published_with_file(client, make_user, make_resource, token_for, first)
    teacher = db.session.merge(teacher)
    draft = catalog.update_content(teacher, Resource, content_id, {"title": "第二版"})
    commit()
    rows = {
        r.version: r
        for r in db.session.execute(select(Resource).filter_by(content_id=content_id)).scalars()
    }
    assert (
        services.attachments_of(rows[2])["primary"].object_id
        == services.attachments_of(rows[1])["primary"].object_id
    )
    assert draft.version == 2
    # Replacing the file of the draft leaves the published version's file alone.
    second = mp4_bytes(4000, seed=b"v2")
    assert upload_file(client, token_for(teacher), content_id, "新.mp4", second).status_code == 200
    db.session.expire_all()
    rows = {
        r.version: r
        for r in db.session.execute(select(Resource).filter_by(content_id=content_id)).scalars()
    }
    assert services.attachments_of(rows[1])["primary"].filename == NAME
    assert services.attachments_of(rows[2])["primary"].filename == "新.mp4"
    assert len(rows) == 2
