"""Where media bytes live: a local folder or an S3-compatible store (MinIO).

``get_storage()`` returns the backend named by config ``STORAGE_URL``:

- ``file:///srv/shuyuan/media`` (default: ``instance/media``): bytes on a local disk
  (:mod:`app.media.storage.local`); the browser uploads and downloads through short-lived
  URLs signed with ``SECRET_KEY`` and served by Flask (:mod:`app.media.views`).
- ``s3://KEY:SECRET@host:port/bucket?secure=false&region=us-east-1``: any S3 API through the
  ``minio`` SDK (:mod:`app.media.storage.s3`); the browser talks to the store directly
  through presigned URLs, so upload and download bytes never pass through a Flask worker.

Both offer the same operations (:class:`~app.media.storage.base.Storage`), including
multipart uploads (parts numbered from 1), so services never look at which one is in use.
Keys are plain strings such as ``uploads/<upload id>/data`` (an upload, and once verified
the object itself) or ``sha256/ab/ab12...`` (generated and older objects).
"""

from __future__ import annotations

import threading
from urllib.parse import unquote, urlsplit

from flask import current_app

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
    content_disposition,
)
from app.media.storage.local import LocalStorage, TokenRejected, read_token, sign_token
from app.media.storage.s3 import S3Storage

__all__ = [
    "CHUNK",
    "NO_SPACE",
    "ListedObject",
    "LocalStorage",
    "ObjectChanged",
    "PartInfo",
    "PendingUpload",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "TokenRejected",
    "content_disposition",
    "get_storage",
    "read_token",
    "sign_token",
    "storage_for_url",
]

_LOCK = threading.Lock()


def storage_for_url(url: str, region: str = "us-east-1", **s3_options) -> Storage:
    """The backend for ``url``; ``s3_options`` (timeouts, retries, CA file) go to
    :class:`S3Storage`."""
    if url.startswith("file://"):
        return LocalStorage(unquote(urlsplit(url).path))
    if url.startswith("s3://"):
        return S3Storage(url, region, **s3_options)
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
                storage = storage_for_url(
                    url,
                    app.config["MEDIA_S3_REGION"],
                    connect_timeout=app.config["MEDIA_S3_CONNECT_TIMEOUT"],
                    read_timeout=app.config["MEDIA_S3_READ_TIMEOUT"],
                    retries=app.config["MEDIA_S3_RETRIES"],
                    ca_certs=app.config["MEDIA_S3_CA_CERTS"],
                )
                cache[url] = storage
    return storage
