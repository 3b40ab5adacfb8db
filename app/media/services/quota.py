"""District storage quotas and usage."""

from __future__ import annotations

from sqlalchemy import func, select

from app.catalog.models import Resource
from app.extensions import db
from app.media.models import DistrictQuota, MediaAttachment, MediaObject, MediaUpload
from app.media.services.common import setting


def district_quota(district_id: int) -> int:
    row = db.session.get(DistrictQuota, district_id)
    return int(row.quota_bytes) if row else int(setting("MEDIA_DISTRICT_QUOTA_BYTES"))


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


def usage_by_district() -> list[tuple[int, int, int]]:
    """(district id, bytes used, quota) of every district."""
    from app.accounts.models import District

    rows = db.session.execute(select(District.id)).scalars().all()
    return [(d, district_usage(d), district_quota(d)) for d in rows]
