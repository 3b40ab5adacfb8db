"""Publisher side of media over federation: which media the items of a catalog have
(a signed index, so the subscriber knows each object's SHA-256 from the publisher's
key) and the bytes of one object by its hash, with HTTP Range so a cut download
resumes where it stopped — or of several whole objects, back to back in one response
(``MEDIA_BATCH_PATH?objects=<sha256>,<sha256>,...``: one signature check and one
access check for all of them; the subscriber splits the body by the sizes of the
signed index and checks each object's hash on its own).

Only media of items in the newest release of a catalog the peer's request was approved
for, minus withdrawn items, are listed or served; any other hash is a 404 (so a peer
cannot probe for objects it was not given).
"""

from __future__ import annotations

from sqlalchemy import select

from app.catalog.models import Resource, State
from app.errors import Invalid, NotFound
from app.extensions import db
from app.sharing.models import (
    Release,
    RemoteSubscriber,
    SubscriptionStatus,
)
from app.sharing.services import keys
from app.sharing.services import manifest as manifests
from app.sharing.services.catalogs import catalog_by_uid, require_approved_peer, withdrawn_ids
from app.sharing.services.subscriptions import _manifest

MEDIA_INDEX_PATH = "/sharing/federation/catalogs/{uid}/media"
MEDIA_OBJECT_PATH = "/sharing/federation/media/{sha256}"
MEDIA_BATCH_PATH = "/sharing/federation/media"
# Objects one batch request may name (the query stays ~2 KB: 65 characters each).
MEDIA_BATCH_MAX = 32


def _shared_ids(catalog_id: int) -> set[str]:
    """Content ids of the newest release, without withdrawn items."""
    release = db.session.execute(
        select(Release.id, Release.digest)
        .where(Release.catalog_id == catalog_id)
        .order_by(Release.number.desc())
        .limit(1)
    ).first()
    if release is None:
        return set()
    return set(_manifest(Release, release.id, release.digest)) - withdrawn_ids(catalog_id)


def _media_rows(content_ids):
    from app.media.models import MediaAttachment, MediaObject

    ids = sorted(content_ids)
    for start in range(0, len(ids), 1000):
        yield from db.session.execute(
            select(Resource.content_id, MediaAttachment.role, MediaAttachment.filename, MediaObject)
            .join(MediaAttachment, MediaAttachment.resource_id == Resource.id)
            .join(MediaObject, MediaObject.id == MediaAttachment.object_id)
            .where(
                Resource.content_id.in_(ids[start : start + 1000]),
                Resource.state == State.PUBLISHED,
            )
            .order_by(Resource.content_id, MediaAttachment.role)
        )


def media_index(origin: str, uid: str) -> bytes:
    """Canonical JSON ``{origin, catalog, items: {content_id: [media...]}}``."""
    catalog = catalog_by_uid(uid)
    require_approved_peer(origin, catalog)
    items: dict[str, list[dict]] = {}
    for content_id, role, filename, obj in _media_rows(_shared_ids(catalog.id)):
        items.setdefault(content_id, []).append(
            {
                "sha256": obj.checksum,
                "size": obj.size,
                "media_type": obj.media_type,
                "filename": filename,
                "role": role,
            }
        )
    return manifests.canonical({"origin": keys.own_origin(), "catalog": uid, "items": items})


def media_object(origin: str, sha256: str):
    """``(key, size, checksum)`` of the stored object with this hash, if it belongs to an
    item shared with ``origin``."""
    if not isinstance(sha256, str) or not manifests.DIGEST.match(sha256):
        raise NotFound("Media not found.")
    return media_objects(origin, [sha256])[0]


def batch_hashes(text) -> list[str]:
    """The hashes of a batch request's ``objects`` (comma-separated): 1 to
    :data:`MEDIA_BATCH_MAX` distinct SHA-256s, or refused (422)."""
    hashes = text.split(",") if isinstance(text, str) and text else []
    if (
        not 0 < len(hashes) <= MEDIA_BATCH_MAX
        or len(set(hashes)) != len(hashes)
        or not all(manifests.DIGEST.match(sha) for sha in hashes)
    ):
        raise Invalid("The list of media objects is not valid.")
    return hashes


def media_objects(origin: str, hashes: list[str]) -> list:
    """``(key, size, checksum)`` of each stored object in ``hashes`` (valid SHA-256s), in
    that order, if every one belongs to an item shared with ``origin``; otherwise
    NotFound for all (a peer cannot probe for objects it was not given).

    Columns, not entities, and the same 4 statements whatever the number of objects
    (their items, the peer's catalogs, per catalog its newest release and withdrawals):
    loading ``SharedCatalog`` rows selectin-loaded every catalog entry and
    ``MediaObject`` rows their relations, a third of the publisher's CPU per media
    request (py-spy, docs/sharing.md)."""
    from app.media.models import MediaAttachment, MediaObject

    rows = db.session.execute(
        select(Resource.content_id, MediaObject.key, MediaObject.size, MediaObject.checksum)
        .join(MediaAttachment, MediaAttachment.resource_id == Resource.id)
        .join(MediaObject, MediaObject.id == MediaAttachment.object_id)
        .where(MediaObject.checksum.in_(hashes), Resource.state == State.PUBLISHED)
    ).all()
    owners: dict[str, set[str]] = {}
    for row in rows:
        owners.setdefault(row.checksum, set()).add(row.content_id)
    if len(owners) == len(hashes):
        catalog_ids = db.session.execute(
            select(RemoteSubscriber.catalog_id).where(
                RemoteSubscriber.origin == origin,
                RemoteSubscriber.status == SubscriptionStatus.ACTIVE,
            )
        ).scalars()
        shared: set[str] = set()
        for catalog_id in catalog_ids:  # stops at the first catalogs that cover them all
            shared |= _shared_ids(catalog_id)
            if all(items & shared for items in owners.values()):
                first = {}
                for row in rows:
                    first.setdefault(row.checksum, row)
                return [first[sha] for sha in hashes]
    raise NotFound("Media not found.")
