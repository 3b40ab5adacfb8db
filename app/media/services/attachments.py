"""Files attached to resource version rows (one per role, ``primary`` for the player)."""

from __future__ import annotations

from sqlalchemy import delete, select

from app.accounts.models import User
from app.catalog.models import Resource
from app.extensions import db
from app.media.models import MediaAttachment, MediaObject
from app.media.services.permissions import draft_for, editable_resource, require_user


def attachments_of(resource: Resource) -> dict[str, MediaAttachment]:
    rows = db.session.execute(select(MediaAttachment).filter_by(resource_id=resource.id)).scalars()
    return {row.role: row for row in rows}


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
    user = require_user(user)
    editable_resource(user, content_id)
    draft = draft_for(user, content_id)
    db.session.execute(
        delete(MediaAttachment).where(
            MediaAttachment.resource_id == draft.id, MediaAttachment.role == role
        )
    )
    db.session.flush()
    return draft
