"""Media business logic: uploads, verification, delivery, derivatives, progress, GC.

Every function taking ``user`` checks what that user may do (through the catalog's
``can_view`` / ``can_edit``) and only flushes; views, the CLI and jobs commit.

Upload flow (same for both backends)::

    start_upload ─► browser PUTs bytes to presigned / signed URLs (parts 8–64 MB)
                 ─► complete_upload (parts checked, multipart completed; state verifying)
                 ─► job finalize_upload: size, sniffed type, sha256 → stored once under
                    sha256/ab/<hex>, attached to the resource's draft → job make_derivatives
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import delete, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload

from app import hooks
from app.accounts.models import User
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.common.models import new_uuid
from app.errors import Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge, Unauthorized
from app.extensions import db
from app.media import h5p
from app.media.models import (
    DistrictQuota,
    MediaAttachment,
    MediaDerivative,
    MediaObject,
    MediaUpload,
    ProgressEvent,
)
from app.media.sniff import describe, sniff
from app.media.storage import PartInfo, get_storage

log = logging.getLogger(__name__)

MIN_PART = 8 * 1024**2
MAX_PART = 64 * 1024**2
MAX_PARTS = 10_000
MAX_FILENAME = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# Used when no plugin registered the kind (plugins normally declare ``accepts``).
DEFAULT_ACCEPTS = {
    "video": ("video/mp4", "video/webm", "video/ogg", "video/quicktime"),
    "audio": ("audio/mpeg", "audio/mp4", "audio/ogg", "audio/wav", "audio/flac", "audio/webm"),
    "document": ("application/pdf",),
    "image": ("image/png", "image/jpeg", "image/gif", "image/webp"),
    "interactive": ("application/zip",),
}


# --- helpers ------------------------------------------------------------------------------


def _cfg(name: str):
    return current_app.config[name]


def accepted_types(kind: str) -> tuple[str, ...]:
    content_type = hooks.content_types().get(kind)
    if content_type is not None and content_type.accepts:
        return tuple(content_type.accepts)
    return DEFAULT_ACCEPTS.get(kind, ())


def clean_filename(name: str | None) -> str:
    """The file name as given (Chinese kept), or :class:`Invalid` with the reason."""
    field = "filename"
    if name is None or not str(name).strip():
        raise Invalid("The file needs a name.", fields={field: ["Missing file name."]})
    name = unicodedata.normalize("NFC", str(name)).strip()
    if _CONTROL.search(name):
        raise Invalid(
            "The file name contains control characters.", fields={field: ["Control characters."]}
        )
    if "/" in name or "\\" in name or name in (".", "..") or ".." in name.split("."):
        raise Invalid(
            "The file name must not contain a path (/, \\ or ..).",
            fields={field: ["Path in name."]},
        )
    if len(name) > MAX_FILENAME:
        raise Invalid(
            f"The file name is longer than {MAX_FILENAME} characters.",
            fields={field: [f"At most {MAX_FILENAME} characters."]},
        )
    return name


def _object_key(checksum: str) -> str:
    return f"sha256/{checksum[:2]}/{checksum}"


def _user(user: User | None) -> User:
    if user is None:
        raise Unauthorized("Log in first.")
    return user


def _editable_resource(user: User, content_id: str) -> Resource:
    resource = catalog.get_content(user, Resource, content_id, "latest")
    if not catalog.can_edit(user, resource):
        raise Forbidden("Only the owner or her district admin can upload media for this resource.")
    return resource


def _draft_for(user: User, content_id: str) -> Resource:
    """The draft row files are attached to (a new version is drafted from a published one,
    so readers keep the published file until the draft is published)."""
    resource = catalog._editable_draft(user, Resource, content_id)
    db.session.flush()
    return resource


# --- quota --------------------------------------------------------------------------------


def district_quota(district_id: int) -> int:
    row = db.session.get(DistrictQuota, district_id)
    return int(row.quota_bytes) if row else int(_cfg("MEDIA_DISTRICT_QUOTA_BYTES"))


def set_district_quota(district_id: int, quota_bytes: int | None) -> None:
    row = db.session.get(DistrictQuota, district_id)
    if quota_bytes is None:
        if row is not None:
            db.session.delete(row)
    elif row is None:
        db.session.add(DistrictQuota(district_id=district_id, quota_bytes=quota_bytes))
    else:
        row.quota_bytes = quota_bytes
    db.session.flush()


def district_usage(district_id: int) -> int:
    """Bytes of distinct objects attached to the district's resources, plus uploads in flight."""
    attached = (
        select(MediaObject.id, MediaObject.size)
        .join(MediaAttachment, MediaAttachment.object_id == MediaObject.id)
        .join(Resource, Resource.id == MediaAttachment.resource_id)
        .where(Resource.district_id == district_id)
        .distinct()
        .subquery()
    )
    stored = db.session.execute(select(func.coalesce(func.sum(attached.c.size), 0))).scalar_one()
    pending = db.session.execute(
        select(func.coalesce(func.sum(MediaUpload.size), 0)).where(
            MediaUpload.district_id == district_id, MediaUpload.state.in_(("pending", "verifying"))
        )
    ).scalar_one()
    return int(stored) + int(pending)


# --- uploads ------------------------------------------------------------------------------


def part_size_for(size: int) -> int:
    base = max(int(_cfg("MEDIA_PART_SIZE")), MIN_PART)
    needed = math.ceil(size / MAX_PARTS)
    part = max(base, math.ceil(needed / (1024 * 1024)) * 1024 * 1024)
    return min(part, MAX_PART)


def start_upload(
    user: User | None, content_id: str, filename: str, size: int, checksum: str | None = None
) -> MediaUpload:
    user = _user(user)
    resource = _editable_resource(user, content_id)
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
    limit = int(_cfg("MEDIA_MAX_UPLOAD_BYTES"))
    if size > limit:
        raise PayloadTooLarge(
            f"The file is larger than the limit of {limit} bytes.",
            fields={"size": [f"At most {limit} bytes."]},
        )
    if checksum is not None:
        checksum = checksum.strip().lower()
        if not _SHA256.match(checksum):
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
    if size <= int(_cfg("MEDIA_SINGLE_PUT_MAX_BYTES")):
        upload.mode = "single"
        upload.part_count = 1
        upload.part_size = size
    else:
        upload.mode = "multipart"
        upload.upload_token = storage.start_upload(upload.staging_key, "application/octet-stream")
    db.session.flush()
    return upload


def _own_upload(user: User | None, upload_id: str) -> MediaUpload:
    user = _user(user)
    upload = db.session.execute(
        select(MediaUpload).filter_by(public_id=upload_id)
    ).scalar_one_or_none()
    if upload is None or (upload.user_id != user.id and not user.is_platform_admin):
        raise NotFound("Upload not found.")
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
    ttl = int(_cfg("MEDIA_UPLOAD_TTL"))
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
    upload = _own_upload(user, upload_id)
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
    upload = _own_upload(user, upload_id)
    return upload, done_parts(upload)


def complete_upload(user: User | None, upload_id: str, parts: list[dict] | None) -> MediaUpload:
    """Check the client's part list against what the store holds, then assemble the file.

    Refused (nothing changes, the upload can still be finished): parts missing, out of
    order, repeated, of the wrong size, or whose ETag differs from the stored part.
    """
    upload = _own_upload(user, upload_id)
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


def abort_upload(user: User | None, upload_id: str) -> MediaUpload:
    upload = _own_upload(user, upload_id)
    if upload.state not in ("pending", "failed"):
        raise Conflict(f"This upload is {upload.state}.")
    _discard_staging(upload)
    upload.state = "aborted"
    db.session.flush()
    return upload


def _discard_staging(upload: MediaUpload) -> None:
    storage = get_storage()
    try:
        if upload.mode == "multipart" and upload.upload_token:
            storage.abort_upload(upload.staging_key, upload.upload_token)
        if storage.stat(upload.staging_key) is not None:
            storage.delete(upload.staging_key)
    except Exception:  # the GC will retry; the upload's state is what matters here
        log.exception("could not remove staging data of upload %s", upload.public_id)


def _fail(upload: MediaUpload, message: str) -> None:
    _discard_staging(upload)
    upload.state = "failed"
    upload.error = message[:500]
    db.session.flush()


def finalize_upload(upload_id: str) -> str:
    """Job: verify an assembled upload and store it content-addressed.  Returns the state."""
    upload = db.session.execute(
        select(MediaUpload).filter_by(public_id=upload_id)
    ).scalar_one_or_none()
    if upload is None or upload.state != "verifying":
        return upload.state if upload else "missing"
    storage = get_storage()
    size = storage.stat(upload.staging_key)
    if size != upload.size:
        _fail(upload, f"The stored file has {size or 0} bytes; {upload.size} were announced.")
        return upload.state
    head = storage.read_range(upload.staging_key, 0, 8192)
    media_type = sniff(head)
    accepts = accepted_types(upload.kind)
    if media_type not in accepts:
        _fail(
            upload,
            f"The file's content is {describe(head)}, which a '{upload.kind}' resource does not "
            f"accept (allowed: {', '.join(accepts)}).",
        )
        return upload.state
    digest = hashlib.sha256()
    for block in storage.iter_chunks(upload.staging_key):
        digest.update(block)
    checksum = digest.hexdigest()
    if upload.checksum and upload.checksum != checksum:
        _fail(
            upload,
            "Checksum mismatch: the stored bytes do not match the SHA-256 sent with the upload.",
        )
        return upload.state
    user = db.session.get(User, upload.user_id)
    try:
        resource = _draft_for(user, upload.resource_content_id)
    except Exception as exc:  # deleted resource, lost rights, under review...
        message = getattr(exc, "message", str(exc))
        _fail(upload, f"The resource cannot take this file now: {message}")
        return upload.state
    key = _object_key(checksum)
    obj = db.session.execute(
        select(MediaObject).filter_by(backend=storage.name, key=key)
    ).scalar_one_or_none()
    meta: dict = {}
    if obj is None and upload.kind == "interactive":
        try:
            meta["h5p"] = _unpack_h5p(storage, upload.staging_key, checksum)
        except h5p.H5PError as exc:
            _fail(upload, exc.message)
            return upload.state
    if obj is None:
        if storage.stat(key) is None:
            storage.move(upload.staging_key, key)
        else:
            storage.delete(upload.staging_key)
        obj = MediaObject(
            backend=storage.name,
            key=key,
            size=upload.size,
            checksum=checksum,
            media_type=media_type,
            meta=meta,
        )
        try:
            with db.session.begin_nested():
                db.session.add(obj)
        except IntegrityError:  # the same bytes were finished by another upload a moment ago
            obj = db.session.execute(
                select(MediaObject).filter_by(backend=storage.name, key=key)
            ).scalar_one()
    else:
        storage.delete(upload.staging_key)
    attachment = attach(resource, obj, upload.filename, user, role="primary")
    upload.state = "complete"
    upload.object_id = obj.id
    upload.attachment_id = attachment.id
    upload.checksum = checksum
    db.session.flush()
    needs_derivatives = not obj.meta.get("derivatives")
    object_id = obj.id
    state = upload.state
    if needs_derivatives:
        db.session.commit()
        from app.jobs import enqueue

        enqueue("app.media.services:make_derivatives", object_id)
    return state


def _unpack_h5p(storage, key: str, checksum: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="shuyuan-h5p-") as folder:
        path = storage.local_path(key)
        if path is None:
            path = os.path.join(folder, "package.h5p")
            storage.download_to(key, path)
        return h5p.unpack(
            path,
            storage,
            f"h5p/{checksum}/",
            int(_cfg("MEDIA_H5P_MAX_UNPACKED_BYTES")),
            int(_cfg("MEDIA_H5P_MAX_FILES")),
        )


def attach(
    resource: Resource, obj: MediaObject, filename: str, user: User | None, role: str = "primary"
) -> MediaAttachment:
    """Link ``obj`` to one resource version row, replacing that row's file of ``role``."""
    db.session.execute(
        delete(MediaAttachment).where(
            MediaAttachment.resource_id == resource.id, MediaAttachment.role == role
        )
    )
    attachment = MediaAttachment(
        resource_id=resource.id,
        role=role,
        object_id=obj.id,
        filename=filename,
        uploaded_by_id=user.id if user else None,
    )
    db.session.add(attachment)
    db.session.flush()
    return attachment


def copy_attachments(previous: Resource, new: Resource) -> None:
    """Give a new draft version the files of the version it was copied from."""
    if new.id is None:
        db.session.flush()
    rows = (
        db.session.execute(select(MediaAttachment).filter_by(resource_id=previous.id))
        .scalars()
        .all()
    )
    for row in rows:
        db.session.add(
            MediaAttachment(
                resource_id=new.id,
                role=row.role,
                object_id=row.object_id,
                filename=row.filename,
                uploaded_by_id=row.uploaded_by_id,
            )
        )
    db.session.flush()


def on_resource_version_created(app, resource=None, previous=None, **kwargs) -> None:
    if resource is not None and previous is not None:
        copy_attachments(previous, resource)


def remove_attachment(user: User | None, content_id: str, role: str = "primary") -> Resource:
    user = _user(user)
    _editable_resource(user, content_id)
    draft = _draft_for(user, content_id)
    db.session.execute(
        delete(MediaAttachment).where(
            MediaAttachment.resource_id == draft.id, MediaAttachment.role == role
        )
    )
    db.session.flush()
    return draft


# --- derivatives ----------------------------------------------------------------------------


def _store_derivative(source: MediaObject, kind: str, data: bytes, media_type: str) -> None:
    storage = get_storage()
    checksum = hashlib.sha256(data).hexdigest()
    key = _object_key(checksum)
    obj = db.session.execute(
        select(MediaObject).filter_by(backend=storage.name, key=key)
    ).scalar_one_or_none()
    if obj is None:
        storage.put_bytes(key, data, media_type)
        obj = MediaObject(
            backend=storage.name,
            key=key,
            size=len(data),
            checksum=checksum,
            media_type=media_type,
            meta={"derivative_of": source.public_id},
        )
        db.session.add(obj)
        db.session.flush()
    db.session.execute(
        delete(MediaDerivative).where(
            MediaDerivative.source_id == source.id, MediaDerivative.kind == kind
        )
    )
    db.session.add(MediaDerivative(source_id=source.id, kind=kind, object_id=obj.id))
    db.session.flush()


def _thumbnail_png(image_bytes_or_path) -> bytes:
    import io

    from PIL import Image

    Image.MAX_IMAGE_PIXELS = 80_000_000
    with Image.open(image_bytes_or_path) as image:
        image.thumbnail((480, 480))
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA")
        out = io.BytesIO()
        image.save(out, "PNG", optimize=True)
        return out.getvalue()


def _run(command: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, timeout=timeout, check=False)  # noqa: S603


def make_derivatives(object_id: int) -> dict:
    """Job: thumbnail (images, PDF first page), poster frame and duration (video).

    What cannot be made (tool not installed, undecodable file) is recorded in
    ``meta["skipped"]``; the upload stays valid either way.
    """
    obj = db.session.get(MediaObject, object_id)
    if obj is None:
        return {}
    storage = get_storage()
    made: dict[str, str] = {}
    skipped: dict[str, str] = {}
    meta = dict(obj.meta or {})
    with tempfile.TemporaryDirectory(prefix="shuyuan-media-") as folder:

        def local_copy() -> str:
            path = storage.local_path(obj.key)
            if path is None:
                path = os.path.join(folder, "source")
                storage.download_to(obj.key, path)
            return path

        kind = obj.media_type.split("/")[0]
        if obj.media_type.startswith("image/"):
            try:
                _store_derivative(obj, "thumbnail", _thumbnail_png(local_copy()), "image/png")
                made["thumbnail"] = "image/png"
            except Exception as exc:
                skipped["thumbnail"] = f"image could not be read: {exc}"[:200]
        elif obj.media_type == "application/pdf":
            tool = shutil.which("pdftoppm")
            if tool is None:
                skipped["thumbnail"] = "pdftoppm (poppler-utils) is not installed"
            else:
                result = _run(
                    [
                        tool,
                        "-f",
                        "1",
                        "-l",
                        "1",
                        "-png",
                        "-scale-to",
                        "480",
                        "-singlefile",
                        (pdf_path := local_copy()),
                        os.path.join(folder, "page"),
                    ]
                )
                page = os.path.join(folder, "page.png")
                if result.returncode == 0 and os.path.exists(page):
                    with open(page, "rb") as handle:
                        _store_derivative(obj, "thumbnail", handle.read(), "image/png")
                    made["thumbnail"] = "image/png"
                else:
                    skipped["thumbnail"] = (
                        "pdftoppm failed: "
                        + result.stderr.decode(errors="replace").replace(pdf_path, "<file>")[:150]
                    )
        elif kind in ("video", "audio"):
            probe, ffmpeg = shutil.which("ffprobe"), shutil.which("ffmpeg")
            source = storage.local_path(obj.key) or storage.download_url(
                obj.key, "source", obj.media_type, 3600
            )
            if probe is None:
                skipped["duration"] = "ffprobe (ffmpeg) is not installed"
            else:
                result = _run(
                    [
                        probe,
                        "-v",
                        "error",
                        "-show_entries",
                        "format=duration",
                        "-of",
                        "default=noprint_wrappers=1:nokey=1",
                        source,
                    ]
                )
                try:
                    meta["duration"] = round(
                        float(result.stdout.decode().strip().splitlines()[0]), 3
                    )
                    made["duration"] = str(meta["duration"])
                except (ValueError, IndexError):
                    skipped["duration"] = "ffprobe could not read the duration"
            if kind == "video":
                if ffmpeg is None:
                    skipped["poster"] = "ffmpeg is not installed"
                else:
                    poster = os.path.join(folder, "poster.jpg")
                    at = "1" if (meta.get("duration") or 0) > 2 else "0"
                    result = _run(
                        [
                            ffmpeg,
                            "-v",
                            "error",
                            "-y",
                            "-ss",
                            at,
                            "-i",
                            source,
                            "-frames:v",
                            "1",
                            "-vf",
                            "scale='min(640,iw)':-2",
                            poster,
                        ]
                    )
                    if result.returncode == 0 and os.path.exists(poster):
                        with open(poster, "rb") as handle:
                            _store_derivative(obj, "poster", handle.read(), "image/jpeg")
                        made["poster"] = "image/jpeg"
                    else:
                        skipped["poster"] = (
                            "ffmpeg failed: "
                            + result.stderr.decode(errors="replace").replace(source, "<file>")[:150]
                        )
    meta["derivatives"] = made or {"none": "nothing to make"}
    if skipped:
        meta["skipped"] = skipped
    obj.meta = meta
    db.session.flush()
    return {"made": made, "skipped": skipped}


# --- delivery -------------------------------------------------------------------------------


@dataclass
class Delivery:
    url: str
    expires_in: int
    media_type: str
    filename: str
    size: int


def attachments_of(resource: Resource) -> dict[str, MediaAttachment]:
    rows = db.session.execute(select(MediaAttachment).filter_by(resource_id=resource.id)).scalars()
    return {row.role: row for row in rows}


def _visible_attachment(user: User | None, attachment_id: str) -> tuple[MediaAttachment, Resource]:
    # One query; the resource's tags and grades are not needed to decide who may read.
    found = db.session.execute(
        select(MediaAttachment, Resource)
        .join(Resource, Resource.id == MediaAttachment.resource_id)
        .where(MediaAttachment.public_id == attachment_id)
        .options(lazyload(Resource.tags), lazyload(Resource.grade_rows))
    ).first()
    if found is None or not catalog.can_view(user, found[1]):
        raise NotFound("File not found.")
    return found[0], found[1]


def delivery_url(
    user: User | None, attachment_id: str, variant: str | None = None, inline: bool = True
) -> Delivery:
    """A short-lived URL for a file of a resource ``user`` may see (or NotFound)."""
    attachment, _ = _visible_attachment(user, attachment_id)
    obj = attachment.object
    filename = attachment.filename
    if variant:
        derived = obj.derivative(variant)
        if derived is None:
            raise NotFound(f"No {variant} for this file.")
        obj = derived
        stem = filename.rsplit(".", 1)[0]
        filename = f"{stem}-{variant}.{derived.media_type.split('/')[-1].replace('jpeg', 'jpg')}"
    storage = get_storage()
    if obj.backend != storage.name:
        raise Conflict("This file is kept in another storage backend.")
    ttl = int(_cfg("MEDIA_URL_TTL"))
    url = storage.download_url(obj.key, filename, obj.media_type, ttl, inline)
    return Delivery(url, ttl, obj.media_type, filename, obj.size)


def h5p_asset(user: User | None, attachment_id: str, path: str) -> tuple[str, str]:
    """(storage key, media type) of one file of an unpacked H5P package."""
    attachment, _ = _visible_attachment(user, attachment_id)
    info = (attachment.object.meta or {}).get("h5p")
    if not info:
        raise NotFound("This file is not an H5P package.")
    if (
        not path
        or path.startswith("/")
        or ".." in path.split("/")
        or "\\" in path
        or _CONTROL.search(path)
    ):
        raise NotFound("File not found.")
    import mimetypes

    return info["prefix"] + path, mimetypes.guess_type(path)[0] or "application/octet-stream"


def media_context(user: User | None, resource: Resource) -> dict | None:
    """What a player needs for ``resource``: URLs (stable, permission-checked), type, name."""
    from flask import url_for

    if not catalog.can_view(user, resource):
        return None
    rows = attachments_of(resource)
    primary = rows.get("primary")
    if primary is None:
        return None
    obj = primary.object
    context = {
        "attachment_id": primary.public_id,
        "url": url_for("media.open_file", attachment_id=primary.public_id),
        "download_url": url_for("media.open_file", attachment_id=primary.public_id, download=1),
        "media_type": obj.media_type,
        "filename": primary.filename,
        "size": obj.size,
        "duration": (obj.meta or {}).get("duration"),
        "poster_url": None,
        "thumbnail_url": None,
        "h5p_base": None,
    }
    for variant in ("poster", "thumbnail"):
        if obj.derivative(variant) is not None:
            context[f"{variant}_url"] = url_for(
                "media.open_file", attachment_id=primary.public_id, variant=variant
            )
    if (obj.meta or {}).get("h5p"):
        context["h5p_base"] = url_for("media.h5p_file", attachment_id=primary.public_id, path="x")[
            :-1
        ]
    return context


# --- progress -------------------------------------------------------------------------------

VERBS = {
    "played",
    "paused",
    "seeked",
    "completed",
    "progressed",
    "experienced",
    "opened",
    "launched",
    "answered",
    "attempted",
    "passed",
    "failed",
    "xapi",
}


def record_progress(
    user: User | None,
    content_id: str,
    verb: str,
    result: dict | None = None,
    context: dict | None = None,
    statement: dict | None = None,
) -> ProgressEvent:
    """Store what a player reported and send ``learning_event`` after commit."""
    if user is None:
        raise Unauthorized("Log in to record progress.")
    if verb not in VERBS:
        raise Invalid(
            f"Unknown verb '{verb}'.", fields={"verb": [f"One of {', '.join(sorted(VERBS))}."]}
        )
    resource = catalog.get_content(user, Resource, content_id)
    context = dict(context or {})
    if verb == "xapi":
        if not isinstance(statement, dict) or "verb" not in statement:
            raise Invalid(
                "An xAPI event needs its statement.", fields={"statement": ["A statement object."]}
            )
        context["statement"] = statement
    if result is not None and "progress" in result:
        progress = result["progress"]
        if not isinstance(progress, int | float) or not 0 <= progress <= 1:
            raise Invalid(
                "Progress is a number from 0 to 1.", fields={"result": ["progress 0..1."]}
            )
    event = ProgressEvent(
        user_id=user.id,
        resource_id=resource.id,
        content_id=resource.content_id,
        verb=verb,
        result=result,
        context=context,
    )
    db.session.add(event)
    db.session.flush()
    hooks.emit_learning_event(user, verb, resource=resource, result=result, context=context)
    return event


def progress_of(user: User | None, content_id: str, limit: int = 100) -> list[ProgressEvent]:
    user = _user(user)
    return list(
        db.session.execute(
            select(ProgressEvent)
            .where(ProgressEvent.user_id == user.id, ProgressEvent.content_id == content_id)
            .order_by(ProgressEvent.created_at.desc(), ProgressEvent.id.desc())
            .limit(limit)
        ).scalars()
    )


# --- garbage --------------------------------------------------------------------------------


@dataclass
class GcReport:
    aborted_uploads: list[str]
    deleted_objects: list[str]
    deleted_prefixes: list[str]
    kept: int


def _referenced_ids() -> set[int]:
    """Objects attached to any version row, and their derivatives."""
    attached = set(db.session.execute(select(MediaAttachment.object_id).distinct()).scalars())
    derived = set(
        db.session.execute(
            select(MediaDerivative.object_id).where(MediaDerivative.source_id.in_(attached or {-1}))
        ).scalars()
    )
    return attached | derived


def collect_garbage(apply: bool = False, now=None) -> GcReport:
    """Abort uploads older than ``MEDIA_UPLOAD_TTL`` and remove objects no version references.

    Dry run unless ``apply``.  An object is removed only if, at the moment its row is
    deleted, no attachment or derivative link points to it (one conditional DELETE), so
    an attachment made concurrently keeps it.
    """
    from datetime import timedelta

    from app.common.models import utcnow

    now = now or utcnow()
    cutoff = now - timedelta(seconds=int(_cfg("MEDIA_UPLOAD_TTL")))
    storage = get_storage()
    report = GcReport([], [], [], 0)
    stale = (
        db.session.execute(
            select(MediaUpload).where(
                MediaUpload.backend == storage.name,
                MediaUpload.state == "pending",
                MediaUpload.created_at < cutoff,
            )
        )
        .scalars()
        .all()
    )
    known_staging = {
        u.staging_key
        for u in db.session.execute(
            select(MediaUpload).where(
                MediaUpload.state.in_(("pending", "verifying")), MediaUpload.created_at >= cutoff
            )
        ).scalars()
    }
    for upload in stale:
        report.aborted_uploads.append(f"{upload.staging_key} ({upload.filename})")
        if apply:
            _discard_staging(upload)
            upload.state = "aborted"
            upload.error = "Abandoned: aborted by the garbage collector."
    for pending in storage.pending_uploads("uploads/"):
        if pending.key in known_staging or any(pending.key == u.staging_key for u in stale):
            continue
        if pending.initiated is None or pending.initiated < cutoff:
            report.aborted_uploads.append(f"{pending.key} (unknown to the database)")
            if apply:
                storage.abort_upload(pending.key, pending.upload_token)
    referenced = _referenced_ids()
    objects = (
        db.session.execute(select(MediaObject).where(MediaObject.backend == storage.name))
        .scalars()
        .all()
    )
    doomed = []
    for obj in objects:
        if obj.id in referenced:
            report.kept += 1
            continue
        prefix = (obj.meta or {}).get("h5p", {}).get("prefix")
        doomed.append((obj.id, obj.key, prefix))
        report.deleted_objects.append(obj.key)
        if prefix:
            report.deleted_prefixes.append(prefix)
    if apply:
        db.session.flush()
        # Links from unreferenced sources to their thumbnails/posters go first...
        db.session.execute(
            delete(MediaDerivative)
            .where(
                MediaDerivative.source_id.in_([d[0] for d in doomed] or [-1]),
                ~exists().where(MediaAttachment.object_id == MediaDerivative.source_id),
            )
            .execution_options(synchronize_session=False)
        )
        # ...then each object, only if nothing points at it at this very moment.
        removed = []
        for object_id, key, prefix in doomed:
            result = db.session.execute(
                delete(MediaObject)
                .where(
                    MediaObject.id == object_id,
                    ~exists().where(MediaAttachment.object_id == object_id),
                    ~exists().where(MediaDerivative.object_id == object_id),
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:
                removed.append((key, prefix))
        db.session.commit()
        # Bytes go only after the rows are gone for good.
        for key, prefix in removed:
            storage.delete(key)
            if prefix:
                storage.delete_prefix(prefix)
        report.deleted_objects = [key for key, _ in removed]
    # Bytes in storage that no row knows (a crash between copy and commit), after a grace period.
    known = set(
        db.session.execute(
            select(MediaObject.key).where(MediaObject.backend == storage.name)
        ).scalars()
    )
    for item in storage.list("sha256/"):
        if item.key not in known and item.modified is not None and item.modified < cutoff:
            report.deleted_objects.append(item.key)
            if apply:
                storage.delete(item.key)
    return report


def usage_by_district() -> list[tuple[int, int, int]]:
    from app.accounts.models import District

    rows = db.session.execute(select(District.id)).scalars().all()
    return [(d, district_usage(d), district_quota(d)) for d in rows]
