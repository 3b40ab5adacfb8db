"""Curriculum frameworks (CASE), alignments, school classes and teaching calendars.

A *framework* is a CASE ``CFDocument``; its *nodes* are ``CFItem``s and its
*associations* ``CFAssociation``s.  Nodes and associations refer to each other by CASE
identifier (a UUID string), never by row id, so a whole package can be written in one
bulk insert and re-imported in place.  Every imported object keeps the JSON it came in
(``raw``), which makes export lossless; the columns beside it mirror what the
application queries (level, tree parent, subject/grade/edition inherited from the tree).

The textbook axis is the tree of ``isChildOf`` associations:
subject → stage → grade → edition → volume → unit → lesson, with knowledge points as
children of lessons (or of any other node).
"""

from __future__ import annotations

import enum

from app.common.models import JSONType, TimestampMixin, cascading_fk, children, utcnow, value_enum
from app.extensions import db


class Level(enum.StrEnum):
    SUBJECT = "subject"
    STAGE = "stage"
    GRADE = "grade"
    EDITION = "edition"
    VOLUME = "volume"
    UNIT = "unit"
    # A 节 that holds 小节: the 小节 are the lessons, the 节 groups them.
    SECTION = "section"
    LESSON = "lesson"
    KNOWLEDGE_POINT = "knowledge_point"
    OTHER = "other"


class AlignmentType(enum.StrEnum):
    TEACHES = "teaches"
    ASSESSES = "assesses"
    REQUIRES = "requires"


class TargetType(enum.StrEnum):
    RESOURCE = "resource"
    ITEM = "item"


class WeekKind(enum.StrEnum):
    """What a calendar week is for: new lessons, review, or exams (no new lessons are
    spread into review and exam weeks)."""

    TEACHING = "teaching"
    REVIEW = "review"
    EXAM = "exam"


class ClassRole(enum.StrEnum):
    STUDENT = "student"
    TEACHER = "teacher"


class Framework(TimestampMixin, db.Model):
    """A CASE CFDocument."""

    __tablename__ = "curriculum_frameworks"

    id = db.Column(db.Integer, primary_key=True)
    identifier = db.Column(db.String(64), nullable=False, unique=True)
    title = db.Column(db.String(500), nullable=False)
    creator = db.Column(db.String(300), nullable=False, default="")
    version = db.Column(db.String(100))
    last_change = db.Column(db.String(40))
    subject = db.Column(db.String(32), index=True)
    # Owning district (its admins edit it); None: region-wide, edited by platform admins.
    district_id = db.Column(db.Integer, db.ForeignKey("districts.id"), index=True)
    # The CFDocument as imported, and package-level extras (CFDefinitions, CFRubrics).
    raw = db.Column(JSONType, nullable=False, default=dict)
    extras = db.Column(JSONType, nullable=False, default=dict)
    imported_at = db.Column(db.DateTime)

    district = db.relationship("District")


class Node(db.Model):
    """A CASE CFItem: a textbook level, a lesson or a knowledge point."""

    __tablename__ = "curriculum_nodes"
    __table_args__ = (
        db.Index("ix_curriculum_nodes_volume_order", "volume_identifier", "order_in_volume"),
        db.Index("ix_curriculum_nodes_framework_seq", "framework_id", "seq"),
    )

    id = db.Column(db.Integer, primary_key=True)
    framework_id = cascading_fk("curriculum_frameworks.id")
    identifier = db.Column(db.String(64), nullable=False, unique=True)
    seq = db.Column(db.Integer, nullable=False, default=0)
    level = db.Column(value_enum(Level), nullable=False, default=Level.OTHER)
    title = db.Column(db.Text, nullable=False)
    title_en = db.Column(db.String(500))
    code = db.Column(db.String(100))
    # Tree (first isChildOf); None: top level of its framework.
    parent_identifier = db.Column(db.String(64), index=True)
    position = db.Column(db.Integer, nullable=False, default=0)
    depth = db.Column(db.Integer, nullable=False, default=0)
    # Inherited from the ancestors, for filtering.
    subject = db.Column(db.String(32), index=True)
    grade = db.Column(db.String(8), index=True)
    edition = db.Column(db.String(32), index=True)
    volume_identifier = db.Column(db.String(64))
    unit_identifier = db.Column(db.String(64))
    # Lessons of a volume in teaching order (1-based); None for other levels.
    order_in_volume = db.Column(db.Integer)
    raw = db.Column(JSONType, nullable=False, default=dict)

    framework = db.relationship("Framework")

    def display_title(self, locale: str | None) -> str:
        if locale and locale.startswith("en") and self.title_en:
            return self.title_en
        return self.title


class Association(db.Model):
    """A CASE CFAssociation between two nodes (the destination may be a document)."""

    __tablename__ = "curriculum_associations"
    __table_args__ = (
        db.Index("ix_curriculum_associations_origin", "association_type", "origin_identifier"),
        db.Index(
            "ix_curriculum_associations_destination", "association_type", "destination_identifier"
        ),
    )

    id = db.Column(db.Integer, primary_key=True)
    framework_id = cascading_fk("curriculum_frameworks.id")
    identifier = db.Column(db.String(64), nullable=False, unique=True)
    seq = db.Column(db.Integer, nullable=False, default=0)
    association_type = db.Column(db.String(32), nullable=False)
    origin_identifier = db.Column(db.String(64), nullable=False)
    destination_identifier = db.Column(db.String(64), nullable=False)
    sequence_number = db.Column(db.Integer)
    raw = db.Column(JSONType, nullable=False, default=dict)


class Alignment(db.Model):
    """A resource (by content id) or a course item (by item key) aligned to a node."""

    __tablename__ = "curriculum_alignments"
    __table_args__ = (
        db.UniqueConstraint("node_id", "target_type", "target_key", "alignment_type"),
        db.Index("ix_curriculum_alignments_target", "target_type", "target_key"),
        # A node's resources of one alignment type in title order: the recommender walks
        # it for the first few by title instead of sorting every one (issue 14).
        db.Index(
            "ix_curriculum_alignments_node_title",
            "node_id",
            "target_type",
            "alignment_type",
            "resource_title",
            "target_key",
        ),
    )

    id = db.Column(db.Integer, primary_key=True)
    node_id = cascading_fk("curriculum_nodes.id")
    target_type = db.Column(value_enum(TargetType), nullable=False)
    target_key = db.Column(db.String(36), nullable=False)
    alignment_type = db.Column(
        value_enum(AlignmentType), nullable=False, default=AlignmentType.TEACHES
    )
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    # The title of the published version of the aligned resource (NULL for course items
    # and while no version is published), in code-point order ("C") on PostgreSQL as
    # Python sorts.  Written by the database only (the triggers below): on every insert
    # or update of an alignment and whenever a published resource row is written, so no
    # write path (ORM, bulk insert, sharing, imports) can leave it stale.  Read it only
    # together with the published row (a superseded or archived title stays behind).
    resource_title = db.Column(
        db.String(200).with_variant(db.String(200, collation="C"), "postgresql")
    )

    node = db.relationship("Node")


# The triggers that keep ``Alignment.resource_title``; the migration curr0003 creates
# the same.  Every ``create_all`` runs these, also on a database that has them (hence
# DROP … IF EXISTS / IF NOT EXISTS).  SQLite: a migration that rebuilds either table in
# batch mode drops its triggers and must create them again.  The PostgreSQL functions run
# with ``enable_seqscan = off``: PL/pgSQL keeps the plan of its first call, and a table
# that was nearly empty then (a bulk load into a new database) kept a sequential scan for
# every later row — seeding 100,000 resources took 549 s instead of ~40.  For the same
# reason the resource's state is compared as ``(state || '')``: without statistics the
# state index looked as good as the content id's, and a look-up by state reads every
# published row (seeding 10,000 took 96 s instead of 17).
ALIGNMENT_TITLE_TRIGGERS = {
    "postgresql": [
        """CREATE OR REPLACE FUNCTION curriculum_alignment_resource_title() RETURNS trigger AS $$
BEGIN
    IF NEW.target_type = 'resource' THEN
        NEW.resource_title := (SELECT r.title FROM resources r
            WHERE r.content_id = NEW.target_key AND (r.state || '') = 'published' LIMIT 1);
    ELSE
        NEW.resource_title := NULL;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql SET enable_seqscan = off""",
        "DROP TRIGGER IF EXISTS curriculum_alignments_resource_title ON curriculum_alignments",
        """CREATE TRIGGER curriculum_alignments_resource_title
BEFORE INSERT OR UPDATE ON curriculum_alignments
FOR EACH ROW EXECUTE FUNCTION curriculum_alignment_resource_title()""",
        """CREATE OR REPLACE FUNCTION resources_alignment_title() RETURNS trigger AS $$
BEGIN
    IF NEW.state = 'published' THEN
        UPDATE curriculum_alignments SET resource_title = NEW.title
        WHERE target_type = 'resource' AND target_key = NEW.content_id
            AND resource_title IS DISTINCT FROM (NEW.title COLLATE "C");
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql SET enable_seqscan = off""",
        "DROP TRIGGER IF EXISTS resources_alignment_title ON resources",
        """CREATE TRIGGER resources_alignment_title
AFTER INSERT OR UPDATE OF title, state, content_id ON resources
FOR EACH ROW EXECUTE FUNCTION resources_alignment_title()""",
    ],
    "sqlite": [
        """CREATE TRIGGER IF NOT EXISTS curriculum_alignments_title_insert
AFTER INSERT ON curriculum_alignments
BEGIN
    UPDATE curriculum_alignments SET resource_title = CASE
        WHEN NEW.target_type = 'resource' THEN (SELECT r.title FROM resources r
            WHERE r.content_id = NEW.target_key AND (r.state || '') = 'published' LIMIT 1)
        END
    WHERE id = NEW.id;
END""",
        """CREATE TRIGGER IF NOT EXISTS curriculum_alignments_title_update
AFTER UPDATE OF target_type, target_key, resource_title ON curriculum_alignments
BEGIN
    UPDATE curriculum_alignments SET resource_title = CASE
        WHEN NEW.target_type = 'resource' THEN (SELECT r.title FROM resources r
            WHERE r.content_id = NEW.target_key AND (r.state || '') = 'published' LIMIT 1)
        END
    WHERE id = NEW.id AND resource_title IS NOT CASE
        WHEN NEW.target_type = 'resource' THEN (SELECT r.title FROM resources r
            WHERE r.content_id = NEW.target_key AND (r.state || '') = 'published' LIMIT 1)
        END;
END""",
        """CREATE TRIGGER IF NOT EXISTS resources_alignment_title_insert
AFTER INSERT ON resources WHEN NEW.state = 'published'
BEGIN
    UPDATE curriculum_alignments SET resource_title = NEW.title
    WHERE target_type = 'resource' AND target_key = NEW.content_id
        AND resource_title IS NOT NEW.title;
END""",
        """CREATE TRIGGER IF NOT EXISTS resources_alignment_title_update
AFTER UPDATE OF title, state, content_id ON resources WHEN NEW.state = 'published'
BEGIN
    UPDATE curriculum_alignments SET resource_title = NEW.title
    WHERE target_type = 'resource' AND target_key = NEW.content_id
        AND resource_title IS NOT NEW.title;
END""",
    ],
}
for _dialect, _statements in ALIGNMENT_TITLE_TRIGGERS.items():
    for _statement in _statements:
        # After the whole schema: the triggers name both tables.
        db.event.listen(
            db.metadata, "after_create", db.DDL(_statement).execute_if(dialect=_dialect)
        )


class SchoolClass(TimestampMixin, db.Model):
    """A teaching class (教学班) of a school."""

    __tablename__ = "school_classes"

    id = db.Column(db.Integer, primary_key=True)
    school_id = db.Column(db.Integer, db.ForeignKey("schools.id"), nullable=False, index=True)
    name = db.Column(db.String(200), nullable=False)
    grade = db.Column(db.String(8))
    # e.g. "lti:<issuer>:<context_id>" for a class mirrored from an LMS.
    external_ref = db.Column(db.String(500), unique=True)

    school = db.relationship("School")
    members = children("ClassMember", back_populates="school_class")
    editions = children("ClassEdition", lazy="selectin", order_by="ClassEdition.subject")

    def edition_for(self, subject: str) -> str | None:
        return next((e.edition for e in self.editions if e.subject == subject), None)


class ClassMember(db.Model):
    __tablename__ = "school_class_members"

    class_id = db.Column(
        db.Integer, db.ForeignKey("school_classes.id", ondelete="CASCADE"), primary_key=True
    )
    user_id = db.Column(
        db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role = db.Column(value_enum(ClassRole), primary_key=True)

    school_class = db.relationship("SchoolClass", back_populates="members")
    user = db.relationship("User")


class ClassEdition(db.Model):
    """The textbook edition a class uses for one subject."""

    __tablename__ = "school_class_editions"

    class_id = db.Column(
        db.Integer, db.ForeignKey("school_classes.id", ondelete="CASCADE"), primary_key=True
    )
    subject = db.Column(db.String(32), primary_key=True)
    edition = db.Column(db.String(32), nullable=False)


class ClassProgress(db.Model):
    """Where a class actually is in a subject ("we are at lesson X")."""

    __tablename__ = "school_class_progress"

    class_id = db.Column(
        db.Integer, db.ForeignKey("school_classes.id", ondelete="CASCADE"), primary_key=True
    )
    subject = db.Column(db.String(32), primary_key=True)
    node_id = cascading_fk("curriculum_nodes.id", index=False)
    updated_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    node = db.relationship("Node")


class TeachingCalendar(TimestampMixin, db.Model):
    """A term plan for one subject, edition and volume, owned by a district, a school or
    (a teacher's override) one class.  Every save is kept as a :class:`CalendarVersion`;
    the current plan is also spread into :class:`CalendarEntry` rows for fast look-up."""

    __tablename__ = "teaching_calendars"
    __table_args__ = (
        db.Index("ix_teaching_calendars_scope", "subject", "edition", "term_start", "term_end"),
        # One calendar per class, subject and term: the class's own plan (NULL class ids,
        # the district and school calendars, are never equal, so they are not limited).
        # A unique index, not a constraint: SQLite adds it without rebuilding the table.
        db.Index(
            "uq_teaching_calendars_class_id_subject_term",
            "class_id",
            "subject",
            "term",
            unique=True,
        ),
    )

    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)
    district_id = db.Column(db.Integer, db.ForeignKey("districts.id"), nullable=False, index=True)
    school_id = db.Column(db.Integer, db.ForeignKey("schools.id"), index=True)
    class_id = db.Column(
        db.Integer, db.ForeignKey("school_classes.id", ondelete="CASCADE"), index=True
    )
    based_on_id = db.Column(db.Integer, db.ForeignKey("teaching_calendars.id", ondelete="SET NULL"))
    term = db.Column(db.String(40), nullable=False)
    subject = db.Column(db.String(32), nullable=False)
    edition = db.Column(db.String(32), nullable=False)
    grade = db.Column(db.String(8))
    volume_id = cascading_fk("curriculum_nodes.id")
    term_start = db.Column(db.Date, nullable=False)
    term_end = db.Column(db.Date, nullable=False)
    lessons_per_week = db.Column(db.Integer, nullable=False, default=5)
    holidays = db.Column(JSONType, nullable=False, default=list)
    current_version = db.Column(db.Integer, nullable=False, default=1)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))

    volume = db.relationship("Node")
    district = db.relationship("District")
    school = db.relationship("School")
    school_class = db.relationship("SchoolClass")
    weeks = children("CalendarWeek", order_by="CalendarWeek.week")

    @property
    def scope(self) -> str:
        if self.class_id:
            return "class"
        return "school" if self.school_id else "district"


class CalendarWeek(db.Model):
    __tablename__ = "teaching_calendar_weeks"

    calendar_id = db.Column(
        db.Integer, db.ForeignKey("teaching_calendars.id", ondelete="CASCADE"), primary_key=True
    )
    week = db.Column(db.Integer, primary_key=True)
    starts_on = db.Column(db.Date, nullable=False)
    ends_on = db.Column(db.Date, nullable=False)
    kind = db.Column(
        value_enum(WeekKind), nullable=False, default=WeekKind.TEACHING, server_default="teaching"
    )


class CalendarEntry(db.Model):
    """Lesson ``node_id`` is taught in ``week`` at ``position`` of the current version."""

    __tablename__ = "teaching_calendar_entries"
    __table_args__ = (db.UniqueConstraint("calendar_id", "node_id"),)

    id = db.Column(db.Integer, primary_key=True)
    calendar_id = cascading_fk("teaching_calendars.id", index=False)
    week = db.Column(db.Integer, nullable=False)
    position = db.Column(db.Integer, nullable=False, default=0)
    node_id = cascading_fk("curriculum_nodes.id", index=False)

    node = db.relationship("Node")


db.Index(
    "ix_teaching_calendar_entries_week",
    CalendarEntry.calendar_id,
    CalendarEntry.week,
    CalendarEntry.position,
)


class CalendarVersion(db.Model):
    """One saved state of a calendar (term dates, holidays, weeks and their lessons)."""

    __tablename__ = "teaching_calendar_versions"
    __table_args__ = (db.UniqueConstraint("calendar_id", "version"),)

    id = db.Column(db.Integer, primary_key=True)
    calendar_id = cascading_fk("teaching_calendars.id")
    version = db.Column(db.Integer, nullable=False)
    note = db.Column(db.String(500))
    data = db.Column(JSONType, nullable=False, default=dict)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
