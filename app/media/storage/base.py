"""The storage interface every backend implements, its errors and small value types
(see :mod:`app.media.storage`)."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

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


class ObjectChanged(StorageError):
    """The object is no longer the version that was checked (written in between)."""


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
    def fingerprint(self, key: str) -> tuple[int, str] | None:
        """``(size, version)`` of the object at ``key`` (S3: its ETag; local: inode and
        modification time), or None.  Any write to the key changes the version."""

    def read_version(self, key: str, version: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """The bytes of ``key`` as they are in ``version`` (:meth:`fingerprint`): raises
        :class:`ObjectChanged` (before any byte) if the key holds other bytes now."""

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
