"""Input and output schemas of the curriculum API."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.catalog import vocab
from app.catalog.schemas import ID_RANGE, UtcDateTime
from app.catalog.schemas import MAX_ID as MAX_ID  # re-exported for the views and API
from app.catalog.schemas import PATH_ID as PATH_ID
from app.curriculum.case import ASSOCIATION_TYPES
from app.curriculum.models import AlignmentType, ClassRole, Level

TITLE = validate.Length(min=1, max=500)


def one_of(vocabulary: str):
    return validate.OneOf(list(vocab.VOCABULARIES[vocabulary]))


# --- output ---------------------------------------------------------------------------


class FrameworkSchema(Schema):
    id = fields.Integer()
    identifier = fields.String()
    title = fields.String()
    creator = fields.String()
    version = fields.String(allow_none=True)
    last_change = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    district_id = fields.Integer(allow_none=True)


class NodeSchema(Schema):
    id = fields.Integer()
    framework_id = fields.Integer()
    identifier = fields.String(metadata={"description": "CASE CFItem identifier"})
    level = fields.Function(lambda n: n.level.value, metadata={"enum": [lv.value for lv in Level]})
    title = fields.String()
    title_en = fields.String(allow_none=True)
    code = fields.String(allow_none=True, metadata={"description": "humanCodingScheme"})
    parent_identifier = fields.String(allow_none=True)
    position = fields.Integer()
    depth = fields.Integer()
    subject = fields.String(allow_none=True)
    grade = fields.String(allow_none=True)
    edition = fields.String(allow_none=True)
    volume_identifier = fields.String(allow_none=True)
    unit_identifier = fields.String(allow_none=True)
    order_in_volume = fields.Integer(allow_none=True)


class TreeNodeSchema(Schema):
    node = fields.Nested(NodeSchema)
    children = fields.List(fields.Nested(lambda: TreeNodeSchema()))


class AssociationOutSchema(Schema):
    identifier = fields.String()
    type = fields.String()
    inverse = fields.Boolean(metadata={"description": "True when this node is the destination"})
    label = fields.String(
        metadata={"description": "Label in the reader's language (inverse label if inverse)"}
    )
    other_identifier = fields.String()
    other = fields.Nested(NodeSchema, allow_none=True)
    other_title = fields.String(allow_none=True, metadata={"description": "As the package gave it"})
    other_uri = fields.String(allow_none=True)
    external = fields.Boolean(
        metadata={"description": "The other end is in no stored framework (another tool's)"}
    )


class ResourceBriefSchema(Schema):
    content_id = fields.String()
    title = fields.String()
    kind = fields.String()
    url = fields.String(allow_none=True)
    alignment_type = fields.String()
    via_equivalent = fields.Boolean(
        metadata={"description": "Aligned to an exactMatchOf lesson of another edition"}
    )


class NodeDetailSchema(Schema):
    node = fields.Nested(NodeSchema)
    ancestors = fields.List(fields.Nested(NodeSchema))
    children = fields.List(fields.Nested(NodeSchema))
    knowledge_points = fields.List(fields.Nested(NodeSchema))
    associations = fields.List(fields.Nested(AssociationOutSchema))
    resources = fields.List(fields.Nested(ResourceBriefSchema))


class ImportCountsSchema(Schema):
    created = fields.Integer()
    updated = fields.Integer()
    deleted = fields.Integer()


class ImportReportSchema(Schema):
    framework_id = fields.Integer()
    identifier = fields.String()
    title = fields.String()
    framework = fields.String(metadata={"enum": ["created", "updated", "unchanged"]})
    items = fields.Nested(ImportCountsSchema)
    associations = fields.Nested(ImportCountsSchema)


class AlignmentOutSchema(Schema):
    alignment_id = fields.Integer()
    alignment_type = fields.String()
    node_id = fields.Integer()
    identifier = fields.String()
    level = fields.String()
    title = fields.String()
    title_en = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    grade = fields.String(allow_none=True)
    edition = fields.String(allow_none=True)
    volume = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)


class ClassEditionSchema(Schema):
    subject = fields.String()
    edition = fields.String()


class UserBriefSchema(Schema):
    public_id = fields.String()
    name = fields.String()


class ClassSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    grade = fields.String(allow_none=True)
    school_id = fields.Integer()
    external_ref = fields.String(allow_none=True)
    editions = fields.List(fields.Nested(ClassEditionSchema))


class ClassDetailSchema(ClassSchema):
    teachers = fields.List(fields.Nested(UserBriefSchema))
    students = fields.List(fields.Nested(UserBriefSchema))
    progress = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(NodeSchema),
        metadata={"description": "subject -> the lesson the class is at"},
    )


class HolidaySchema(Schema):
    name = fields.String(load_default="", validate=validate.Length(max=100))
    start = fields.Date(required=True)
    end = fields.Date(required=True)


WEEK_KIND = validate.OneOf(["teaching", "review", "exam"])


class CalendarWeekSchema(Schema):
    week = fields.Integer()
    starts_on = fields.Date()
    ends_on = fields.Date()
    kind = fields.String(metadata={"enum": ["teaching", "review", "exam"]})
    lessons = fields.List(fields.Nested(NodeSchema))


class CalendarSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    scope = fields.String(metadata={"enum": ["district", "school", "class"]})
    district_id = fields.Integer()
    school_id = fields.Integer(allow_none=True)
    class_id = fields.Integer(allow_none=True)
    based_on_id = fields.Integer(allow_none=True)
    term = fields.String()
    subject = fields.String()
    edition = fields.String()
    grade = fields.String(allow_none=True)
    volume_id = fields.Integer()
    term_start = fields.Date()
    term_end = fields.Date()
    lessons_per_week = fields.Integer()
    holidays = fields.List(fields.Dict())
    current_version = fields.Integer()


class CalendarDetailSchema(CalendarSchema):
    weeks = fields.List(fields.Nested(CalendarWeekSchema))


class CalendarVersionSchema(Schema):
    version = fields.Integer()
    note = fields.String(allow_none=True)
    created_at = UtcDateTime()
    data = fields.Dict()


class WeekLessonSchema(Schema):
    node = fields.Nested(NodeSchema)
    knowledge_points = fields.List(fields.Nested(NodeSchema))
    resources = fields.List(fields.Nested(ResourceBriefSchema))


class WeekViewSchema(Schema):
    class_id = fields.Integer()
    class_name = fields.String()
    subject = fields.String()
    edition = fields.String()
    calendar_id = fields.Integer()
    calendar_title = fields.String()
    week = fields.Integer()
    starts_on = fields.Date(allow_none=True)
    ends_on = fields.Date(allow_none=True)
    lessons = fields.List(fields.Nested(WeekLessonSchema))
    progress = fields.Nested(NodeSchema, allow_none=True)
    progress_delta = fields.Integer(
        allow_none=True, metadata={"description": "Lessons ahead (+) or behind (-) of the plan"}
    )
    kind = fields.String(metadata={"enum": ["teaching", "review", "exam"]})


class CoverageKnowledgePointSchema(Schema):
    node = fields.Nested(NodeSchema)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    total = fields.Integer()


class CoverageRowSchema(Schema):
    node = fields.Nested(NodeSchema)
    unit = fields.Nested(NodeSchema, allow_none=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    total = fields.Integer()
    knowledge_points = fields.List(fields.Nested(CoverageKnowledgePointSchema))


class CoverageSchema(Schema):
    volume = fields.Nested(NodeSchema)
    kinds = fields.List(fields.String())
    rows = fields.List(fields.Nested(CoverageRowSchema))
    lessons = fields.Integer()
    covered = fields.Integer()
    gaps = fields.Integer()


class CourseRefSchema(Schema):
    content_id = fields.String()
    title = fields.String()
    version = fields.Integer()


# --- input ----------------------------------------------------------------------------


class FrameworkQuerySchema(Schema):
    max_depth = fields.Integer(validate=validate.Range(min=0, max=20))


class ImportQuerySchema(Schema):
    district_id = fields.Integer(
        validate=ID_RANGE, metadata={"description": "Owning district (platform admins)"}
    )


class FrameworkCreateSchema(Schema):
    title = fields.String(required=True, validate=TITLE)
    subject = fields.String(validate=one_of("subject"), allow_none=True)
    creator = fields.String(validate=validate.Length(max=300))
    version = fields.String(validate=validate.Length(max=100))
    district_id = fields.Integer(validate=ID_RANGE)


class NodeCreateSchema(Schema):
    level = fields.String(required=True, validate=validate.OneOf([lv.value for lv in Level]))
    title = fields.String(required=True, validate=TITLE)
    title_en = fields.String(validate=validate.Length(max=500))
    code = fields.String(validate=validate.Length(max=100))
    parent_id = fields.Integer(validate=ID_RANGE, allow_none=True)


class AssociationCreateSchema(Schema):
    origin_id = fields.Integer(validate=ID_RANGE, required=True)
    destination_id = fields.Integer(validate=ID_RANGE, required=True)
    type = fields.String(required=True, validate=validate.OneOf(list(ASSOCIATION_TYPES)))


class VolumeQuerySchema(Schema):
    subject = fields.String(validate=one_of("subject"))
    edition = fields.String(validate=one_of("edition"))
    grade = fields.String(validate=one_of("grade"))


class AlignmentCreateSchema(Schema):
    node_id = fields.Integer(validate=ID_RANGE, required=True)
    resource_id = fields.String(
        validate=validate.Length(equal=36), metadata={"description": "content_id"}
    )
    item_key = fields.String(
        validate=validate.Length(equal=36), metadata={"description": "SectionItem.item_key"}
    )
    alignment_type = fields.String(
        load_default="teaches", validate=validate.OneOf([t.value for t in AlignmentType])
    )

    @validates_schema
    def _one_target(self, data, **kwargs):
        if bool(data.get("resource_id")) == bool(data.get("item_key")):
            raise ValidationError("Give exactly one of resource_id and item_key.", "resource_id")


class AlignmentQuerySchema(Schema):
    resource_id = fields.String(validate=validate.Length(equal=36))
    item_key = fields.String(validate=validate.Length(equal=36))


class GenerateCourseSchema(Schema):
    title = fields.String(validate=validate.Length(min=1, max=200))
    visibility = fields.String(validate=one_of("visibility"))


class ClassCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    school_id = fields.Integer(validate=ID_RANGE)
    grade = fields.String(validate=one_of("grade"), allow_none=True)
    editions = fields.Dict(
        keys=fields.String(validate=one_of("subject")),
        values=fields.String(validate=one_of("edition")),
    )


class MemberInSchema(Schema):
    email = fields.Email(required=True)
    role = fields.String(required=True, validate=validate.OneOf([r.value for r in ClassRole]))


class EditionInSchema(Schema):
    subject = fields.String(required=True, validate=one_of("subject"))
    edition = fields.String(required=True, validate=one_of("edition"))


class ProgressInSchema(Schema):
    node_id = fields.Integer(validate=ID_RANGE, required=True)


class CalendarCreateSchema(Schema):
    term = fields.String(required=True, validate=validate.Length(min=1, max=40))
    title = fields.String(validate=validate.Length(max=200))
    volume_id = fields.Integer(validate=ID_RANGE, required=True)
    term_start = fields.Date(required=True)
    term_end = fields.Date(required=True)
    lessons_per_week = fields.Integer(load_default=5, validate=validate.Range(min=1, max=40))
    holidays = fields.List(
        fields.Nested(HolidaySchema), load_default=list, validate=validate.Length(max=50)
    )
    district_id = fields.Integer(validate=ID_RANGE)
    school_id = fields.Integer(validate=ID_RANGE)
    class_id = fields.Integer(validate=ID_RANGE)
    kinds = fields.Dict(
        keys=fields.Integer(validate=validate.Range(min=1, max=60)),
        values=fields.String(validate=WEEK_KIND),
        validate=validate.Length(max=60),
        metadata={"description": "review and exam weeks (week number -> kind): no new lessons"},
    )


class WeekInSchema(Schema):
    week = fields.Integer(required=True, validate=validate.Range(min=1, max=60))
    starts_on = fields.Date()
    ends_on = fields.Date()
    kind = fields.String(
        validate=WEEK_KIND,
        metadata={"description": "teaching (default), review or exam: no new lessons"},
    )
    lessons = fields.List(
        fields.Integer(validate=ID_RANGE), load_default=list, validate=validate.Length(max=200)
    )


class CalendarUpdateSchema(Schema):
    title = fields.String(validate=validate.Length(min=1, max=200))
    term_start = fields.Date()
    term_end = fields.Date()
    lessons_per_week = fields.Integer(validate=validate.Range(min=1, max=40))
    holidays = fields.List(fields.Nested(HolidaySchema), validate=validate.Length(max=50))
    weeks = fields.List(fields.Nested(WeekInSchema), validate=validate.Length(max=60))
    kinds = fields.Dict(
        keys=fields.Integer(validate=validate.Range(min=1, max=60)),
        values=fields.String(validate=WEEK_KIND),
        validate=validate.Length(max=60),
        metadata={"description": "week number -> teaching, review or exam"},
    )
    regenerate = fields.Boolean(load_default=False)
    note = fields.String(validate=validate.Length(max=500))


class ShiftSchema(Schema):
    by = fields.Integer(load_default=1, validate=validate.Range(min=-20, max=20))
    from_week = fields.Integer(load_default=1, validate=validate.Range(min=1, max=60))


class MoveLessonSchema(Schema):
    node_id = fields.Integer(validate=ID_RANGE, required=True)
    week = fields.Integer(required=True, validate=validate.Range(min=1, max=60))


class OverrideSchema(Schema):
    class_id = fields.Integer(validate=ID_RANGE, required=True)


class RestoreSchema(Schema):
    version = fields.Integer(required=True, validate=ID_RANGE)


class WeekQuerySchema(Schema):
    date = fields.Date(metadata={"description": "A day of the wanted week (default: today)"})
    offset = fields.Integer(
        load_default=0,
        validate=validate.Range(min=-30, max=30),
        metadata={"description": "-1 last week, 1 next week"},
    )
    class_id = fields.Integer(validate=ID_RANGE)
    subject = fields.String(validate=one_of("subject"))


class LessonWeeksSchema(Schema):
    """The calendar page's plan: the week of each lesson (lessons left out leave the
    plan), and a note for the version."""

    weeks = fields.Dict(
        keys=fields.Integer(validate=ID_RANGE),
        values=fields.Integer(validate=validate.Range(min=1, max=10_000)),
        validate=validate.Length(max=500),
    )
    kinds = fields.Dict(
        keys=fields.Integer(validate=validate.Range(min=1, max=60)),
        values=fields.String(validate=WEEK_KIND),
        validate=validate.Length(max=60),
    )
    order = fields.Dict(
        keys=fields.Integer(validate=ID_RANGE),
        values=fields.Integer(validate=validate.Range(min=0, max=10_000)),
        validate=validate.Length(max=500),
    )
    note = fields.String(validate=validate.Length(max=500))
