"""Media: stored objects, uploads in progress, links to resource versions, progress events.

- :class:`MediaObject` is one stored blob, identified by its SHA-256 (``checksum``, read
  back from the bytes), so identical bytes are stored once whoever uploads them; ``key``
  is where they are (``uploads/<id>/data|file``, or ``sha256/ab/<hex>`` for generated
  pictures and objects stored before 2026-11-30).
- :class:`MediaAttachment` links an object to one resource *version row* with the name the
  teacher uploaded it under (kept for downloads, Chinese included).  A new draft version
  gets copies of the previous version's attachments.
- :class:`MediaDerivative` hangs a thumbnail or poster (itself an object) off a source object.
- :class:`MediaUpload` is an upload in progress (staging key, multipart upload id).
- :class:`ProgressEvent` is what a player reported.
"""

from __future__ import annotations

from app.common.models import JSONType, TimestampMixin, cascading_fk, children, new_uuid, utcnow
from app.extensions import db

UPLOAD_STATES = ("pending", "verifying", "complete", "failed", "aborted")


class MediaObject(db.Model):
    __tablename__ = "media_objects"
    __table_args__ = (
        db.UniqueConstraint("backend", "key"),
        db.Index("ix_media_objects_checksum", "checksum"),
    )

    id = db.Column(db.Integer, primary_key=True)
    public_id = db.Column(db.String(36), nullable=False, unique=True, default=new_uuid)
    backend = db.Column(db.String(80), nullable=False)
    key = db.Column(db.String(200), nullable=False)
    size = db.Column(db.BigInteger, nullable=False)
    checksum = db.Column(db.String(64), nullable=False)  # sha256, hex
    media_type = db.Column(db.String(100), nullable=False)
    # duration (seconds), width/height, h5p {"prefix": ...}, skipped {"poster": "reason"}
    meta = db.Column(JSONType, nullable=False, default=dict)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    derivatives = children(
        "MediaDerivative", foreign_keys="MediaDerivative.source_id", lazy="select"
    )

    def derivative(self, kind: str) -> MediaObject | None:
        for row in self.derivatives:
            if row.kind == kind:
                return row.object
        return None


class MediaDerivative(db.Model):
    __tablename__ = "media_derivatives"
    __table_args__ = (db.UniqueConstraint("source_id", "kind"),)

    id = db.Column(db.Integer, primary_key=True)
    source_id = cascading_fk("media_objects.id", index=False)
    kind = db.Column(db.String(20), nullable=False)  # thumbnail, poster
    object_id = db.Column(db.Integer, db.ForeignKey("media_objects.id"), nullable=False, index=True)

    object = db.relationship("MediaObject", foreign_keys=[object_id], lazy="joined")


class MediaAttachment(db.Model):
    __tablename__ = "media_attachments"
    __table_args__ = (db.UniqueConstraint("resource_id", "role"),)

    id = db.Column(db.Integer, primary_key=True)
    public_id = db.Column(db.String(36), nullable=False, unique=True, default=new_uuid)
    resource_id = cascading_fk("resources.id", index=False)
    role = db.Column(db.String(20), nullable=False, default="primary")
    object_id = db.Column(db.Integer, db.ForeignKey("media_objects.id"), nullable=False, index=True)
    filename = db.Column(db.String(255), nullable=False)
    uploaded_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    object = db.relationship("MediaObject", lazy="joined")


class MediaUpload(TimestampMixin, db.Model):
    __tablename__ = "media_uploads"
    __table_args__ = (db.Index("ix_media_uploads_state", "state", "created_at"),)

    id = db.Column(db.Integer, primary_key=True)
    public_id = db.Column(db.String(36), nullable=False, unique=True, default=new_uuid)
    user_id = cascading_fk("users.id")
    district_id = cascading_fk("districts.id")
    resource_content_id = db.Column(db.String(36), nullable=False, index=True)
    kind = db.Column(db.String(20), nullable=False)
    filename = db.Column(db.String(255), nullable=False)
    size = db.Column(db.BigInteger, nullable=False)
    checksum = db.Column(db.String(64))  # declared by the client; verified on completion
    backend = db.Column(db.String(80), nullable=False)
    staging_key = db.Column(db.String(200), nullable=False)
    mode = db.Column(db.String(10), nullable=False)  # single | multipart
    upload_token = db.Column(db.String(300))  # S3 UploadId
    part_size = db.Column(db.BigInteger, nullable=False)
    part_count = db.Column(db.Integer, nullable=False)
    state = db.Column(db.String(12), nullable=False, default="pending")
    error = db.Column(db.String(500))
    object_id = db.Column(db.Integer, db.ForeignKey("media_objects.id", ondelete="SET NULL"))
    attachment_id = db.Column(
        db.Integer, db.ForeignKey("media_attachments.id", ondelete="SET NULL")
    )

    object = db.relationship("MediaObject")


class DistrictQuota(db.Model):
    """A district's storage quota where it differs from ``MEDIA_DISTRICT_QUOTA_BYTES``."""

    __tablename__ = "media_district_quotas"

    district_id = db.Column(
        db.Integer, db.ForeignKey("districts.id", ondelete="CASCADE"), primary_key=True
    )
    quota_bytes = db.Column(db.BigInteger, nullable=False)


class ProgressEvent(db.Model):
    __tablename__ = "progress_events"
    __table_args__ = (
        db.Index("ix_progress_events_user_content", "user_id", "content_id", "created_at"),
    )

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    resource_id = db.Column(
        db.Integer, db.ForeignKey("resources.id", ondelete="SET NULL"), index=True
    )
    content_id = db.Column(db.String(36), nullable=False)
    verb = db.Column(db.String(40), nullable=False)
    result = db.Column(JSONType)
    context = db.Column(JSONType, nullable=False, default=dict)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
