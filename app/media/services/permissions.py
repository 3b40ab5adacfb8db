"""Who may do what with media: every check goes through the catalog's rules."""

from __future__ import annotations

import functools

from sqlalchemy import bindparam, select
from sqlalchemy.orm import lazyload

from app.accounts.auth import read_with_principal
from app.accounts.models import User
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.errors import Forbidden, NotFound, Unauthorized
from app.extensions import db
from app.media.models import MediaAttachment, MediaObject, MediaUpload


def require_user(user: User | None) -> User:
    if user is None:
        raise Unauthorized("Log in first.")
    return user


def editable_resource(user: User, content_id: str) -> Resource:
    resource = catalog.get_content(user, Resource, content_id, "latest")
    if not catalog.can_edit(user, resource):
        raise Forbidden("Only the owner or her district admin can upload media for this resource.")
    return resource


def draft_for(user: User, content_id: str) -> Resource:
    """The draft row files are attached to (a new version is drafted from a published one,
    so readers keep the published file until the draft is published)."""
    # The catalog has no public name for this yet; media needs exactly its rules.
    resource = catalog._editable_draft(user, Resource, content_id)
    db.session.flush()
    return resource


def own_upload(user: User | None, upload_id: str) -> MediaUpload:
    user = require_user(user)
    upload = db.session.execute(
        select(MediaUpload).filter_by(public_id=upload_id)
    ).scalar_one_or_none()
    if upload is None or (upload.user_id != user.id and not user.is_platform_admin):
        raise NotFound("Upload not found.")
    return upload


@functools.cache
def _visible_attachment_statement():
    # One query; the resource's tags and grades are not needed to decide who may read.
    # Built once (every delivery URL runs it; building it cost a quarter of the query).
    return (
        select(MediaAttachment, Resource)
        .join(Resource, Resource.id == MediaAttachment.resource_id)
        .where(MediaAttachment.public_id == bindparam("attachment_id"))
        .options(lazyload(Resource.tags), lazyload(Resource.grade_rows))
    )


def visible_attachment(user: User | None, attachment_id: str) -> tuple[MediaAttachment, Resource]:
    found = db.session.execute(
        _visible_attachment_statement(), {"attachment_id": attachment_id}
    ).first()
    if found is None or not catalog.can_view(user, found[1]):
        raise NotFound("File not found.")
    return found[0], found[1]


@functools.cache
def _visible_file_statement():
    # The columns a delivery URL needs (the object's place and type, the file's name) and
    # those catalog.can_view reads from a resource, labelled as the Resource attributes,
    # in one Core statement: no ORM objects for a request that only reads three values.
    return (
        select(
            MediaAttachment.filename,
            MediaAttachment.object_id,
            MediaObject.backend,
            MediaObject.key,
            MediaObject.media_type,
            MediaObject.size,
            Resource.content_id,
            Resource.state,
            Resource.visibility,
            Resource.author_id,
            Resource.district_id,
            Resource.school_id,
        )
        .join(MediaObject, MediaObject.id == MediaAttachment.object_id)
        .join(Resource, Resource.id == MediaAttachment.resource_id)
        .where(MediaAttachment.public_id == bindparam("attachment_id"))
    )


def file_read(attachment_id: str):
    """(statement, params) of :func:`visible_file`'s row, for
    ``principal_route(reads=...)``: a bearer request reads it with its token."""
    return _visible_file_statement(), {"attachment_id": attachment_id}


def visible_file(user, attachment_id: str):
    """:func:`visible_attachment` as one row (``filename``, ``object_id``, ``backend``,
    ``key``, ``media_type``, ``size`` and the resource's permission columns), for
    delivery URLs; ``user`` may be a :class:`~app.accounts.principal.Principal`.  The
    decision is the catalog's ``can_view``, given the row in place of the resource (it
    reads only the columns selected here; tests/media/test_presign_path.py holds both to
    the same answers)."""
    # Read together with a bearer caller's token when the route declared it
    # (file_read, app/media/api.py), else now.
    found = read_with_principal(*file_read(attachment_id))
    if found is None or not catalog.can_view(user, found):
        raise NotFound("File not found.")
    return found
