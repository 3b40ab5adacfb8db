"""Column helpers shared by feature models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from app.extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_uuid() -> str:
    return str(uuid.uuid4())


def value_enum(enum_class, length: int = 20) -> db.Enum:
    """A Python enum stored by its values in a plain string column (no database enum
    type, so adding a member needs no migration of the type)."""
    return db.Enum(
        enum_class,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
    )


def cascading_fk(target: str, *, index: bool = True) -> db.Column:
    """A required integer reference to ``target`` (``"table.id"``) whose rows go when the
    referenced row goes: the usual "belongs to" column of a child table.  Indexed, unless
    ``index=False`` (a unique constraint or primary key already leads with it)."""
    return db.Column(
        db.Integer, db.ForeignKey(target, ondelete="CASCADE"), nullable=False, index=index
    )


def children(target: str, **options):
    """A relationship to the rows of ``target`` that belong to this one: saved with it,
    deleted with it, and deleted when taken out of the collection."""
    return db.relationship(target, cascade="all, delete-orphan", **options)


class TimestampMixin:
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)


# JSON everywhere, JSONB on PostgreSQL (indexable, compact, compares by value).
from sqlalchemy.dialects.postgresql import JSONB  # noqa: E402

JSONType = db.JSON().with_variant(JSONB(), "postgresql")
