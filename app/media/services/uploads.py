"""Direct uploads: start, part URLs, resume, complete, abort (same for both backends).

The browser PUTs bytes to presigned (S3) or signed (local) URLs; nothing here reads
them.  Completion checks the client's part list against what the store holds, then
hands the assembled file to :mod:`app.media.services.verification`.
"""

from __future__ import annotations

import logging
import math

from sqlalchemy import select

from app.accounts.models import User
from app.catalog import services as catalog
from app.common.models import new_uuid
from app.errors import Conflict, Invalid, PayloadTooLarge
from app.extensions import db
from app.media.models import MediaUpload
from app.media.services.common import (
    MAX_PART,
    MAX_PARTS,
    MIN_PART,
    SHA256,
    accepted_types,
    clean_filename,
    setting,
)
from app.media.services.permissions import editable_resource, own_upload, require_user
from app.media.services.quota import district_quota, district_usage
from app.media.storage import PartInfo, get_storage

log = logging.getLogger(__name__)


def part_size_for(size: int) -> int:
    base = max(int(setting("MEDIA_PART_SIZE")), MIN_PART)
    needed = math.ceil(size / MAX_PARTS)
    part = max(base, math.ceil(needed / (1024 * 1024)) * 1024 * 1024)
    return min(part, MAX_PART)


def start_upload(
    user: User | None, content_id: str, filename: str, size: int, checksum: str | None = None
) -> MediaUpload:
    user = require_user(user)
    resource = editable_resource(user, content_id)
    if not catalog.can_take_changes(resource):
        # Refused before a byte is sent: the file could not be attached until the review
        # is over, and the teacher would otherwise wait for a whole upload to learn it.
        raise Conflict(
            "This resource is waiting for review: withdraw it from review before uploading a file.",
            code="resource_in_review",
        )
    filename = clean_filename(filename)
    accepts = accepted_types(resource.kind)
    if not accepts:
        raise Invalid(
            f"Resources of kind '{resource.kind}' take no uploaded files.",
            fields={"resource_id": ["This kind has no media."]},
        )
    if not isinstance(size, int) or size <= 0:
        raise Invalid(
            "The file is empty.",
            fields={"size": ["A file of zero bytes cannot be uploaded."]},
            code="empty_file",
        )
    limit = int(setting("MEDIA_MAX_UPLOAD_BYTES"))
    if size > limit:
        raise PayloadTooLarge(
            f"The file is larger than the limit of {limit} bytes.",
            fields={"size": [f"At most {limit} bytes."]},
        )
    if checksum is not None:
        checksum = checksum.strip().lower()
        if not SHA256.match(checksum):
            raise Invalid(
                "The checksum must be a SHA-256 in hex.", fields={"checksum": ["64 hex digits."]}
            )
    quota = district_quota(resource.district_id)
    used = district_usage(resource.district_id)
    if used + size > quota:
        raise PayloadTooLarge(
            f"This upload would exceed the district's storage quota "
            f"({used} of {quota} bytes used).",
            fields={"size": ["Over quota."]},
            code="quota_exceeded",
        )
    part = part_size_for(size)
    parts = math.ceil(size / part)
    if parts > MAX_PARTS:
        raise PayloadTooLarge("The file needs too many parts.", fields={"size": ["Too large."]})
    storage = get_storage()
    public_id = new_uuid()
    upload = MediaUpload(
        public_id=public_id,
        user_id=user.id,
        district_id=resource.district_id,
        resource_content_id=content_id,
        kind=resource.kind,
        filename=filename,
        size=size,
        checksum=checksum,
        backend=storage.name,
        part_size=part,
        part_count=parts,
        staging_key=f"uploads/{public_id}/data",
        state="pending",
    )
    db.session.add(upload)
    if size <= int(setting("MEDIA_SINGLE_PUT_MAX_BYTES")):
        upload.mode = "single"
        upload.part_count = 1
        upload.part_size = size
    else:
        upload.mode = "multipart"
        upload.upload_token = storage.start_upload(upload.staging_key, "application/octet-stream")
    db.session.flush()
    return upload


def _expected_part_size(upload: MediaUpload, number: int) -> int:
    if number < upload.part_count:
        return upload.part_size
    return upload.size - upload.part_size * (upload.part_count - 1)


def upload_urls(upload: MediaUpload, numbers: list[int] | None = None) -> dict:
    """Presigned (S3) or signed (local) PUT URLs for the parts still to send."""
    storage = get_storage()
    if upload.backend != storage.name:
        raise Conflict("This upload belongs to another storage backend.")
    ttl = int(setting("MEDIA_UPLOAD_TTL"))
    if upload.mode == "single":
        return {"url": storage.single_put_url(upload.staging_key, upload.size, ttl)}
    numbers = numbers or list(range(1, upload.part_count + 1))
    urls = {}
    for number in numbers:
        if not isinstance(number, int) or not 1 <= number <= upload.part_count:
            raise Invalid(
                f"Part {number} does not exist.", fields={"parts": [f"1 to {upload.part_count}."]}
            )
        urls[str(number)] = storage.part_url(
            upload.staging_key,
            upload.upload_token,
            number,
            _expected_part_size(upload, number),
            ttl,
        )
    return {"part_urls": urls}


def part_urls(user: User | None, upload_id: str, numbers: list[int] | None) -> dict:
    upload = own_upload(user, upload_id)
    if upload.state != "pending":
        raise Conflict(f"This upload is {upload.state}.")
    return upload_urls(upload, numbers)


def done_parts(upload: MediaUpload) -> list[dict]:
    """Parts already stored, so a browser can resume after a dropped connection."""
    if upload.state != "pending":
        return []
    storage = get_storage()
    if upload.mode == "single":
        size = storage.stat(upload.staging_key)
        return [{"part_number": 1, "size": size, "etag": ""}] if size == upload.size else []
    return [
        {"part_number": p.number, "size": p.size, "etag": p.etag}
        for p in storage.list_parts(upload.staging_key, upload.upload_token)
        if p.size == _expected_part_size(upload, p.number)
    ]


def upload_status(user: User | None, upload_id: str) -> tuple[MediaUpload, list[dict]]:
    upload = own_upload(user, upload_id)
    return upload, done_parts(upload)


def complete_upload(user: User | None, upload_id: str, parts: list[dict] | None) -> MediaUpload:
    """Check the client's part list against what the store holds, then assemble the file.

    Refused (nothing changes, the upload can still be finished): parts missing, out of
    order, repeated, of the wrong size, or whose ETag differs from the stored part.
    """
    upload = own_upload(user, upload_id)
    if upload.state != "pending":
        raise Conflict(f"This upload is {upload.state}.")
    storage = get_storage()
    if upload.mode == "single":
        size = storage.stat(upload.staging_key)
        if size is None:
            raise Invalid(
                "The file has not been uploaded yet.",
                fields={"parts": ["Nothing stored."]},
                code="upload_incomplete",
            )
        if size != upload.size:
            raise Invalid(
                f"The stored file has {size} bytes; {upload.size} were announced.",
                fields={"size": ["Size mismatch."]},
                code="size_mismatch",
            )
        upload.state = "verifying"
        db.session.flush()
        return upload
    parts = parts or []
    numbers = []
    for item in parts:
        number = item.get("part_number") if isinstance(item, dict) else None
        if not isinstance(number, int):
            raise Invalid(
                "Each part needs a part_number.", fields={"parts": ["part_number missing."]}
            )
        numbers.append(number)
    if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
        raise Invalid(
            "The parts are out of order or repeated; list them by ascending part number.",
            fields={"parts": ["Out of order."]},
            code="parts_out_of_order",
        )
    expected = list(range(1, upload.part_count + 1))
    missing = sorted(set(expected) - set(numbers))
    if missing or numbers != expected:
        raise Invalid(
            f"Parts missing: {', '.join(map(str, missing[:20])) or 'unknown'}.",
            fields={"parts": [f"Expected parts 1 to {upload.part_count}."]},
            code="parts_missing",
        )
    stored = {p.number: p for p in storage.list_parts(upload.staging_key, upload.upload_token)}
    final: list[PartInfo] = []
    for item in parts:
        number = item["part_number"]
        part = stored.get(number)
        if part is None:
            raise Invalid(
                f"Part {number} has not been uploaded.",
                fields={"parts": [f"Part {number} missing."]},
                code="parts_missing",
            )
        if part.size != _expected_part_size(upload, number):
            raise Invalid(
                f"Part {number} has {part.size} bytes; "
                f"{_expected_part_size(upload, number)} expected.",
                fields={"parts": [f"Part {number} has the wrong size."]},
                code="size_mismatch",
            )
        etag = (item.get("etag") or "").strip().strip('"')
        if etag and etag != part.etag.strip('"'):
            raise Invalid(
                f"Part {number} does not match the stored part (ETag differs).",
                fields={"parts": [f"Part {number} ETag mismatch."]},
                code="etag_mismatch",
            )
        final.append(part)
    storage.complete_upload(upload.staging_key, upload.upload_token, final)
    upload.state = "verifying"
    db.session.flush()
    return upload


def stored_key(upload: MediaUpload) -> str:
    """Where the verified bytes of ``upload`` stay (the object's key): a multipart upload
    keeps the key it was assembled at (once completed, no URL a client holds can write
    it: part URLs name an upload id that takes no more parts); a single PUT's file is
    moved next to it first, since its presigned PUT URL stays valid until it expires."""
    if upload.mode == "multipart":
        return upload.staging_key
    return upload.staging_key.rsplit("/", 1)[0] + "/file"


def staging_open(key: str) -> bool:
    """Whether a signed local PUT may still write ``key``.  Keys under
    ``uploads/<upload id>/`` take bytes only while their upload is pending: once it is
    completed, they are (or become) the verified object, whose bytes must stay the ones
    whose SHA-256 was read back."""
    if not key.startswith("uploads/"):
        return True
    public_id = key.split("/", 2)[1]
    state = db.session.execute(
        select(MediaUpload.state).filter_by(public_id=public_id)
    ).scalar_one_or_none()
    return state == "pending"


def abort_upload(user: User | None, upload_id: str) -> MediaUpload:
    upload = own_upload(user, upload_id)
    if upload.state not in ("pending", "failed"):
        raise Conflict(f"This upload is {upload.state}.")
    discard_staging(upload)
    upload.state = "aborted"
    db.session.flush()
    return upload


def discard_staging(upload: MediaUpload) -> None:
    """Remove what an upload that will not complete stored (never a verified object)."""
    if upload.state == "complete":
        return  # its bytes are an object's now
    storage = get_storage()
    try:
        if upload.mode == "multipart" and upload.upload_token:
            storage.abort_upload(upload.staging_key, upload.upload_token)
        for key in dict.fromkeys((upload.staging_key, stored_key(upload))):
            if storage.stat(key) is not None:
                storage.delete(key)
    except Exception:  # the GC will retry; the upload's state is what matters here
        log.exception("could not remove staging data of upload %s", upload.public_id)
