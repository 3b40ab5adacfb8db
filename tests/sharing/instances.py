"""Real instances for federation tests: gunicorn processes on free loopback ports, each
with its own database and storage, and a tampering proxy that can sit in front of one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ROOT = Path(__file__).resolve().parents[2]
HOP_HEADERS = {
    "connection",
    "transfer-encoding",
    "content-length",
    "keep-alive",
    "content-encoding",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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

        wait_until(up, 90, f"{self.name} to start")

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


class TamperProxy:
    """Forwards to an instance; ``mode`` decides what it does to feed pages:
    ``pass``, ``body`` (flip the body, keep the signature), ``wrong_key`` (re-sign with
    a key the instance does not publish), ``replay`` (serve a recorded older page)."""

    def __init__(self, upstream: str, port: int):
        self.upstream = upstream
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.mode = "pass"
        self.recorded: dict[str, tuple[int, list, bytes]] = {}
        self.server = make_server("127.0.0.1", port, self._wsgi, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()

    @Request.application
    def _wsgi(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        is_feed = "/feed" in request.path
        if is_feed and self.mode != "pass":
            headers.pop("If-None-Match", None)
        if is_feed and self.mode == "replay" and "first" in self.recorded:
            status, out_headers, body = self.recorded["first"]
            return Response(body, status=status, headers=out_headers)
        upstream = requests.request(
            request.method,
            self.upstream + request.full_path.rstrip("?"),
            headers=headers,
            data=request.get_data(),
            allow_redirects=False,
            timeout=60,
        )
        out_headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS]
        body = upstream.content
        if is_feed and upstream.status_code == 200:
            if self.mode == "pass" and "page=1" in request.query_string.decode():
                self.recorded.setdefault("first", (upstream.status_code, out_headers, body))
            elif self.mode == "body":
                body = body.replace(b'"title":"', b'"title":"X', 1)
            elif self.mode == "wrong_key":
                out_headers = _resign(upstream.status_code, out_headers, body)
        return Response(body, status=upstream.status_code, headers=out_headers)


def _resign(status: int, headers: list, body: bytes) -> list:
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

    key = ed25519.Ed25519PrivateKey.generate()

    class Keys(HTTPSignatureKeyResolver):
        def resolve_private_key(self, key_id):
            return key

        def resolve_public_key(self, key_id):
            return key.public_key()

    class Message:
        status_code = status

        def __init__(self):
            self.headers = {
                k: v
                for k, v in headers
                if k.lower() not in ("signature", "signature-input", "content-digest")
            }

    message = Message()
    HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=Keys()).sign(
        message,
        key_id="not-a-published-key",
        label="shuyuan",
        tag="shuyuan-feed",
        covered_component_ids=("@status", "content-type", "content-digest"),
        body=body,
    )
    return list(message.headers.items())
