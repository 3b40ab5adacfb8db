"""Serving unpacked packages: the sandbox headers on every file, launch tokens instead
of cookies, permission checked per file, and the separate content host."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.catalog.models import Resource
from app.extensions import db
from app.media import services
from app.media.storage import sign_token
from tests.media.conftest import upload_file
from tests.media.h5p_packages import probe_package


def _package(client, app, teacher, make_resource, token_for) -> tuple[str, str]:
    """Upload a package; returns (content id, package base URL for ``teacher``)."""
    content_id = make_resource(teacher, "interactive")
    answer = upload_file(
        client, token_for(teacher), content_id, "互动.h5p", probe_package("benign")
    )
    assert answer.status_code == 200, answer.get_json()
    return content_id, _base_for(app, teacher, content_id)


def _base_for(app, user, content_id) -> str:
    db.session.expire_all()
    resource = (
        db.session.execute(
            select(Resource).filter_by(content_id=content_id).order_by(Resource.version.desc())
        )
        .scalars()
        .first()
    )
    with app.test_request_context():
        media = services.media_context(db.session.merge(user), resource)
    assert media["frame_url"] == media["h5p_base"] + "~player/frame.html"
    assert media["frame_origin"] == "null"
    return media["h5p_base"]


def _sandboxed(response, base_url: str) -> None:
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox allow-scripts;") and "allow-same-origin" not in policy
    assert f"connect-src {base_url};" in policy and "default-src 'none'" in policy
    assert "form-action 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Set-Cookie" not in response.headers


def test_package_files_and_player_are_served_sandboxed_without_cookies(
    client, app, storage, teacher, make_resource, token_for, login
):
    _, base = _package(client, app, teacher, make_resource, token_for)
    # The viewer is logged in (session cookie sent): the answers still set no cookie.
    login(db.session.merge(teacher))
    absolute = "http://localhost" + base
    content = client.get(base + "content/content.json")
    assert content.status_code == 200 and content.get_json() == {"mode": "benign"}
    _sandboxed(content, absolute)
    script = client.get(base + "H5P.ShuyuanProbe-1.0/probe.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    _sandboxed(script, absolute)
    html = client.get(base + "content/direct.html")
    assert html.status_code == 200 and html.mimetype == "text/html"
    _sandboxed(html, absolute)
    frame = client.get(base + "~player/frame.html")
    assert frame.status_code == 200 and b"frame.js" in frame.data
    _sandboxed(frame, absolute)
    assert client.get(base + "~player/vendor/h5p-standalone/main.bundle.js").status_code == 200
    for bad in ("../h5p.json", "content/../../x", "~player/../__init__.py", "~player/nope.js"):
        assert client.get(base + bad).status_code == 404, bad
    # The old cookie-authenticated route on the site's own origin is gone.
    assert client.get(base.replace("/media/pkg/", "/media/h5p/") + "h5p.json").status_code == 404


def test_launch_tokens_are_checked_on_every_file(
    client, app, storage, teacher, make_resource, token_for, make_user, orgs
):
    # Users first: the upload's inline jobs end the session (fixtures' rows detach).
    outsider_id = make_user("student", school=orgs.review_school).id
    content_id, base = _package(client, app, teacher, make_resource, token_for)
    token = base.split("/")[3]
    good = client.get(base + "h5p.json", headers={"Accept": "application/json"})
    assert good.status_code == 200
    attachment_id = services.attachments_of(
        db.session.execute(select(Resource).filter_by(content_id=content_id)).scalars().first()
    )["primary"].public_id

    def status(candidate: str) -> tuple[int, str]:
        answer = client.get(
            f"/media/pkg/{candidate}/h5p.json", headers={"Accept": "application/json"}
        )
        return answer.status_code, (answer.get_json() or {}).get("error", {}).get("code", "")

    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert status(tampered) == (403, "link_invalid")
    teacher_id = db.session.merge(teacher).id
    expired = sign_token({"op": "pkg", "a": attachment_id, "u": teacher_id}, -1)
    assert status(expired) == (403, "link_expired")
    # A download token of the local backend does not open packages.
    other_op = sign_token({"op": "get", "a": attachment_id, "u": teacher_id}, 60)
    assert status(other_op) == (403, "link_invalid")
    # Hostile payload types are refused, never a 500.
    for payload in (
        {"op": "pkg", "a": [attachment_id], "u": teacher_id},
        {"op": "pkg", "a": attachment_id, "u": "1"},
        {"op": "pkg", "a": attachment_id, "u": {"id": 1}},
        {"op": "pkg", "a": None},
    ):
        assert status(sign_token(payload, 60))[0] == 403, payload
    # The draft is not visible to a student of another school: the token is useless.
    stranger = sign_token({"op": "pkg", "a": attachment_id, "u": outsider_id}, 60)
    assert status(stranger) == (404, "not_found")
    assert status(sign_token({"op": "pkg", "a": attachment_id, "u": None}, 60))[0] == 404
    assert status(sign_token({"op": "pkg", "a": "no-such-file", "u": teacher_id}, 60))[0] == 404


def test_separate_content_host_serves_packages_and_nothing_else(
    client, app, storage, teacher, make_resource, token_for, monkeypatch
):
    monkeypatch.setitem(app.config, "CONTENT_ORIGIN", "http://usercontent.test")
    _, base = _package(client, app, teacher, make_resource, token_for)
    assert base.startswith("http://usercontent.test/media/pkg/")
    path = base[len("http://usercontent.test") :]
    served = client.get(path + "h5p.json", base_url="http://usercontent.test")
    assert served.status_code == 200
    _sandboxed(served, base)
    # Shuyuan's own host refuses package files; the content host refuses everything else.
    assert client.get(path + "h5p.json").status_code == 404
    for other in ("/login", "/api/v1/me", "/", "/healthz"):
        answer = client.get(other, base_url="http://usercontent.test")
        assert answer.status_code == 404 and "Set-Cookie" not in answer.headers, other
    assert client.get("/login").status_code == 200


@pytest.mark.parametrize("origin", ["usercontent.test", "ftp://x.test", "https://x.test/path"])
def test_a_malformed_content_origin_stops_the_start(tmp_path, database_url, origin):
    from tests.conftest import make_app

    with pytest.raises(ValueError, match="SHUYUAN_CONTENT_ORIGIN"):
        make_app(database_url, str(tmp_path), CONTENT_ORIGIN=origin)


def test_active_content_is_never_delivered_inline(
    client, app, tmp_path, teacher, make_resource, token_for, monkeypatch
):
    """Should an SVG or HTML object ever be attached (a plugin accepting it, an import),
    it is delivered as a download, and a local download runs nothing even opened as a
    page."""
    from app.media.models import MediaAttachment, MediaObject
    from app.media.storage import get_storage, read_token

    monkeypatch.setitem(app.config, "STORAGE_URL", f"file://{tmp_path}/media")
    content_id = make_resource(teacher, "image")
    storage = get_storage()
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    storage.put_bytes("sha256/ab/svg", svg, "image/svg+xml")
    resource = db.session.execute(select(Resource).filter_by(content_id=content_id)).scalar_one()
    obj = MediaObject(
        backend=storage.name,
        key="sha256/ab/svg",
        size=len(svg),
        checksum="ab" * 32,
        media_type="image/svg+xml",
        meta={},
    )
    db.session.add(obj)
    db.session.flush()
    attachment = MediaAttachment(
        resource_id=resource.id, role="primary", object_id=obj.id, filename="图.svg"
    )
    db.session.add(attachment)
    db.session.commit()
    with app.test_request_context():
        delivery = services.delivery_url(db.session.merge(teacher), attachment.public_id)
    token = delivery.url.rsplit("/", 1)[1]
    with app.test_request_context():
        assert read_token(token, "get")["i"] is False
    served = client.get(delivery.url[len("http://localhost") :])
    assert served.status_code == 200
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert served.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
