"""Offline packages: one zip with ``manifest.json`` and the media of its items by hash.

Export is deterministic (sorted entries, fixed timestamps, fixed compression), so a
package imported on an instance with no network and exported again there is the same
file byte for byte.  Import trusts nothing: entry names must be exactly ``manifest.json``
or ``media/<sha256>`` (no folders, no ``..``, no links), sizes are capped before and
while reading (zip bombs), every item is checked as a feed item would be, and every
media file's SHA-256 must match its name — a failure names the bad file.  Nothing is
stored unless the whole package checks out.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from app.accounts.models import User
from app.common.transaction import savepoint
from app.errors import Invalid, NotFound
from app.extensions import db
from app.sharing.models import (
    Release,
    RemoteRelease,
    SharedCatalog,
    Subscription,
    SubscriptionStatus,
)
from app.sharing.services import manifest as manifests
from app.sharing.services.catalogs import publisher_label, require_admin_of
from app.sharing.services.subscriptions import newest_remote_release

FORMAT = "shuyuan-package/1"
PACKAGE_ORIGIN = "package:"
MEDIA_NAME = re.compile(r"^media/([0-9a-f]{64})$")
_EPOCH = (1980, 1, 1, 0, 0, 0)
MEDIA_PREFIX = "sharing/media/"
CHUNK = 1024 * 1024


class PackageRefused(Invalid):
    """The package is not acceptable; ``message`` says which file and why."""


def _media_of(content_ids: list[str]) -> dict[str, dict]:
    """sha256 → {size, media_type, key, items} for the primary files of resources."""
    from app.catalog.models import Resource, State
    from app.media.models import MediaAttachment, MediaObject

    rows = db.session.execute(
        select(Resource.content_id, MediaObject)
        .join(MediaAttachment, MediaAttachment.resource_id == Resource.id)
        .join(MediaObject, MediaObject.id == MediaAttachment.object_id)
        .where(Resource.content_id.in_(content_ids), Resource.state == State.PUBLISHED)
    )
    media: dict[str, dict] = {}
    for content_id, obj in rows:
        entry = media.setdefault(
            obj.checksum,
            {"size": obj.size, "media_type": obj.media_type, "key": obj.key, "items": []},
        )
        entry["items"].append(content_id)
    return media


@dataclass
class _Source:
    catalog: dict
    release: dict
    items: dict
    media: dict  # sha256 → {"size", "media_type", "items", "key"}


def _storage():
    from app.media.storage import get_storage

    return get_storage()


def _write(source: _Source, out) -> None:
    storage = _storage()
    document = {
        "format": FORMAT,
        "catalog": source.catalog,
        "release": source.release,
        "items": source.items,
        "media": {
            sha: {"size": m["size"], "media_type": m["media_type"], "items": sorted(m["items"])}
            for sha, m in sorted(source.media.items())
        },
    }
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        info = zipfile.ZipInfo("manifest.json", date_time=_EPOCH)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        archive.writestr(info, manifests.canonical(document))
        for sha, entry in sorted(source.media.items()):
            info = zipfile.ZipInfo(f"media/{sha}", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_STORED  # media is compressed already
            info.external_attr = 0o644 << 16
            with archive.open(info, "w") as target:
                for chunk in storage.iter_chunks(entry["key"]):
                    target.write(chunk)


def export_release(user: User | None, catalog: SharedCatalog, number: int | None, out) -> None:
    """Write a package of a local release (the newest when ``number`` is None)."""
    if user is not None:
        require_admin_of(user, catalog.district_id)
    statement = select(Release).where(Release.catalog_id == catalog.id)
    if number is not None:
        statement = statement.where(Release.number == number)
    release = db.session.execute(
        statement.order_by(Release.number.desc()).limit(1)
    ).scalar_one_or_none()
    if release is None:
        raise NotFound("Release not found.")
    media = _media_of(list(release.manifest))
    _write(
        _Source(
            {
                "uid": catalog.uid,
                "title": catalog.title,
                "publisher": publisher_label(catalog.district),
            },
            {
                "number": release.number,
                "notes": release.notes,
                "digest": release.digest,
                "item_count": release.item_count,
            },
            release.manifest,
            media,
        ),
        out,
    )


def export_imported(user: User | None, subscription: Subscription, out) -> None:
    """Write the package an offline subscription was imported from, again (same bytes)."""
    if user is not None:
        require_admin_of(user, subscription.subscriber_district_id)
    release = newest_remote_release(subscription.id)
    if release is None:
        raise NotFound("Release not found.")
    stored = (subscription.remote_publisher or {}).get("media", {})
    media = {sha: dict(entry, key=MEDIA_PREFIX + sha) for sha, entry in stored.items()}
    _write(
        _Source(
            {
                "uid": subscription.remote_catalog_uid,
                "title": subscription.remote_title or "",
                "publisher": (subscription.remote_publisher or {}).get("name", ""),
            },
            {
                "number": release.number,
                "notes": release.notes,
                "digest": release.digest,
                "item_count": len(release.manifest),
            },
            release.manifest,
            media,
        ),
        out,
    )


def _refuse(message: str):
    raise PackageRefused(message)


def _read_manifest(archive: zipfile.ZipFile, limits: dict) -> dict:
    names = [info.filename for info in archive.infolist()]
    if len(names) != len(set(names)):
        _refuse("The package lists a file twice.")
    if len(names) > limits["files"]:
        _refuse("The package has too many files.")
    total = 0
    for info in archive.infolist():
        name = info.filename
        if name != "manifest.json" and not MEDIA_NAME.match(name):
            _refuse(f"Unexpected file in the package: {name[:200]!r}.")
        if info.flag_bits & 0x1:
            _refuse(f"Encrypted file in the package: {name}.")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            _refuse(f"Symbolic link in the package: {name}.")
        total += info.file_size
        if info.file_size > limits["file_bytes"] or total > limits["total_bytes"]:
            _refuse(f"The package is too large when unpacked (at {name}).")
        if info.compress_size and info.file_size / info.compress_size > limits["ratio"]:
            _refuse(f"Suspicious compression ratio for {name} (zip bomb?).")
    if "manifest.json" not in names:
        _refuse("The package has no manifest.json.")
    raw = _read_capped(archive, "manifest.json", limits["manifest_bytes"])
    try:
        document = json.loads(raw)
    except ValueError:
        _refuse("manifest.json is not valid JSON.")
    if not isinstance(document, dict) or set(document) != {
        "format",
        "catalog",
        "release",
        "items",
        "media",
    }:
        _refuse("manifest.json has unknown or missing fields.")
    if document["format"] != FORMAT:
        _refuse("Unsupported package format.")
    return document


def _read_capped(archive: zipfile.ZipFile, name: str, cap: int) -> bytes:
    """Read an entry, stopping at ``cap`` bytes whatever its header claims."""
    buffer = io.BytesIO()
    with archive.open(name) as source:
        while chunk := source.read(CHUNK):
            buffer.write(chunk)
            if buffer.tell() > cap:
                _refuse(f"{name} is larger than it claims.")
    return buffer.getvalue()


def _limits() -> dict:
    config = current_app.config
    return {
        "files": config.get("SHARING_PACKAGE_MAX_FILES", 20000),
        "file_bytes": config.get("SHARING_PACKAGE_MAX_FILE_BYTES", 4 * 1024**3),
        "total_bytes": config.get("SHARING_PACKAGE_MAX_BYTES", 20 * 1024**3),
        "manifest_bytes": 256 * 1024**2,
        "ratio": 200,
    }


@dataclass
class ImportResult:
    subscription: Subscription
    release_number: int
    items: int
    media_new: int
    media_reused: int


def import_package(
    user: User | None, district_id: int, path_or_file, progress=None
) -> ImportResult:
    """Import a package as an offline subscription of ``district_id``; the items then
    wait for acceptance like a synced release (diff, accept all/some)."""
    if user is not None:
        require_admin_of(user, district_id)
    limits = _limits()
    try:
        archive = zipfile.ZipFile(path_or_file)
    except (zipfile.BadZipFile, OSError):
        _refuse("The file is not a zip package.")
    with archive:
        document = _read_manifest(archive, limits)
        catalog, release, items, media = (
            document["catalog"],
            document["release"],
            document["items"],
            document["media"],
        )
        if not isinstance(catalog, dict) or not manifests.CONTENT_ID.match(
            str(catalog.get("uid", ""))
        ):
            _refuse("manifest.json: bad catalog.")
        if not isinstance(release, dict) or set(release) != {
            "number",
            "notes",
            "digest",
            "item_count",
        }:
            _refuse("manifest.json: bad release.")
        number = release["number"]
        if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 2**31:
            _refuse("manifest.json: bad release number.")
        if not isinstance(items, dict) or not isinstance(media, dict):
            _refuse("manifest.json: items and media must be objects.")
        for content_id, entry in items.items():
            problem = manifests.check_entry(content_id, entry)
            if problem:
                _refuse(f"manifest.json: item {str(content_id)[:40]}: {problem}.")
        if manifests.digest_of(items) != release["digest"] or len(items) != release["item_count"]:
            _refuse("manifest.json: the release hash does not match its items.")
        listed = {MEDIA_NAME.match(n).group(1) for n in archive.namelist() if n != "manifest.json"}
        for sha, entry in media.items():
            if not manifests.DIGEST.match(str(sha)) or not isinstance(entry, dict):
                _refuse("manifest.json: bad media entry.")
            if set(entry) != {"size", "media_type", "items"} or not isinstance(entry["size"], int):
                _refuse(f"manifest.json: bad media entry {sha}.")
            if sha not in listed:
                _refuse(f"media/{sha} is listed in the manifest but missing.")
        if listed - set(media):
            _refuse(f"media/{sorted(listed - set(media))[0]} is not in the manifest.")
        storage = _storage()
        # Check every file first (nothing stored yet): a bad checksum names the file.
        staged: list[tuple[str, str]] = []
        for done, sha in enumerate(sorted(media), start=1):
            name = f"media/{sha}"
            digest, size = hashlib.sha256(), 0
            with archive.open(name) as source:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > media[sha]["size"] or size > limits["file_bytes"]:
                        _refuse(f"{name} is larger than the manifest says.")
                    digest.update(chunk)
            if digest.hexdigest() != sha or size != media[sha]["size"]:
                _refuse(f"Checksum mismatch: {name} is damaged.")
            staged.append((sha, name))
            if progress:
                progress(done, len(media))
        origin = PACKAGE_ORIGIN + catalog["uid"]
        sub = db.session.execute(
            select(Subscription).filter_by(
                subscriber_district_id=district_id,
                remote_origin=origin,
                remote_catalog_uid=catalog["uid"],
            )
        ).scalar_one_or_none()
        newest = newest_remote_release(sub.id) if sub is not None else None
        if newest is not None and number <= newest.number:
            _refuse(f"Release {number} is not newer than the imported release {newest.number}.")
        new, reused = 0, 0
        for sha, name in staged:
            key = MEDIA_PREFIX + sha
            if storage.stat(key) is not None:
                reused += 1  # deduplicated by hash: the bytes are already here
                continue
            with archive.open(name) as source:
                storage.put_bytes(key, source.read(), media[sha]["media_type"])
            new += 1
        with savepoint():
            if sub is None:
                sub = Subscription(
                    subscriber_district_id=district_id,
                    remote_origin=origin,
                    remote_catalog_uid=catalog["uid"],
                    status=SubscriptionStatus.ACTIVE,
                    requested_by_id=user.id if user else None,
                )
                db.session.add(sub)
            sub.remote_title = str(catalog.get("title", ""))[:200]
            sub.remote_publisher = {
                "name": str(catalog.get("publisher", ""))[:200],
                "media": {sha: media[sha] for sha in sorted(media)},
            }
            db.session.flush()
            db.session.add(
                RemoteRelease(
                    subscription_id=sub.id,
                    number=number,
                    notes=str(release.get("notes", ""))[:4000],
                    manifest=items,
                    digest=release["digest"],
                )
            )
            db.session.flush()
    return ImportResult(sub, number, len(items), new, reused)
