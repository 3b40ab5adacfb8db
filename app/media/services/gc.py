"""Garbage: abandoned uploads and objects no resource version references.

:func:`collect_garbage` only changes rows (and aborts staging uploads); the bytes of
deleted objects go in :func:`delete_collected_bytes`, which the caller runs *after* the
commit, so an object that a concurrent attachment kept never loses its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, exists, select

from app.catalog.models import Course, Resource
from app.common.models import utcnow
from app.extensions import db
from app.media.models import MediaAttachment, MediaDerivative, MediaObject, MediaUpload
from app.media.services.common import setting
from app.media.services.uploads import discard_staging
from app.media.storage import get_storage


@dataclass
class GcReport:
    aborted_uploads: list[str]
    deleted_objects: list[str]
    deleted_prefixes: list[str]
    kept: int
    # (key, unpacked package prefix or None) whose rows are gone once the caller commits.
    doomed_bytes: list[tuple[str, str | None]] = field(default_factory=list)


def _referenced_ids() -> set[int]:
    """Objects attached to any version row, and their derivatives."""
    attached = set(db.session.execute(select(MediaAttachment.object_id).distinct()).scalars())
    derived = set(
        db.session.execute(
            select(MediaDerivative.object_id).where(MediaDerivative.source_id.in_(attached or {-1}))
        ).scalars()
    )
    # Pictures on catalog cards are referenced by public id from the content rows.
    pictures = set()
    for model in (Course, Resource):
        pictures |= set(
            db.session.execute(select(model.cover_id).where(model.cover_id.is_not(None))).scalars()
        )
    covers = set(
        db.session.execute(
            select(MediaObject.id).where(MediaObject.public_id.in_(pictures or {""}))
        ).scalars()
    )
    return attached | derived | covers


def collect_garbage(apply: bool = False, now=None) -> GcReport:
    """Abort uploads older than ``MEDIA_UPLOAD_TTL`` and remove objects no version references.

    Dry run unless ``apply``.  An object is removed only if, at the moment its row is
    deleted, no attachment or derivative link points to it (one conditional DELETE), so
    an attachment made concurrently keeps it.
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=int(setting("MEDIA_UPLOAD_TTL")))
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
            discard_staging(upload)
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
                    ~exists().where(Course.cover_id == MediaObject.public_id),
                    ~exists().where(Resource.cover_id == MediaObject.public_id),
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:
                removed.append((key, prefix))
        db.session.flush()
        report.doomed_bytes = removed
        report.deleted_objects = [key for key, _ in removed]
    # Bytes in storage that no row knows, after a grace period: under ``sha256/`` (a crash
    # between storing and commit) and under ``uploads/<id>/`` of uploads no longer in
    # progress (a failed upload whose bytes could not be removed, a duplicate whose
    # removal did not run).  Uploads in progress are read first, the known keys after:
    # an upload verified in between is either still in progress or already known.
    active = set(
        db.session.execute(
            select(MediaUpload.public_id).where(MediaUpload.state.in_(("pending", "verifying")))
        ).scalars()
    )
    known = set(
        db.session.execute(
            select(MediaObject.key).where(MediaObject.backend == storage.name)
        ).scalars()
    ) | {key for key, _ in report.doomed_bytes}
    for prefix in ("sha256/", "uploads/"):
        for item in storage.list(prefix):
            if item.key in known or item.modified is None or item.modified >= cutoff:
                continue
            if prefix == "uploads/" and item.key.split("/")[1] in active:
                continue
            report.deleted_objects.append(item.key)
            if apply:
                storage.delete(item.key)
    return report


def delete_collected_bytes(report: GcReport) -> None:
    """Delete the bytes of the objects whose rows :func:`collect_garbage` removed; call it
    only after that removal is committed (the rows are gone for good then)."""
    storage = get_storage()
    for key, prefix in report.doomed_bytes:
        storage.delete(key)
        if prefix:
            storage.delete_prefix(prefix)
