"""Courses, resources and enrolments.

Versioning: every version of a course or resource is its own row sharing one
``content_id``.  At most one row per content is ``published`` (what readers see); the
owner edits a ``draft`` row of the next version; publishing turns the old published row
``superseded``, which keeps it immutable and still readable by its version number.
"""

from __future__ import annotations

import enum

from sqlalchemy.orm import declared_attr

from app.common.models import (
    JSONType,
    TimestampMixin,
    cascading_fk,
    children,
    new_uuid,
    utcnow,
    value_enum,
)
from app.extensions import db

# A reviewer's note to the author: the API, the pages and the service refuse longer ones.
REVIEW_NOTE_MAX = 1000


class State(enum.StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    ARCHIVED = "archived"
    SUPERSEDED = "superseded"


class Visibility(enum.StrEnum):
    PRIVATE = "private"
    SCHOOL = "school"
    DISTRICT = "district"
    REGION = "region"


class EnrolmentStatus(enum.StrEnum):
    ENROLLED = "enrolled"
    WAITLISTED = "waitlisted"
    LEFT = "left"


class Tag(db.Model):
    __tablename__ = "tags"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False, unique=True)


def _tagging_table(name: str, owner_column: str, owner: str) -> db.Table:
    """Which tags a course or resource has: rows (``owner_column`` → ``owner``, tag id)
    that go with either side."""
    return db.Table(
        name,
        db.Column(
            owner_column, db.Integer, db.ForeignKey(owner, ondelete="CASCADE"), primary_key=True
        ),
        db.Column(
            "tag_id",
            db.Integer,
            db.ForeignKey("tags.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
    )


resource_tags = _tagging_table("resource_tags", "resource_id", "resources.id")
course_tags = _tagging_table("course_tags", "course_id", "courses.id")


class VersionedContentMixin(TimestampMixin):
    """Columns every publishable, versioned piece of content has: what it is, who wrote
    it and where it belongs (the school and district its visibility is scoped to)."""

    id = db.Column(db.Integer, primary_key=True)
    kind = db.Column(db.String(20), nullable=False)
    author_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False, index=True)
    school_id = db.Column(db.Integer, db.ForeignKey("schools.id"), index=True)
    district_id = db.Column(db.Integer, db.ForeignKey("districts.id"), nullable=False, index=True)
    content_id = db.Column(db.String(36), nullable=False, default=new_uuid, index=True)
    version = db.Column(db.Integer, nullable=False, default=1)
    state = db.Column(value_enum(State), nullable=False, default=State.DRAFT)
    title = db.Column(db.String(200), nullable=False)
    summary = db.Column(db.String(500), nullable=False, default="")
    description_html = db.Column(db.Text, nullable=False, default="")
    language = db.Column(db.String(10), nullable=False, default="zh")
    licence = db.Column(db.String(20), nullable=False, default="CC-BY-4.0")
    visibility = db.Column(value_enum(Visibility), nullable=False, default=Visibility.SCHOOL)
    subject = db.Column(db.String(32), index=True)
    # {"en": {"title": ..., "summary": ..., "description_html": ...}}
    translations = db.Column(JSONType, nullable=False, default=dict)
    review_note = db.Column(db.String(REVIEW_NOTE_MAX))
    published_at = db.Column(db.DateTime)
    # The content this one was copied from, so copies stay linked to their origin.
    source_content_id = db.Column(db.String(36), index=True)
    # The picture on catalog cards: the public id of a stored image (a thumbnail the
    # media feature made).  ``cover_source`` says where it came from: "upload" (the
    # author chose it) or "file" (the resource's own file: a video's poster frame, a
    # PDF's first page), so a new file replaces only a picture it made itself.
    cover_id = db.Column(db.String(36))
    cover_source = db.Column(db.String(10))

    @declared_attr
    def author(cls):
        return db.relationship("User")

    @declared_attr
    def school(cls):
        return db.relationship("School")

    @declared_attr
    def district(cls):
        return db.relationship("District")

    def translated(self, field: str, locale: str | None) -> str:
        if locale and not locale.startswith("zh"):
            value = (self.translations or {}).get(locale[:2], {}).get(field)
            if value:
                return value
        return getattr(self, field)


# What the catalog's list statements test besides state and order: visibility (who may
# read), the filters, and content_id (shared-catalog subscriptions).  Both list indexes
# carry them, so PostgreSQL answers the page query (deep OFFSETs included) and the COUNT
# from the index alone (index-only scans) instead of visiting the table's rows
# (docs/catalog.md, "100k resources").
_LISTED = (
    "visibility",
    "district_id",
    "school_id",
    "author_id",
    "kind",
    "language",
    "licence",
    "subject",
)


def _list_indexes(table: str, *extra: str) -> tuple:
    """``ix_<table>_visible``: state and visibility first, for the visibility-filtered
    COUNT; ``ix_<table>_published_page``: state, publication order, then the same
    columns, so a newest-first page walks the index and stops after OFFSET + LIMIT rows."""
    listed = (*_LISTED, *extra, "content_id")
    return (
        db.Index(f"ix_{table}_visible", "state", *listed),
        db.Index(
            f"ix_{table}_published_page",
            "state",
            "published_at",
            "id",
            *listed,
        ),
    )


class Resource(VersionedContentMixin, db.Model):
    __tablename__ = "resources"
    __table_args__ = (
        db.UniqueConstraint("content_id", "version"),
        db.Index("ix_resources_state_kind", "state", "kind"),
        # Catalog lists sort newest first: walking the page index stops after one page
        # instead of sorting every visible row (bench/catalog.py, docs/catalog.md).
        *_list_indexes("resources"),
    )

    # A web link's address, or the address a player opens.
    url = db.Column(db.String(2000))
    # Kind-specific payload (exercise questions, media object references, player options).
    data = db.Column(JSONType, nullable=False, default=dict)
    usage_count = db.Column(db.Integer, nullable=False, default=0)
    # Length of a video or audio file in whole seconds (measured when the file is processed).
    duration_seconds = db.Column(db.Integer)

    tags = db.relationship("Tag", secondary=resource_tags, lazy="selectin", order_by="Tag.name")
    grade_rows = children("ResourceGrade", lazy="selectin", order_by="ResourceGrade.grade")

    @property
    def grades(self) -> list[str]:
        return [row.grade for row in self.grade_rows]


class ResourceGrade(db.Model):
    """A resource may suit several grades."""

    __tablename__ = "resource_grades"

    resource_id = db.Column(
        db.Integer, db.ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    )
    grade = db.Column(db.String(8), primary_key=True, index=True)


class Course(VersionedContentMixin, db.Model):
    __tablename__ = "courses"
    __table_args__ = (
        db.UniqueConstraint("content_id", "version"),
        db.Index("ix_courses_state_kind", "state", "kind", "published_at"),
        # Catalog lists sort newest first: walking the page index stops after one page
        # instead of sorting every visible row (bench/catalog.py, docs/catalog.md).
        *_list_indexes("courses", "grade", "category"),
    )

    cover_url = db.Column(db.String(2000))
    # Extended courses
    category = db.Column(db.String(32), index=True)
    capacity = db.Column(db.Integer)
    enrolment_open = db.Column(db.Boolean, nullable=False, default=True)
    # Curriculum courses
    grade = db.Column(db.String(8), index=True)
    edition = db.Column(db.String(32), index=True)

    tags = db.relationship("Tag", secondary=course_tags, lazy="selectin", order_by="Tag.name")
    sessions = children("CourseSession", order_by="CourseSession.position", back_populates="course")
    sections = children("CourseSection", order_by="CourseSection.position", back_populates="course")


class CourseSession(db.Model):
    """One meeting of an extended course."""

    __tablename__ = "course_sessions"

    id = db.Column(db.Integer, primary_key=True)
    course_id = cascading_fk("courses.id")
    position = db.Column(db.Integer, nullable=False, default=0)
    starts_at = db.Column(db.DateTime, nullable=False)
    ends_at = db.Column(db.DateTime, nullable=False)
    place = db.Column(db.String(200))
    online_url = db.Column(db.String(2000))
    note = db.Column(db.String(500))

    course = db.relationship("Course", back_populates="sessions")


class CourseSection(db.Model):
    __tablename__ = "course_sections"

    id = db.Column(db.Integer, primary_key=True)
    course_id = cascading_fk("courses.id")
    position = db.Column(db.Integer, nullable=False, default=0)
    title = db.Column(db.String(200), nullable=False)
    summary = db.Column(db.String(1000))

    course = db.relationship("Course", back_populates="sections")
    items = children("SectionItem", order_by="SectionItem.position", back_populates="section")


class SectionItem(db.Model):
    """A slot in a section, pointing at a resource by its stable content id so that a
    course shows the resource's newest published version."""

    __tablename__ = "section_items"

    id = db.Column(db.Integer, primary_key=True)
    section_id = cascading_fk("course_sections.id")
    position = db.Column(db.Integer, nullable=False, default=0)
    title = db.Column(db.String(200))
    resource_content_id = db.Column(db.String(36), index=True)
    # Stable across versions of the course, so alignment and progress can refer to it.
    item_key = db.Column(db.String(36), nullable=False, default=new_uuid)

    section = db.relationship("CourseSection", back_populates="items")


class CourseSeats(db.Model):
    """Seat counter per course content; enrolment races are settled by one conditional
    UPDATE on this row, which both PostgreSQL and SQLite make atomic."""

    __tablename__ = "course_seats"

    course_content_id = db.Column(db.String(36), primary_key=True)
    capacity = db.Column(db.Integer)
    taken = db.Column(db.Integer, nullable=False, default=0)


class Enrolment(TimestampMixin, db.Model):
    __tablename__ = "enrolments"
    __table_args__ = (
        db.UniqueConstraint("course_content_id", "student_id"),
        db.Index("ix_enrolments_queue", "course_content_id", "status", "queued_at"),
    )

    id = db.Column(db.Integer, primary_key=True)
    course_content_id = db.Column(db.String(36), nullable=False)
    student_id = cascading_fk("users.id")
    status = db.Column(value_enum(EnrolmentStatus), nullable=False)
    queued_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    student = db.relationship("User")
