"""The local-folder backend: bytes on disk, moved by Flask routes through URLs signed
with ``SECRET_KEY`` (see :mod:`app.media.storage`)."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app, url_for
from itsdangerous import BadSignature, URLSafeSerializer

from app.media.storage.base import (
    CHUNK,
    NO_SPACE,
    ListedObject,
    ObjectChanged,
    PartInfo,
    PendingUpload,
    Storage,
    StorageError,
    StorageUnavailable,
)

_SALT = "shuyuan-media-local-v1"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def sign_token(payload: dict, expires: int) -> str:
    """A URL-safe token carrying ``payload`` and an expiry ``expires`` seconds from now
    (negative values make an already expired token, for tests)."""
    return _serializer().dumps({**payload, "e": int(time.time()) + int(expires)})


class TokenRejected(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_token(token: str, op: str) -> dict:
    """The payload of a token made by :func:`sign_token`; raises :class:`TokenRejected`
    when the signature does not match (tampered) or the token has expired."""
    try:
        payload = _serializer().loads(token)
    except BadSignature:
        raise TokenRejected("tampered") from None
    if not isinstance(payload, dict) or payload.get("op") != op:
        raise TokenRejected("tampered")
    if int(payload.get("e", 0)) < time.time():
        raise TokenRejected("expired")
    return payload


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_replace(source: Path, target: Path) -> None:
    """Rename ``source`` over ``target`` so that after a crash or power cut the key holds
    either its old bytes or all of the new ones: the file's data reaches the disk before
    the rename, and the rename (the folder entry) before this returns.  Without the two
    fsyncs a file system may persist the rename first, and a database row committed just
    after would name a short or empty file (an edge node in a school with an unreliable
    supply would then never fetch it again, as its hash "is here")."""
    fd = os.open(source, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(source, target)
    _fsync_dir(target.parent)


class LocalStorage(Storage):
    name = "file"

    def __init__(self, root: str):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise StorageError(f"Key escapes the storage folder: {key!r}")
        return path

    def local_path(self, key: str) -> str | None:
        return str(self._path(key))

    def _write_atomic(self, target: Path, writer) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            writer(tmp)
            durable_replace(tmp, target)
        except OSError as exc:
            if exc.errno in NO_SPACE:
                raise StorageUnavailable("disk_full", str(exc)) from exc
            raise
        finally:
            # The partial file goes, whatever stopped the write (a full disk included).
            if tmp.exists():
                tmp.unlink()

    def put_file(self, key, path, media_type):
        self._write_atomic(self._path(key), lambda tmp: shutil.copyfile(path, tmp))

    def put_bytes(self, key, data, media_type):
        self._write_atomic(self._path(key), lambda tmp: tmp.write_bytes(data))

    def stat(self, key):
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    @staticmethod
    def _version(stat: os.stat_result) -> str:
        # A write is a new file renamed over the key (_write_atomic): a new inode.
        return f"{stat.st_ino}-{stat.st_mtime_ns}"

    def fingerprint(self, key):
        try:
            stat = self._path(key).stat()
        except FileNotFoundError:
            return None
        return stat.st_size, self._version(stat)

    def read_version(self, key, version, chunk=CHUNK):
        try:
            handle = open(self._path(key), "rb")  # noqa: SIM115 (closed by the with below)
        except FileNotFoundError:
            raise ObjectChanged(key) from None
        with handle:
            # The open file keeps its inode even if another one is renamed over the key.
            if self._version(os.fstat(handle.fileno())) != version:
                raise ObjectChanged(key)
            while block := handle.read(chunk):
                yield block

    def read_range(self, key, start, length):
        with open(self._path(key), "rb") as handle:
            handle.seek(start)
            return handle.read(length)

    def iter_chunks(self, key, chunk=CHUNK):
        with open(self._path(key), "rb") as handle:
            while block := handle.read(chunk):
                yield block

    def download_to(self, key, path):
        shutil.copyfile(self._path(key), path)

    def delete(self, key):
        path = self._path(key)
        if path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)

    def list(self, prefix):
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            candidates = [base]
        else:
            candidates = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        for path in candidates:
            if path.name.startswith("."):
                continue
            stat = path.stat()
            yield ListedObject(
                str(path.relative_to(self.root)),
                stat.st_size,
                datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None),
            )

    def delete_prefix(self, prefix):
        path = self._path(prefix.rstrip("/"))
        if path.is_dir():
            count = sum(1 for p in path.rglob("*") if p.is_file())
            shutil.rmtree(path)
            return count
        return super().delete_prefix(prefix)

    def move(self, source, target):
        destination = self._path(target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        source_path = self._path(source)
        durable_replace(source_path, destination)
        if source_path.parent != destination.parent:
            _fsync_dir(source_path.parent)

    # Multipart: parts are files uploads/<id>/part-00001 written by the signed PUT route.
    def _parts_dir(self, key: str) -> Path:
        return self._path(key + ".parts")

    def start_upload(self, key, media_type):
        try:
            self._parts_dir(key).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno in NO_SPACE:
                raise StorageUnavailable("disk_full", str(exc)) from exc
            raise
        return "local"

    def _put_url(self, key: str, max_bytes: int, expires: int) -> str:
        token = sign_token({"op": "put", "k": key, "m": int(max_bytes)}, expires)
        return url_for("media.local_put", token=token, _external=True)

    def single_put_url(self, key, max_bytes, expires):
        return self._put_url(key, max_bytes, expires)

    def part_url(self, key, upload_token, number, max_bytes, expires):
        return self._put_url(f"{key}.parts/part-{number:05d}", max_bytes, expires)

    def list_parts(self, key, upload_token):
        folder = self._parts_dir(key)
        parts = []
        if folder.is_dir():
            for path in sorted(folder.glob("part-*")):
                etag_file = path.with_name("." + path.name + ".etag")
                etag = etag_file.read_text() if etag_file.exists() else ""
                parts.append(PartInfo(int(path.name[5:]), etag, path.stat().st_size))
        return parts

    def complete_upload(self, key, upload_token, parts):
        folder = self._parts_dir(key)

        def assemble(tmp: Path):
            with open(tmp, "wb") as out:
                for part in parts:
                    with open(folder / f"part-{part.number:05d}", "rb") as handle:
                        shutil.copyfileobj(handle, out, CHUNK)

        self._write_atomic(self._path(key), assemble)
        shutil.rmtree(folder, ignore_errors=True)

    def abort_upload(self, key, upload_token):
        shutil.rmtree(self._parts_dir(key), ignore_errors=True)
        self.delete(key)

    def pending_uploads(self, prefix):
        base = self._path(prefix.rstrip("/"))
        found = []
        if base.is_dir():
            for folder in base.rglob("*.parts"):
                mtime = datetime.fromtimestamp(folder.stat().st_mtime, UTC).replace(tzinfo=None)
                found.append(
                    PendingUpload(
                        str(folder.relative_to(self.root))[: -len(".parts")], "local", mtime
                    )
                )
        return found

    def download_url(self, key, filename, media_type, expires, inline=True):
        token = sign_token(
            {"op": "get", "k": key, "n": filename, "t": media_type, "i": inline}, expires
        )
        return url_for("media.local_get", token=token, _external=True)

    def write_part(self, key: str, stream, max_bytes: int) -> tuple[int, str]:
        """Write a PUT body (the signed-URL route) to ``key``; refuse more than ``max_bytes``."""
        target = self._path(key)
        digest = hashlib.md5(usedforsecurity=False)
        written = 0

        def write(tmp: Path):
            nonlocal written
            with open(tmp, "wb") as out:
                while block := stream.read(CHUNK):
                    written += len(block)
                    if written > max_bytes:
                        raise StorageError("too_large")
                    digest.update(block)
                    out.write(block)

        if ".parts/part-" in key and not target.parent.is_dir():
            raise StorageError("no_upload")
        self._write_atomic(target, write)
        etag = digest.hexdigest()
        if ".parts/part-" in key:
            target.with_name("." + target.name + ".etag").write_text(etag)
        return written, etag
