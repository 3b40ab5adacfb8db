"""Real instances for federation tests: gunicorn processes on free loopback ports, each
with its own database and storage, and a tampering proxy that can sit in front of one."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from app.accounts import services as accounts
from app.accounts.models import Role
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.common.events import commit
from app.extensions import db
from app.sharing.services import catalogs
from tests.conftest import create_postgres_database, make_app

ROOT = Path(__file__).resolve().parents[2]
HOP_HEADERS = {
    "connection",
    "transfer-encoding",
    "content-length",
    "keep-alive",
    "content-encoding",
}


# A district-visible art video: what the shared catalogs of these tests select.
ART_VIDEO = {
    "kind": "video",
    "visibility": "district",
    "subject": "art",
    "url": "https://example.org/v",
}


def instance_database(backend: str, folder: Path, name: str):
    """The database of instance ``name``: a SQLite file in ``folder`` or a throwaway
    PostgreSQL database; returned with the function that drops it."""
    if backend == "sqlite":
        return f"sqlite:///{folder / (name + '.db')}", lambda: None
    return create_postgres_database()


def instance_app(backend: str, folder: Path, name: str, origin: str, peer: str, **config):
    """Instance ``name``'s database (:func:`instance_database`), its folder ``folder/name``
    and a test app on both that shares as ``origin`` with ``peer``; ``config`` adds
    settings.  Returns the database URL, the function that drops it, and the app."""
    url, drop = instance_database(backend, folder, name)
    (folder / name).mkdir()
    application = make_app(
        url, str(folder / name), SHARING_ORIGIN=origin, SHARING_PEERS=[peer], **config
    )
    return url, drop, application


def sharing_env(origin: str, peer: str, **more) -> dict:
    """The environment of an :class:`Instance` that shares as ``origin`` with ``peer``."""
    return {"SHUYUAN_SHARING_ORIGIN": origin, "SHUYUAN_SHARING_PEERS": peer, **more}


def release_databases(apps, drops) -> None:
    """Once the instances have stopped: close the test's own connections to their
    databases, then drop them."""
    for application in apps:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()
    for drop in drops:
        drop()


def person(email: str, name: str, role, **scope):
    """A user with ``role`` in ``scope`` (``school=`` or ``district=``), no password: the
    tests call the instances with bearer tokens."""
    user = accounts.create_user(email, name, None, **scope)
    accounts.assign_role(user, role, **scope)
    return user


def publishing_district(region, district, school, teacher, admin):
    """``region``, ``district`` and ``school`` (code, Chinese and English name each, each in
    the one before) with a teacher of the school and an administrator of the district
    (email and name each); committed.  Returns the district, the teacher and the admin."""
    made = accounts.ensure_district(accounts.ensure_region(*region), *district)
    in_school = accounts.ensure_school(made, *school)
    teacher_user = person(*teacher, Role.TEACHER, school=in_school)
    admin_user = person(*admin, Role.DISTRICT_ADMIN, district=made)
    commit()
    return made, teacher_user, admin_user


def publish_art_catalog(admin, district, title: str):
    """``district``'s shared catalog of art resources, released once ("第一版"); returned
    with a bearer token of ``admin`` for the API."""
    shared = catalogs.create_catalog(
        admin, district.id, {"title": title, "rules": {"subject": ["art"]}}
    )
    catalogs.publish_release(admin, shared, "第一版")
    _, token = accounts.issue_token(admin, "test")
    return shared, token


class ArtPublisher(NamedTuple):
    """What :func:`publish_art_videos` made."""

    district: object
    teacher: object
    admin: object
    videos: list
    catalog: object
    token: str  # a bearer token of the admin

    def seed(self, **more) -> dict:
        """The catalog's id and uid and the admin's token (what a subscriber test needs
        of a publisher), with ``more``."""
        return {"catalog_id": self.catalog.id, "uid": self.catalog.uid, "token": self.token, **more}


def publish_art_videos(
    region, district, school, teacher, admin, titles, catalog_title, prepare=None
) -> ArtPublisher:
    """In an app context: :func:`publishing_district`, then one of the teacher's art
    videos (:data:`ART_VIDEO`) per title in ``titles``, submitted (``prepare(index, video)``
    runs before, e.g. to attach media), and :func:`publish_art_catalog` ``catalog_title``.
    Not committed after the videos."""
    made, teacher_user, admin_user = publishing_district(region, district, school, teacher, admin)
    videos = []
    for index, title in enumerate(titles):
        video = catalog.create_content(teacher_user, Resource, {"title": title, **ART_VIDEO})
        if prepare is not None:
            prepare(index, video)
        catalog.submit_content(teacher_user, Resource, video.content_id)
        videos.append(video)
    shared, token = publish_art_catalog(admin_user, made, catalog_title)
    return ArtPublisher(made, teacher_user, admin_user, videos, shared, token)


def api_call(method: str, url: str, token: str, **kw) -> requests.Response:
    """A request to an instance's API with a bearer token."""
    return requests.request(
        method, url, headers={"Authorization": f"Bearer {token}"}, timeout=120, **kw
    )


def request_subscription(subscriber, token: str, district_id: int, origin: str, uid: str, **more):
    """The subscriber instance's district asks (by the API) for catalog ``uid`` of the
    publisher at ``origin``; ``more`` adds fields (``auto_accept``)."""
    return api_call(
        "POST",
        subscriber.url + "/api/v1/sharing/subscriptions",
        token,
        json={"district_id": district_id, "origin": origin, "catalog_uid": uid, **more},
    )


def approve_remote_request(publisher, token: str, request_id) -> requests.Response:
    """The publisher instance approves a subscriber's remote request (by the API)."""
    return api_call(
        "POST",
        f"{publisher.url}/api/v1/sharing/remote-requests/{request_id}/decision",
        token,
        json={"approve": True},
    )


def wait_until(condition, timeout: float = 60.0, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Instance:
    """A Shuyuan instance served by gunicorn (two workers with four threads unless told
    otherwise) in a subprocess."""

    def __init__(
        self,
        name: str,
        database_url: str,
        folder: Path,
        port: int,
        env: dict,
        workers: int = 2,
        threads: int = 4,
    ):
        self.name = name
        self.workers = workers
        self.threads = threads
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.folder = folder
        self.log_path = folder / f"{name}.log"
        self.env = (
            os.environ.copy()
            | {
                "DATABASE_URL": database_url,
                "SECRET_KEY": f"secret-{name}-not-for-production",
                "SHUYUAN_INSTANCE_PATH": str(folder),
                "STORAGE_URL": f"file://{folder}/media",
                "SEARCH_INDEX_DIR": str(folder / "search-index"),
                "SHUYUAN_PLUGINS": "",
            }
            | env
        )
        self.env.pop("REDIS_URL", None)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--bind",
                f"127.0.0.1:{self.port}",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def up():
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log()[-3000:]}")
            try:
                return requests.get(self.url + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        # Importing the app alone took 90 s on a 2-core machine under a load of 20.
        wait_until(up, 180, f"{self.name} to start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Proxy:
    """A threaded HTTP server on ``port`` in front of ``upstream``: a subclass's ``_wsgi``
    decides what it does with each request, :meth:`forward` passes one on."""

    def __init__(self, upstream: str, port: int):
        self.upstream = upstream
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server = make_server("127.0.0.1", port, self._wsgi, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        # shutdown() waits for serve_forever to notice: on a proxy that never started
        # (an instance failed to boot first) it would wait for ever and hide the error.
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def forward(self, request: Request, headers: dict, **options):
        """``request`` sent on upstream with ``headers``; returns the upstream's response
        and its headers less the hop-by-hop ones."""
        upstream = requests.request(
            request.method,
            self.upstream + request.full_path.rstrip("?"),
            headers=headers,
            data=request.get_data(),
            allow_redirects=False,
            timeout=60,
            **options,
        )
        out_headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS]
        return upstream, out_headers


class TamperProxy(Proxy):
    """Forwards to an instance; ``mode`` decides what it does to feed pages:
    ``pass``, ``body`` (flip the body, keep the signature), ``wrong_key`` (re-sign with
    a key the instance does not publish), ``replay`` (serve a recorded older page)."""

    def __init__(self, upstream: str, port: int):
        super().__init__(upstream, port)
        self.mode = "pass"
        self.recorded: dict[str, tuple[int, list, bytes]] = {}

    @Request.application
    def _wsgi(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        is_feed = "/feed" in request.path
        if is_feed and self.mode != "pass":
            headers.pop("If-None-Match", None)
        if is_feed and self.mode == "replay" and "first" in self.recorded:
            status, out_headers, body = self.recorded["first"]
            return Response(body, status=status, headers=out_headers)
        upstream, out_headers = self.forward(request, headers)
        body = upstream.content
        if is_feed and upstream.status_code == 200:
            if self.mode == "pass" and "page=1" in request.query_string.decode():
                self.recorded.setdefault("first", (upstream.status_code, out_headers, body))
            elif self.mode == "body":
                body = body.replace(b'"title":"', b'"title":"X', 1)
            elif self.mode == "wrong_key":
                out_headers = _resign(upstream.status_code, out_headers, body)
        return Response(body, status=upstream.status_code, headers=out_headers)


def sign_feed_page(key, key_id: str, status: int, headers: dict, body: bytes) -> dict:
    """``headers`` of a feed page answer (``status``, ``body``) with the content digest and
    the signature a publisher adds, made with the Ed25519 ``key`` under ``key_id``."""
    from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

    class Keys(HTTPSignatureKeyResolver):
        def resolve_private_key(self, key_id):
            return key

        def resolve_public_key(self, key_id):
            return key.public_key()

    class Message:
        status_code = status

    message = Message()
    message.headers = dict(headers)
    HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=Keys()).sign(
        message,
        key_id=key_id,
        label="shuyuan",
        tag="shuyuan-feed",
        covered_component_ids=("@status", "content-type", "content-digest"),
        body=body,
    )
    return message.headers


def _resign(status: int, headers: list, body: bytes) -> list:
    """The page's headers signed again with a key the publisher does not publish."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    unsigned = {
        k: v
        for k, v in headers
        if k.lower() not in ("signature", "signature-input", "content-digest")
    }
    key = ed25519.Ed25519PrivateKey.generate()
    return list(sign_feed_page(key, "not-a-published-key", status, unsigned, body).items())
