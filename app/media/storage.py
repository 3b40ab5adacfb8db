"""Where media bytes live: a local folder or an S3-compatible store (MinIO).

``get_storage()`` returns the backend named by config ``STORAGE_URL``:

- ``file:///srv/shuyuan/media`` (default: ``instance/media``): bytes on a local disk; the
  browser uploads and downloads through short-lived URLs signed with ``SECRET_KEY`` and
  served by Flask (:mod:`app.media.views`).
- ``s3://KEY:SECRET@host:port/bucket?secure=false&region=us-east-1``: any S3 API through the
  ``minio`` SDK; the browser talks to the store directly through presigned URLs, so upload
  and download bytes never pass through a Flask worker.

Both offer the same operations, including multipart uploads (parts numbered from 1), so
services never look at which one is in use.  Keys are plain strings such as
``sha256/ab/ab12...`` (stored objects) or ``uploads/<upload id>/...`` (staging).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from flask import current_app, url_for
from itsdangerous import BadSignature, URLSafeSerializer

CHUNK = 1024 * 1024


class StorageError(Exception):
    """The store refused or failed an operation."""


class StorageUnavailable(StorageError):
    """The store cannot take or give bytes now: the media folder's disk is full
    (``reason`` "disk_full") or S3 does not answer ("unreachable").  Answered with 503
    (app/media/__init__.py); the request's rows are rolled back and what was being written
    is removed, so nothing is half-recorded."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# A full disk (or quota, or a folder made read-only by the kernel after errors).
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


@dataclass
class PartInfo:
    number: int
    etag: str
    size: int


@dataclass
class ListedObject:
    key: str
    size: int
    modified: datetime


@dataclass
class PendingUpload:
    key: str
    upload_token: str
    initiated: datetime | None


def content_disposition(filename: str, inline: bool = True) -> str:
    """``inline; filename="fallback"; filename*=UTF-8''%E8%AF%BE...`` (RFC 6266 / 5987)."""
    kind = "inline" if inline else "attachment"
    fallback = (
        "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in filename)
        or "download"
    )
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class Storage:
    name = "abstract"

    # --- plain objects
    def put_file(self, key: str, path: str, media_type: str) -> None: ...
    def put_bytes(self, key: str, data: bytes, media_type: str) -> None: ...
    def stat(self, key: str) -> int | None: ...
    def read_range(self, key: str, start: int, length: int) -> bytes: ...
    def iter_chunks(self, key: str, chunk: int = CHUNK) -> Iterator[bytes]: ...
    def download_to(self, key: str, path: str) -> None: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str) -> Iterator[ListedObject]: ...
    def move(self, source: str, target: str) -> None: ...
    def local_path(self, key: str) -> str | None:
        return None

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for item in list(self.list(prefix)):
            self.delete(item.key)
            count += 1
        return count

    # --- multipart uploads
    def start_upload(self, key: str, media_type: str) -> str: ...
    def single_put_url(self, key: str, max_bytes: int, expires: int) -> str: ...
    def part_url(
        self, key: str, upload_token: str, number: int, max_bytes: int, expires: int
    ) -> str: ...
    def list_parts(self, key: str, upload_token: str) -> list[PartInfo]: ...
    def complete_upload(self, key: str, upload_token: str, parts: list[PartInfo]) -> None: ...
    def abort_upload(self, key: str, upload_token: str) -> None: ...
    def pending_uploads(self, prefix: str) -> list[PendingUpload]: ...

    # --- delivery
    def download_url(
        self, key: str, filename: str, media_type: str, expires: int, inline: bool = True
    ) -> str: ...


# --- local folder ------------------------------------------------------------------------

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
            os.replace(tmp, target)
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
        os.replace(self._path(source), destination)

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


# --- S3 / MinIO -----------------------------------------------------------------------------


class S3Storage(Storage):
    def __init__(self, url: str, region: str = "us-east-1"):
        from minio import Minio

        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        secure = query.get("secure", "true").lower() not in ("false", "0", "no")
        self.bucket = parts.path.strip("/").split("/")[0]
        if not self.bucket:
            raise StorageError("STORAGE_URL needs a bucket: s3://KEY:SECRET@host:port/bucket")
        self.name = f"s3:{self.bucket}"
        self.client = Minio(
            parts.hostname + (f":{parts.port}" if parts.port else ""),
            access_key=unquote(parts.username or ""),
            secret_key=unquote(parts.password or ""),
            secure=secure,
            region=query.get("region", region),
        )
        self._bucket_checked = False

    def ensure_bucket(self) -> None:
        if not self._bucket_checked:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
            self._bucket_checked = True

    def put_file(self, key, path, media_type):
        self.ensure_bucket()
        self.client.fput_object(self.bucket, key, path, content_type=media_type)

    def put_bytes(self, key, data, media_type):
        import io

        self.ensure_bucket()
        self.client.put_object(
            self.bucket, key, io.BytesIO(data), len(data), content_type=media_type
        )

    def stat(self, key):
        from minio.error import S3Error

        try:
            return self.client.stat_object(self.bucket, key).size
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return None
            raise

    def read_range(self, key, start, length):
        response = self.client.get_object(self.bucket, key, offset=start, length=length)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def iter_chunks(self, key, chunk=CHUNK):
        response = self.client.get_object(self.bucket, key)
        try:
            yield from response.stream(chunk)
        finally:
            response.close()
            response.release_conn()

    def download_to(self, key, path):
        self.client.fget_object(self.bucket, key, path)

    def delete(self, key):
        self.client.remove_object(self.bucket, key)

    def list(self, prefix):
        self.ensure_bucket()
        for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            modified = (
                item.last_modified.astimezone(UTC).replace(tzinfo=None)
                if item.last_modified
                else None
            )
            yield ListedObject(item.object_name, item.size or 0, modified)

    def delete_prefix(self, prefix):
        from minio.deleteobjects import DeleteObject

        keys = [DeleteObject(o.key) for o in self.list(prefix)]
        if keys:
            errors = list(self.client.remove_objects(self.bucket, keys))
            if errors:
                raise StorageError(f"could not delete {len(errors)} objects under {prefix}")
        return len(keys)

    def move(self, source, target):
        from minio.commonconfig import ComposeSource, CopySource

        size = self.stat(source)
        if size is not None and size > 5 * 1024**3:
            # Copy is limited to 5 GB per request; compose copies it server-side in parts.
            self.client.compose_object(self.bucket, target, [ComposeSource(self.bucket, source)])
        else:
            self.client.copy_object(self.bucket, target, CopySource(self.bucket, source))
        self.delete(source)

    def start_upload(self, key, media_type):
        self.ensure_bucket()
        return self.client._create_multipart_upload(self.bucket, key, {"Content-Type": media_type})

    def single_put_url(self, key, max_bytes, expires):
        self.ensure_bucket()
        return self.client.presigned_put_object(self.bucket, key, timedelta(seconds=expires))

    def part_url(self, key, upload_token, number, max_bytes, expires):
        return self.client.get_presigned_url(
            "PUT",
            self.bucket,
            key,
            timedelta(seconds=expires),
            extra_query_params={"uploadId": upload_token, "partNumber": str(number)},
        )

    def list_parts(self, key, upload_token):
        from minio.error import S3Error

        parts: list[PartInfo] = []
        marker = None
        try:
            while True:
                result = self.client._list_parts(
                    self.bucket, key, upload_token, max_parts=1000, part_number_marker=marker
                )
                parts.extend(PartInfo(p.part_number, p.etag, p.size or 0) for p in result.parts)
                if not result.is_truncated:
                    return parts
                marker = result.next_part_number_marker
        except S3Error as exc:
            if exc.code == "NoSuchUpload":
                return []
            raise

    def complete_upload(self, key, upload_token, parts):
        from minio.datatypes import Part

        self.client._complete_multipart_upload(
            self.bucket, key, upload_token, [Part(p.number, p.etag) for p in parts]
        )

    def abort_upload(self, key, upload_token):
        from minio.error import S3Error

        try:
            self.client._abort_multipart_upload(self.bucket, key, upload_token)
        except S3Error as exc:
            if exc.code != "NoSuchUpload":
                raise
        if self.stat(key) is not None:
            self.delete(key)

    def pending_uploads(self, prefix):
        self.ensure_bucket()
        result = self.client._list_multipart_uploads(self.bucket, prefix=prefix, max_uploads=1000)
        found = []
        for upload in result.uploads:
            initiated = upload.initiated_time
            if initiated is not None:
                initiated = initiated.astimezone(UTC).replace(tzinfo=None)
            found.append(PendingUpload(upload.object_name, upload.upload_id, initiated))
        return found

    def download_url(self, key, filename, media_type, expires, inline=True):
        return self.client.presigned_get_object(
            self.bucket,
            key,
            timedelta(seconds=expires),
            response_headers={
                "response-content-type": media_type,
                "response-content-disposition": content_disposition(filename, inline),
            },
        )


def _is_outage(exc: Exception) -> bool:
    """No answer from S3: the minio SDK's transport (urllib3: refused connections,
    timeouts, retries used up; matched by module so that urllib3 stays minio's own
    dependency), a 5xx after its retries, or a plain socket error."""
    from minio.error import ServerError

    if isinstance(exc, ServerError | ConnectionError | TimeoutError):
        return True
    return any(cls.__module__.startswith("urllib3.") for cls in type(exc).__mro__)


def _s3_unavailable(method):
    """S3 that does not answer (connection refused, timeouts, 5xx after the SDK's own
    retries) becomes :class:`StorageUnavailable`; S3's answers (NoSuchKey...) pass."""

    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            if _is_outage(exc):
                raise StorageUnavailable("unreachable", f"{type(exc).__name__}: {exc}") from exc
            raise

    return call


def _s3_unavailable_stream(method):
    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            yield from method(*args, **kwargs)
        except Exception as exc:
            if _is_outage(exc):
                raise StorageUnavailable("unreachable", f"{type(exc).__name__}: {exc}") from exc
            raise

    return call


for _name in (
    "ensure_bucket",
    "put_file",
    "put_bytes",
    "stat",
    "read_range",
    "download_to",
    "delete",
    "delete_prefix",
    "move",
    "start_upload",
    "list_parts",
    "complete_upload",
    "abort_upload",
    "pending_uploads",
):
    setattr(S3Storage, _name, _s3_unavailable(getattr(S3Storage, _name)))
for _name in ("iter_chunks", "list"):
    setattr(S3Storage, _name, _s3_unavailable_stream(getattr(S3Storage, _name)))


_LOCK = threading.Lock()


def storage_for_url(url: str, region: str = "us-east-1") -> Storage:
    if url.startswith("file://"):
        return LocalStorage(unquote(urlsplit(url).path))
    if url.startswith("s3://"):
        return S3Storage(url, region)
    raise StorageError(f"Unsupported STORAGE_URL scheme: {url.split(':', 1)[0]}")


def get_storage() -> Storage:
    """The backend of the current app's ``STORAGE_URL`` (one client per URL and process)."""
    app = current_app
    url = app.config["STORAGE_URL"]
    cache = app.extensions.setdefault("shuyuan_storage", {})
    storage = cache.get(url)
    if storage is None:
        with _LOCK:
            storage = cache.get(url)
            if storage is None:
                storage = storage_for_url(url, app.config.get("MEDIA_S3_REGION", "us-east-1"))
                cache[url] = storage
    return storage
