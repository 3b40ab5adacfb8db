"""Verification of an assembled upload: size, sniffed type, SHA-256, H5P unpacking, then
the object is recorded with its SHA-256 (identical bytes stored before are reused) and
attached to the resource's draft."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import tempfile
import threading
from collections.abc import Iterator

from flask import current_app
from sqlalchemy import select

from app.accounts.models import User
from app.common.transaction import savepoint
from app.errors import AppError
from app.extensions import db
from app.media import h5p
from app.media.models import MediaObject, MediaUpload
from app.media.services.attachments import attach
from app.media.services.common import (
    accepted_types,
    enqueue_after_commit,
    setting,
)
from app.media.services.derivatives import picture_for
from app.media.services.permissions import draft_for
from app.media.services.uploads import discard_staging, stored_key
from app.media.sniff import describe, sniff
from app.media.storage import ObjectChanged, get_storage

SNIFF_BYTES = 8192
VERIFY_CHUNK = 4 * 1024 * 1024
PREFETCH_BLOCKS = 4  # blocks read ahead while the previous ones are hashed (16 MiB)
FINALIZE_JOB = "app.media.services.verification:finalize_upload"
DERIVATIVES_JOB = "app.media.services.derivatives:make_derivatives"
DROP_JOB = "app.media.services.verification:drop_duplicate"


def request_verification(upload_id: str) -> None:
    """Verify a completed upload: inside this unit of work with ``JOBS_EAGER`` (so the
    answer carries the verdict), otherwise as a job started once the ``verifying`` state
    is committed (a job started earlier would not see it)."""
    if current_app.config.get("JOBS_EAGER"):
        finalize_upload(upload_id)
    else:
        enqueue_after_commit(FINALIZE_JOB, upload_id)


def fail(upload: MediaUpload, message: str) -> None:
    discard_staging(upload)
    upload.state = "failed"
    upload.error = message[:500]
    db.session.flush()


def finalize_upload(upload_id: str) -> str:
    """Job: verify an assembled upload and record it by its SHA-256.  Returns the state.

    The bytes stay where they are (:func:`stored_key`, a key no client can write any
    more): the object row records that key and the SHA-256 read back here, and identical
    bytes stored before are reused by looking the hash up (this upload's copy is then
    dropped once that is committed).  There is no copy to a ``sha256/…`` key.
    """
    upload = db.session.execute(
        select(MediaUpload).filter_by(public_id=upload_id)
    ).scalar_one_or_none()
    if upload is None or upload.state != "verifying":
        return upload.state if upload else "missing"
    storage = get_storage()
    key = stored_key(upload)
    if key != upload.staging_key and storage.stat(upload.staging_key) is not None:
        # A single PUT's URL stays valid until it expires: the file is first moved (a
        # rename, or one server-side copy of at most MEDIA_SINGLE_PUT_MAX_BYTES) to a
        # key that URL cannot write, and only that key is read and kept.
        storage.move(upload.staging_key, key)
    found = storage.fingerprint(key)
    if found is None or found[0] != upload.size:
        size = found[0] if found else 0
        fail(upload, f"The stored file has {size} bytes; {upload.size} were announced.")
        return upload.state
    version = found[1]
    # One read of the stored bytes, of exactly the version just looked at (S3: If-Match
    # on its ETag): the first block names the type (refused before the rest is read),
    # every block feeds the SHA-256.  The content address is only ever the hash of the
    # bytes read here: S3's own checksums of a multipart object are checksums of part
    # checksums, not the file's SHA-256 (docs/media.md).
    digest = hashlib.sha256()
    head = b""
    media_type = None
    hashed = 0
    try:
        with _prefetched(storage.read_version(key, version, VERIFY_CHUNK)) as blocks:
            for block in blocks:
                hashed += len(block)
                if media_type is None:
                    head += block[: SNIFF_BYTES - len(head)]
                    if len(head) < SNIFF_BYTES and len(head) < upload.size:
                        digest.update(block)
                        continue
                    media_type = sniff(head)
                    if media_type not in accepted_types(upload.kind):
                        break
                digest.update(block)
    except ObjectChanged:
        fail(upload, "The stored file changed while it was verified; upload it again.")
        return upload.state
    if media_type is None:  # the file ended before SNIFF_BYTES
        media_type = sniff(head)
    accepts = accepted_types(upload.kind)
    if media_type not in accepts:
        fail(
            upload,
            f"The file's content is {describe(head)}, which a '{upload.kind}' resource does not "
            f"accept (allowed: {', '.join(accepts)}).",
        )
        return upload.state
    if hashed != upload.size or storage.fingerprint(key) != found:
        # Written to while it was read (no client holds a URL for this key, so this is
        # a defence in depth): no hash of it can be trusted.
        fail(upload, "The stored file changed while it was verified; upload it again.")
        return upload.state
    checksum = digest.hexdigest()
    if upload.checksum and upload.checksum != checksum:
        fail(
            upload,
            "Checksum mismatch: the stored bytes do not match the SHA-256 sent with the upload.",
        )
        return upload.state
    user = db.session.get(User, upload.user_id)
    try:
        # A savepoint: a refusal here undoes only the draft attempt, not the caller's work.
        with savepoint():
            resource = draft_for(user, upload.resource_content_id)
    except AppError as exc:  # deleted resource, lost rights, under review...
        fail(upload, f"The resource cannot take this file now: {exc.message}")
        return upload.state
    obj = _same_bytes(storage, checksum, key, upload.kind)
    if obj is None:
        meta: dict = {}
        if upload.kind == "interactive":
            try:
                # Unpacked under the upload's own prefix: two uploads of the same package
                # finishing at once never share (or later delete) each other's files.
                meta["h5p"] = _unpack_h5p(storage, key, f"h5p/{upload.public_id}/")
            except h5p.H5PError as exc:
                fail(upload, exc.message)
                return upload.state
        obj = MediaObject(
            backend=storage.name,
            key=key,
            size=upload.size,
            checksum=checksum,
            media_type=media_type,
            meta=meta,
        )
        db.session.add(obj)
    elif obj.key != key:
        # Stored before: this copy goes, but only once the attachment to the existing
        # object is committed (a failed commit leaves this upload's bytes in place).
        enqueue_after_commit(DROP_JOB, upload.public_id)
    attachment = attach(resource, obj, upload.filename, user, role="primary")
    upload.state = "complete"
    upload.object_id = obj.id
    upload.attachment_id = attachment.id
    upload.checksum = checksum
    db.session.flush()
    if not obj.meta.get("derivatives"):
        enqueue_after_commit(DERIVATIVES_JOB, obj.id)
    else:  # the same bytes were processed before: their poster serves this resource too
        picture_for(resource, obj)
    return upload.state


def _same_bytes(storage, checksum: str, key: str, kind: str) -> MediaObject | None:
    """The object already holding these bytes on this backend, if any (the oldest; a row
    for ``key`` itself when this job runs again).  Rows are found by their SHA-256,
    whatever their key: ``sha256/…`` (older uploads, generated pictures),
    ``uploads/…/data`` or ``sharing/media/…``.  A package needs one that was unpacked."""
    rows = (
        db.session.execute(
            select(MediaObject)
            .where(MediaObject.backend == storage.name, MediaObject.checksum == checksum)
            .order_by(MediaObject.id)
        )
        .scalars()
        .all()
    )
    for row in rows:
        if row.key == key:
            return row
    for row in rows:
        if kind != "interactive" or (row.meta or {}).get("h5p"):
            return row
    return None


def drop_duplicate(upload_id: str) -> None:
    """Job: delete the bytes of a verified upload whose content was stored before (run
    after the attachment to the older object is committed).  Kept if a row uses them."""
    upload = db.session.execute(
        select(MediaUpload).filter_by(public_id=upload_id)
    ).scalar_one_or_none()
    if upload is None or upload.state != "complete":
        return
    storage = get_storage()
    key = stored_key(upload)
    used = db.session.execute(
        select(MediaObject.id).where(MediaObject.backend == storage.name, MediaObject.key == key)
    ).first()
    if used is None and storage.stat(key) is not None:
        storage.delete(key)


@contextlib.contextmanager
def _prefetched(chunks: Iterator[bytes]):
    """Iterate ``chunks`` while a thread reads the next ones: reading (socket or disk)
    and hashing both release the GIL, so the read-back costs about the longer of the two
    instead of their sum.  Errors of the reader are raised to the consumer; leaving the
    block early stops the reader and closes ``chunks`` (its connection goes back)."""
    blocks: queue.Queue = queue.Queue(PREFETCH_BLOCKS)
    stop = threading.Event()
    end = object()

    def read() -> None:
        try:
            for block in chunks:
                while not stop.is_set():
                    try:
                        blocks.put(block, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item = end
        except BaseException as exc:  # handed to the consumer, which raises it
            item = exc
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        while not stop.is_set():
            try:
                blocks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def consume() -> Iterator[bytes]:
        while True:
            item = blocks.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    reader = threading.Thread(target=read, name="shuyuan-verify-read", daemon=True)
    reader.start()
    try:
        yield consume()
    finally:
        stop.set()
        reader.join()


def _unpack_h5p(storage, key: str, prefix: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="shuyuan-h5p-") as folder:
        path = storage.local_path(key)
        if path is None:
            path = os.path.join(folder, "package.h5p")
            storage.download_to(key, path)
        return h5p.unpack(
            path,
            storage,
            prefix,
            int(setting("MEDIA_H5P_MAX_UNPACKED_BYTES")),
            int(setting("MEDIA_H5P_MAX_FILES")),
        )
