"""Subscriber side of media over federation: fetch the media of accepted remote items
by content hash — deduplicated, verified, resumable.

1. The publisher's media index (signed like the feed, so each SHA-256 is the
   publisher's word) is checked: hashes are 64 hex digits, sizes within
   ``SHARING_MAX_MEDIA_BYTES``, file names plain names (no folders, no ``..``, no
   control characters), media types ``type/subtype``.  A bad entry refuses the index.
2. An object whose hash this instance already has (a media row with that checksum, or
   the bytes under ``sharing/media/<sha256>`` from an offline package) is not fetched:
   finished objects are never downloaded twice.
3. Otherwise the bytes go to ``SHARING_PARTIAL_DIR/<sha256>.part`` — several objects
   without a partial file in one request (:func:`download_batch`, split by the sizes of
   the signed index, each hashed on its own), one with a partial file on its own.  A cut connection
   keeps the partial file; the next run hashes what is there and asks only for the rest
   (``Range: bytes=N-``).  More bytes than listed → refused, the partial file deleted;
   the SHA-256 of the whole must equal the name, otherwise refused and deleted — an
   object enters storage whole and verified or not at all.
4. A verified object is moved into storage and becomes a media row attached to the
   local (materialised) resource, so the item's page plays it from this instance.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from flask import current_app
from sqlalchemy import select

from app.catalog.models import Resource
from app.extensions import db
from app.sharing.models import FederatedItem, Subscription
from app.sharing.services import keys
from app.sharing.services import manifest as manifests
from app.sharing.services.keys import FederationRefused
from app.sharing.services.media_serve import (
    MEDIA_BATCH_MAX,
    MEDIA_BATCH_PATH,
    MEDIA_INDEX_PATH,
    MEDIA_OBJECT_PATH,
)

log = logging.getLogger(__name__)

MEDIA_PREFIX = "sharing/media/"  # the offline packages' prefix: one copy per hash
# Bytes read, written and hashed at a time.  1 MiB: at 256 KiB the per-chunk Python work
# (urllib3's read loop, the counters) was a visible share of the mirror's CPU
# (docs/sharing.md, "Mirror throughput"); larger chunks gain nothing more.
CHUNK = 1024 * 1024
# Chunks read but not yet hashed (the hashing thread's backlog): bounds the memory of a
# download to a few MiB when the hash falls behind the network.
HASH_BACKLOG = 4
# Bytes written to a partial file between two requests to the kernel to start writing
# them to disk (:func:`_write_back`), so the fsync before the object's row waits only for
# the last few MiB.
WRITEBACK = 4 * 1024 * 1024
_MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}$"
)
_ROLE = re.compile(r"^[a-z_]{1,20}$")
_ENTRY_KEYS = {"sha256", "size", "media_type", "filename", "role"}


class MediaRefused(Exception):
    """An object (or the index) is not acceptable; nothing of it is kept."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Interrupted(Exception):
    """The link failed mid-way; what arrived is kept for the next run."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class FetchStats:
    fetched: int = 0  # objects downloaded (in full or resumed) and verified
    reused: int = 0  # objects already here (never fetched again)
    resumed: int = 0  # objects continued from a partial file
    bytes: int = 0  # bytes read from the publisher
    requests: int = 0  # media requests sent to the publisher
    refused: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Thread-safe increments (downloads run in parallel)."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def safe_filename(name) -> bool:
    return (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and ".." not in name
        and not any(ord(c) < 32 or ord(c) == 127 for c in name)
    )


def check_entry(entry, max_bytes: int) -> str | None:
    """Why a media entry of an index is refused, or None."""
    if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
        return "media entry has unknown or missing fields"
    if not isinstance(entry["sha256"], str) or not manifests.DIGEST.match(entry["sha256"]):
        return "media hash is not a SHA-256"
    size = entry["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return "media size is not a number"
    if size > max_bytes:
        return f"media {entry['sha256'][:12]} is larger than {max_bytes} bytes"
    if not isinstance(entry["media_type"], str) or not _MEDIA_TYPE.match(entry["media_type"]):
        return "bad media type"
    if not safe_filename(entry["filename"]):
        return f"unsafe file name {str(entry['filename'])[:60]!r}"
    if not isinstance(entry["role"], str) or not _ROLE.match(entry["role"]):
        return "bad media role"
    return None


def check_index(data, origin: str, uid: str, max_bytes: int) -> dict[str, list[dict]]:
    if not isinstance(data, dict) or set(data) != {"origin", "catalog", "items"}:
        raise MediaRefused("media index has unknown or missing fields")
    if keys.normalise_origin(str(data["origin"])) != origin or data["catalog"] != uid:
        raise MediaRefused("media index names another origin or catalog")
    items = data["items"]
    if not isinstance(items, dict):
        raise MediaRefused("media index items must be an object")
    for content_id, entries in items.items():
        if not manifests.CONTENT_ID.match(content_id) or not isinstance(entries, list):
            raise MediaRefused(f"bad media index item {str(content_id)[:40]!r}")
        for entry in entries:
            problem = check_entry(entry, max_bytes)
            if problem:
                raise MediaRefused(f"item {content_id}: {problem}")
    return items


def _signed_get(session: requests.Session, url: str, headers: dict | None = None, signer=None):
    prepared = requests.Request("GET", url, headers=headers or {}).prepare()
    keys.sign_request(prepared, b"", signer)
    try:
        return session.send(prepared, timeout=30, allow_redirects=False, stream=True)
    except requests.RequestException as exc:
        raise Interrupted(f"connection failed: {type(exc).__name__}") from None


def fetch_index(session: requests.Session, subscription: Subscription) -> dict[str, list[dict]]:
    origin, uid = subscription.remote_origin, subscription.remote_catalog_uid
    response = _signed_get(session, origin + MEDIA_INDEX_PATH.format(uid=uid))
    limit = current_app.config["SHARING_MAX_PAGE_BYTES"]
    try:
        body = response.raw.read(limit + 1, decode_content=True)
    except (requests.RequestException, OSError) as exc:
        raise Interrupted(f"connection failed: {type(exc).__name__}") from None
    finally:
        response.close()
    if response.status_code in (403, 404):
        raise MediaRefused(f"media index answered {response.status_code}")
    if response.status_code != 200:
        raise Interrupted(f"media index answered {response.status_code}")
    if len(body) > limit:
        raise MediaRefused(f"media index larger than {limit} bytes")
    response._content = body
    try:
        keys.verify_response(response, origin)
    except FederationRefused as exc:
        raise MediaRefused(f"media index: {exc.reason}") from None
    try:
        data = json.loads(body)
    except ValueError:
        raise MediaRefused("media index is not valid JSON") from None
    return check_index(data, origin, uid, current_app.config["SHARING_MAX_MEDIA_BYTES"])


def have_object(sha256: str):
    """The media row for a hash this instance holds, creating it for bytes that are here
    already (an offline package stored them); None if the bytes must be fetched."""
    from app.media.models import MediaObject

    obj = db.session.execute(
        select(MediaObject).where(MediaObject.checksum == sha256).limit(1)
    ).scalar_one_or_none()
    return obj


def _storage():
    from app.media.storage import get_storage

    return get_storage()


def _record(sha256: str, size: int, media_type: str):
    from app.media.models import MediaObject

    storage = _storage()
    obj = MediaObject(
        backend=storage.name,
        key=MEDIA_PREFIX + sha256,
        size=size,
        checksum=sha256,
        media_type=media_type,
        meta={"federated": True},
    )
    db.session.add(obj)
    db.session.flush()
    return obj


def _store(part: Path, sha256: str, media_type: str) -> None:
    storage = _storage()
    key = MEDIA_PREFIX + sha256
    target = storage.local_path(key)
    if target is not None:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        # Same file system: a rename, no copy; another one: copied by the storage below.
        # Durable: the row recorded after this names a hash that "is here", so bytes lost
        # in a power cut would never be fetched again (media_fetch step 2).
        from app.media.storage.local import durable_replace

        try:
            durable_replace(part, Path(target))
            return
        except OSError:
            if not part.exists():  # renamed, but not known to be on disk: say so
                raise
    storage.put_file(key, str(part), media_type)
    part.unlink(missing_ok=True)


def partial_path(sha256: str) -> Path:
    folder = Path(current_app.config["SHARING_PARTIAL_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{sha256}.part"


def already_here(entry: dict):
    """The media row for an object this instance holds (recorded now for bytes an
    offline package stored), or None when it must be fetched."""
    sha, size = entry["sha256"], entry["size"]
    existing = have_object(sha)
    if existing is None and _storage().stat(MEDIA_PREFIX + sha) == size:
        existing = _record(sha, size, entry["media_type"])
    return existing


class _Hasher:
    """SHA-256 of the chunks given to :meth:`update`, in order; read once, by
    :meth:`hexdigest`.  ``threaded`` (one connection): in a thread of its own, as
    hashlib releases the GIL on large buffers, so the hash overlaps the transfer (it was
    ~40% of the one-connection mirror's CPU, in series).  Otherwise (several connections,
    whose receiving threads already run side by side) in the caller's thread, without a
    hand-off per chunk (a quarter of the client's py-spy samples of a one-connection run:
    docs/sharing.md, "Mirror throughput, 2026-12-01 (session 9)")."""

    def __init__(self, digest, threaded: bool = True):
        self._digest, self._thread = digest, None
        if threaded:
            self._chunks: queue.Queue = queue.Queue(HASH_BACKLOG)
            self._thread = threading.Thread(target=self._run, name="shuyuan-sha256", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            self._digest.update(chunk)

    def update(self, chunk: bytes) -> None:
        if self._thread is None:
            self._digest.update(chunk)
        else:
            self._chunks.put(chunk)

    def close(self) -> None:
        """Wait for the chunks already given; idempotent (error paths call it too)."""
        if self._thread is not None and self._thread.is_alive():
            self._chunks.put(None)
            self._thread.join()

    def hexdigest(self) -> str:
        self.close()
        return self._digest.hexdigest()


def _write_back(out, start: int, end: int) -> None:
    """Start writing bytes ``start``..``end`` of ``out`` to disk, without waiting.
    Every verified object is fsynced before its row (``durable_replace``); left to that
    fsync, all of a 16 MiB object's dirty pages were written then, 15-33 ms on the
    mirror's critical path here, against 4-10 ms when writeback had been started every
    4 MiB during the download (docs/sharing.md, "Mirror throughput, 2026-12-01").
    ``POSIX_FADV_DONTNEED`` starts writeback of dirty pages (and drops the pages already
    clean: nothing reads a partial file back but a resume, which re-reads it anyway), as
    PostgreSQL's ``*_flush_after`` does where ``sync_file_range`` is missing.  Advice
    only: durability still comes from the fsync."""
    if _FADVISE:
        out.flush()
        os.posix_fadvise(out.fileno(), start, end - start, os.POSIX_FADV_DONTNEED)


_FADVISE = hasattr(os, "posix_fadvise") and hasattr(os, "POSIX_FADV_DONTNEED")


def _held(part: Path, size: int):
    """(digest, length) of what a partial file holds: re-hashed, since the file is the
    only record of the bytes already fetched (nothing about them is in the database).  A
    file longer than the object is deleted."""
    if not part.exists():
        return hashlib.sha256(), 0
    with part.open("rb") as held:
        digest = hashlib.file_digest(held, "sha256")
        have = held.tell()
    if have > size:
        part.unlink()
        return hashlib.sha256(), 0
    return digest, have


def download(
    session: requests.Session,
    origin: str,
    entry: dict,
    stats: FetchStats,
    consume: Callable[[int], None] = lambda n: None,
    progress: Callable[[int], None] = lambda n: None,
    chunk_size: int = CHUNK,
    signer=None,
    hash_thread: bool = True,
) -> Path:
    """Fetch an object's bytes into its partial file (resuming it) and verify them;
    returns the verified file.  Writes nothing to the database, so several downloads can
    run in threads (each with its own ``requests`` session and app context).
    ``chunk_size`` is the read size (the mirror lowers it under a small bandwidth limit,
    so one read never takes more than a second's worth); ``signer`` (from
    :func:`keys.current_signer`) keeps the database out of the download entirely;
    ``hash_thread``: see :class:`_Hasher`."""
    sha, size = entry["sha256"], entry["size"]
    part = partial_path(sha)
    digest, have = _held(part, size)
    if have < size:
        headers = {"Range": f"bytes={have}-"} if have else {}
        url = origin + MEDIA_OBJECT_PATH.format(sha256=sha)
        response = _signed_get(session, url, headers, signer)
        stats.add(requests=1)
        try:
            if response.status_code in (403, 404):
                raise MediaRefused(f"media {sha[:12]}: publisher answered {response.status_code}")
            if response.status_code == 206 and have:
                if not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
                    part.unlink(missing_ok=True)
                    raise MediaRefused(f"media {sha[:12]}: wrong range served")
                stats.add(resumed=1)
            elif response.status_code == 200:
                digest, have = hashlib.sha256(), 0  # no range support: start over
            else:
                raise Interrupted(f"media {sha[:12]}: publisher answered {response.status_code}")
            hasher = _Hasher(digest, hash_thread)
            try:
                have = _receive(
                    response, part, have, size, sha, hasher, stats, consume, progress, chunk_size
                )
            finally:
                hasher.close()
        finally:
            response.close()
        if have < size:
            raise Interrupted(f"media {sha[:12]}: cut after {have} bytes")
    if digest.hexdigest() != sha:
        part.unlink(missing_ok=True)
        raise MediaRefused(f"media {sha[:12]}: hash mismatch")
    _sync(part)
    return part


def _sync(part: Path) -> None:
    """fsync a verified object's file in the download's thread, where its connection has
    nothing left to stream: the mirror's thread syncs it again before its row
    (``durable_replace``), but a clean file returns at once there, so with several
    connections the syncs run side by side instead of one after another in the thread
    that also writes every row (docs/sharing.md, "Mirror throughput, 2026-12-01")."""
    fd = os.open(part, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def download_batch(
    session: requests.Session,
    origin: str,
    entries: list[dict],
    stats: FetchStats,
    verified: Callable[[dict, Path], None],
    refused: Callable[[dict, MediaRefused], None],
    consume: Callable[[int], None] = lambda n: None,
    progress: Callable[[int], None] = lambda n: None,
    chunk_size: int = CHUNK,
    signer=None,
    hash_thread: bool = True,
) -> None:
    """Fetch several whole objects (none with a partial file) in one signed request: the
    publisher sends them back to back, this splits the body by the index's sizes into
    each object's partial file and hashes each on its own.  ``verified(entry, part)`` is
    called as each object is verified (so the caller stores it while the next ones
    arrive), ``refused(entry, exc)`` for one whose hash does not match (its file deleted;
    the others go on).  A cut keeps the current object's partial file (the next run
    resumes it with Range) and raises :class:`Interrupted`; objects after it were not
    started.  A publisher that refuses the batch (404: one object is not shared with
    us, or a publisher without batches) is asked for each object on its own, so each
    gets its own answer.  Like :func:`download`, no database work."""
    if len(entries) > MEDIA_BATCH_MAX:
        raise ValueError(f"at most {MEDIA_BATCH_MAX} objects a batch")
    url = origin + MEDIA_BATCH_PATH + "?objects=" + ",".join(e["sha256"] for e in entries)
    response = _signed_get(session, url, None, signer)
    stats.add(requests=1)
    try:
        # A length other than the index's sizes add up to (when a proxy left it there)
        # would misalign every object after the first that differs.
        length = response.headers.get("Content-Length")
        total = str(sum(entry["size"] for entry in entries))
        if response.status_code == 200 and length in (None, total):
            options = (consume, progress, chunk_size, hash_thread)
            _split(response, entries, stats, verified, refused, *options)
            return
        if response.status_code >= 500:
            raise Interrupted(f"media batch: publisher answered {response.status_code}")
    finally:
        response.close()
    # Refused as a whole, or sizes other than the index's: one object at a time.
    for entry in entries:
        try:
            part = download(
                session, origin, entry, stats, consume, progress, chunk_size, signer, hash_thread
            )
        except MediaRefused as exc:
            refused(entry, exc)
            continue
        verified(entry, part)


def _split(response, entries, stats, verified, refused, consume, progress, chunk_size, hash_thread):
    """The body of a batch response into the objects' partial files, in order."""
    chunks = response.iter_content(chunk_size)
    left = b""  # bytes read past the end of the previous object
    for entry in entries:
        sha, size = entry["sha256"], entry["size"]
        part = partial_path(sha)
        hasher = _Hasher(hashlib.sha256(), hash_thread)
        have = written_back = 0
        try:
            with part.open("wb") as out:
                try:
                    while have < size:
                        if not left:
                            left = next(chunks, b"")
                            if not left:
                                break
                            consume(len(left))
                            stats.add(bytes=len(left))
                            progress(len(left))
                        piece = left[: size - have] if len(left) > size - have else left
                        left = left[len(piece) :]
                        out.write(piece)
                        hasher.update(piece)
                        have += len(piece)
                        if have - written_back >= WRITEBACK:
                            _write_back(out, written_back, have)
                            written_back = have
                except (requests.RequestException, OSError) as exc:
                    raise Interrupted(f"media {sha[:12]}: cut after {have} bytes") from exc
        finally:
            hasher.close()
        if have < size:
            raise Interrupted(f"media {sha[:12]}: cut after {have} bytes")
        if hasher.hexdigest() != sha:
            part.unlink(missing_ok=True)
            refused(entry, MediaRefused(f"media {sha[:12]}: hash mismatch"))
            continue
        verified(entry, part)


def _receive(response, part, have, size, sha, hasher, stats, consume, progress, chunk_size):
    """Append the response body to the partial file (hashing it); returns the new length.
    More bytes than listed delete the file; a broken link keeps what was written."""
    written_back = have
    with part.open("ab" if have else "wb") as out:
        try:
            for chunk in response.iter_content(chunk_size):
                if have + len(chunk) > size:
                    out.close()
                    part.unlink(missing_ok=True)
                    raise MediaRefused(f"media {sha[:12]}: more bytes than listed")
                consume(len(chunk))
                out.write(chunk)
                hasher.update(chunk)
                have += len(chunk)
                if have - written_back >= WRITEBACK:
                    _write_back(out, written_back, have)
                    written_back = have
                stats.add(bytes=len(chunk))
                progress(len(chunk))
        except (requests.RequestException, OSError) as exc:
            raise Interrupted(f"media {sha[:12]}: cut after {have} bytes") from exc
    return have


def finish(entry: dict, part: Path, stats: FetchStats):
    """Move a verified download into storage and record it (the caller commits)."""
    existing = have_object(entry["sha256"])
    if existing is not None:  # another run finished it meanwhile
        part.unlink(missing_ok=True)
        return existing
    _store(part, entry["sha256"], entry["media_type"])
    stats.add(fetched=1)
    return _record(entry["sha256"], entry["size"], entry["media_type"])


def fetch_object(
    session: requests.Session,
    origin: str,
    entry: dict,
    stats: FetchStats,
    consume: Callable[[int], None] = lambda n: None,
    progress: Callable[[int], None] = lambda n: None,
):
    """The media row of ``entry`` once its verified bytes are in storage (one object,
    in this thread: the mirror runs :func:`download` in parallel instead)."""
    existing = already_here(entry)
    if existing is not None:
        stats.add(reused=1)
        return existing
    part = download(session, origin, entry, stats, consume, progress)
    return finish(entry, part, stats)


def attach(content_id: str, entry: dict, obj) -> None:
    """Attach a fetched object to the materialised resource (its page plays it here)."""
    from app.catalog.models import State
    from app.media.models import MediaAttachment

    fed = db.session.get(FederatedItem, content_id)
    if fed is None or fed.item_type != "resource":
        return
    # The id only: loading the row would load its tags and grades too.
    resource_id = db.session.execute(
        select(Resource.id).where(
            Resource.content_id == content_id, Resource.state == State.PUBLISHED
        )
    ).scalar_one_or_none()
    if resource_id is None:
        return
    row = db.session.execute(
        select(MediaAttachment).filter_by(resource_id=resource_id, role=entry["role"])
    ).scalar_one_or_none()
    if row is None:
        row = MediaAttachment(
            resource_id=resource_id,
            role=entry["role"],
            object_id=obj.id,
            filename=entry["filename"],
            uploaded_by_id=None,
        )
        db.session.add(row)
    elif row.object_id != obj.id:
        row.object_id, row.filename = obj.id, entry["filename"]
    db.session.flush()


def plan(subscription: Subscription, index: dict[str, list[dict]]) -> list[tuple[str, dict]]:
    """(content_id, entry) of the media of this subscription's materialised items."""
    wanted = set(
        db.session.execute(
            select(FederatedItem.content_id).where(
                FederatedItem.subscription_id == subscription.id,
                FederatedItem.withdrawn_at.is_(None),
            )
        ).scalars()
    )
    out = []
    for content_id in sorted(wanted & set(index)):
        fed = db.session.get(FederatedItem, content_id)
        fed.media = index[content_id]
        out.extend((content_id, entry) for entry in index[content_id])
    db.session.flush()
    return out
