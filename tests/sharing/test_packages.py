"""Offline packages: byte-exact round trip, checksum failure naming the file, path
traversal, zip bombs, replays — nothing stored unless the whole package checks out."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile

import pytest
from sqlalchemy import func, select

from app.catalog.models import Resource
from app.common.events import commit
from app.extensions import db
from app.media.models import MediaAttachment, MediaObject
from app.media.storage import get_storage
from app.sharing.models import RemoteRelease, Subscription
from app.sharing.services import catalogs, packages, subscriptions
from app.sharing.services.packages import PackageRefused


@pytest.fixture
def released(people, orgs, publish):
    video = os.urandom(1024 * 1024)  # new bytes per test: storage outlives a test
    content_id = publish(title="京剧身段", subject="art")
    resource = db.session.execute(
        select(Resource).filter_by(content_id=content_id, state="published")
    ).scalar_one()
    sha = hashlib.sha256(video).hexdigest()
    key = f"sha256/{sha[:2]}/{sha}"
    get_storage().put_bytes(key, video, "video/mp4")
    obj = MediaObject(
        backend="local", key=key, size=len(video), checksum=sha, media_type="video/mp4"
    )
    db.session.add(obj)
    db.session.flush()
    db.session.add(MediaAttachment(resource_id=resource.id, object_id=obj.id, filename="身段.mp4"))
    other = publish(title="京剧脸谱", subject="art")
    catalog = catalogs.create_catalog(
        people.pub_admin, orgs.district.id, {"title": "河西拓展课", "rules": {"subject": ["art"]}}
    )
    catalogs.publish_release(people.pub_admin, catalog, "离线版")
    commit()
    out = io.BytesIO()
    packages.export_release(people.pub_admin, catalog, None, out)
    return {"package": out.getvalue(), "sha": sha, "ids": {content_id, other}, "size": len(video)}


def _rebuild(package: bytes, change) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(package))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = change(info.filename, source.read(info.filename))
            if data is not None:
                target.writestr(info, data)
    return out.getvalue()


def _nothing_imported():
    assert db.session.execute(select(func.count(Subscription.id))).scalar_one() == 0
    assert db.session.execute(select(func.count(RemoteRelease.id))).scalar_one() == 0


def test_round_trip_is_byte_exact_and_flows_into_the_diff(people, orgs, released):
    result = packages.import_package(
        people.sub_admin, orgs.review_district.id, io.BytesIO(released["package"])
    )
    commit()
    assert (result.items, result.media_new, result.media_reused) == (2, 1, 0)
    assert get_storage().stat(f"sharing/media/{released['sha']}") == released["size"]
    sub = db.session.get(Subscription, result.subscription.id)
    pending = subscriptions.pending(people.sub_admin, sub)
    assert {c.content_id for c in pending.diff.added} == released["ids"]
    subscriptions.accept(people.sub_admin, sub, pending.number)
    commit()

    again = io.BytesIO()
    packages.export_imported(people.sub_admin, sub, again)
    assert again.getvalue() == released["package"]

    # The same release again is not newer: refused, nothing changes.
    with pytest.raises(PackageRefused, match="not newer"):
        packages.import_package(
            people.sub_admin, orgs.review_district.id, io.BytesIO(released["package"])
        )


def test_damaged_media_is_named_and_nothing_is_stored(people, orgs, released):
    sha = released["sha"]
    damaged = _rebuild(
        released["package"],
        lambda name, data: data[:-1] + b"\x00" if name == f"media/{sha}" else data,
    )
    with pytest.raises(PackageRefused, match=f"Checksum mismatch: media/{sha} is damaged"):
        packages.import_package(people.sub_admin, orgs.review_district.id, io.BytesIO(damaged))
    db.session.rollback()
    _nothing_imported()
    assert get_storage().stat(f"sharing/media/{sha}") is None


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("../../etc/passwd", b"x", "Unexpected file"),
        ("media/../manifest.json", b"x", "Unexpected file"),
        ("/abs/path", b"x", "Unexpected file"),
        ("media/" + "0" * 64, b"\x00" * (50 * 1024 * 1024), "zip bomb"),
    ],
)
def test_hostile_archives_are_refused(people, orgs, released, name, data, message):
    def add(filename, content):
        return content

    hostile = _rebuild(released["package"], add)
    buffer = io.BytesIO(hostile)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    with pytest.raises(PackageRefused, match=message):
        packages.import_package(
            people.sub_admin, orgs.review_district.id, io.BytesIO(buffer.getvalue())
        )
    db.session.rollback()
    _nothing_imported()


def test_not_a_zip_and_bad_manifest(people, orgs, released):
    with pytest.raises(PackageRefused, match="not a zip"):
        packages.import_package(people.sub_admin, orgs.review_district.id, io.BytesIO(b"PK?"))
    broken = _rebuild(
        released["package"],
        lambda name, data: (
            data.replace("京剧身段".encode(), "京剧身段X".encode())
            if name == "manifest.json"
            else data
        ),
    )
    with pytest.raises(PackageRefused, match="hash mismatch"):
        packages.import_package(people.sub_admin, orgs.review_district.id, io.BytesIO(broken))
    _nothing_imported()
