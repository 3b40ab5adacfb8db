"""Input and output schemas of the catalog API."""

from __future__ import annotations

from flask_babel import get_locale
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.catalog import vocab
from app.common.schemas import PageArgsSchema, page_schema

TITLE = validate.Length(min=1, max=200)
SUMMARY = validate.Length(max=500)
RICH_TEXT = validate.Length(max=100_000)
URL = validate.And(validate.Length(max=2000), validate.URL(schemes={"http", "https"}, require_tld=False))


def one_of(vocabulary: str):
    return validate.OneOf(list(vocab.VOCABULARIES[vocabulary]))


class TranslationSchema(Schema):
    title = fields.String(validate=TITLE)
    summary = fields.String(validate=SUMMARY)
    description_html = fields.String(validate=RICH_TEXT)


class SessionInSchema(Schema):
    starts_at = fields.NaiveDateTime(required=True)
    ends_at = fields.NaiveDateTime(required=True)
    place = fields.String(validate=validate.Length(max=200), allow_none=True)
    online_url = fields.String(validate=URL, allow_none=True)
    note = fields.String(validate=validate.Length(max=500), allow_none=True)

    @validates_schema
    def _ends_after_start(self, data, **kwargs):
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError("Must be after starts_at.", "ends_at")


class ItemInSchema(Schema):
    title = fields.String(validate=validate.Length(max=200), allow_none=True)
    resource_id = fields.String(validate=validate.Length(equal=36), allow_none=True,
                                metadata={"description": "content_id of a resource"})
    item_key = fields.String(validate=validate.Length(equal=36))


class SectionInSchema(Schema):
    title = fields.String(required=True, validate=TITLE)
    summary = fields.String(validate=validate.Length(max=1000), allow_none=True)
    items = fields.List(fields.Nested(ItemInSchema), load_default=list, validate=validate.Length(max=200))


class _ContentInSchema(Schema):
    title = fields.String(required=True, validate=TITLE)
    summary = fields.String(validate=SUMMARY)
    description_html = fields.String(validate=RICH_TEXT)
    language = fields.String(validate=one_of("language"))
    licence = fields.String(validate=one_of("licence"))
    visibility = fields.String(validate=one_of("visibility"))
    subject = fields.String(validate=one_of("subject"), allow_none=True)
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=50)), validate=validate.Length(max=20))
    translations = fields.Dict(keys=fields.String(validate=validate.OneOf(["en"])),
                               values=fields.Nested(TranslationSchema))


class CourseCreateSchema(_ContentInSchema):
    kind = fields.String(required=True, validate=one_of("course_kind"))
    cover_url = fields.String(validate=URL, allow_none=True)
    category = fields.String(validate=one_of("category"), allow_none=True)
    capacity = fields.Integer(validate=validate.Range(min=1, max=100_000), allow_none=True)
    enrolment_open = fields.Boolean()
    grade = fields.String(validate=one_of("grade"), allow_none=True)
    edition = fields.String(validate=one_of("edition"), allow_none=True)
    sessions = fields.List(fields.Nested(SessionInSchema), validate=validate.Length(max=200))
    sections = fields.List(fields.Nested(SectionInSchema), validate=validate.Length(max=200))


class CourseUpdateSchema(CourseCreateSchema):
    class Meta:
        partial = True


class ResourceCreateSchema(_ContentInSchema):
    kind = fields.String(required=True, validate=one_of("resource_kind"))
    url = fields.String(validate=URL, allow_none=True)
    grades = fields.List(fields.String(validate=one_of("grade")), validate=validate.Length(max=12))
    data = fields.Dict(metadata={"description": "Kind-specific payload, e.g. exercise questions."})


class ResourceUpdateSchema(ResourceCreateSchema):
    class Meta:
        partial = True


class RejectSchema(Schema):
    note = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class VersionArgsSchema(Schema):
    version = fields.String(validate=validate.Length(max=12),
                            metadata={"description": "'published' (default), 'latest' (editors) or a number"})


class CatalogQuerySchema(PageArgsSchema):
    kind = fields.String()
    subject = fields.String(validate=one_of("subject"))
    grade = fields.String(validate=one_of("grade"))
    district = fields.Integer()
    school = fields.Integer()
    language = fields.String(validate=one_of("language"))
    licence = fields.String(validate=one_of("licence"))
    tag = fields.String(validate=validate.Length(max=50))
    category = fields.String(validate=one_of("category"))
    edition = fields.String(validate=one_of("edition"))
    q = fields.String(validate=validate.Length(max=200))
    sort = fields.String(load_default="newest", validate=validate.OneOf(["newest", "oldest", "title"]))


class MineQuerySchema(PageArgsSchema):
    state = fields.String(validate=one_of("state"))


# --- output ---------------------------------------------------------------------------


class _Localised(fields.Field):
    """A text field shown in the reader's language when a translation exists."""

    def _serialize(self, value, attr, obj, **kwargs):
        locale = str(get_locale() or "zh_CN")
        return obj.translated(attr, locale)


class PersonSchema(Schema):
    id = fields.String(attribute="public_id")
    name = fields.String()


class OrgSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class _ContentOutSchema(Schema):
    id = fields.String(attribute="content_id", metadata={"description": "Stable content id"})
    row_id = fields.Integer(attribute="id")
    version = fields.Integer()
    state = fields.String()
    kind = fields.String()
    title = _Localised()
    summary = _Localised()
    language = fields.String()
    licence = fields.String()
    visibility = fields.String()
    subject = fields.String(allow_none=True)
    tags = fields.Method("_tags")
    author = fields.Nested(PersonSchema)
    school = fields.Nested(OrgSchema, allow_none=True)
    district = fields.Nested(OrgSchema)
    published_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime()
    source_content_id = fields.String(allow_none=True)

    def _tags(self, obj):
        return [tag.name for tag in obj.tags]


class SessionSchema(Schema):
    starts_at = fields.NaiveDateTime()
    ends_at = fields.NaiveDateTime()
    place = fields.String(allow_none=True)
    online_url = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class ItemSchema(Schema):
    item_key = fields.String()
    title = fields.String(allow_none=True)
    resource_id = fields.String(attribute="resource_content_id", allow_none=True)


class SectionSchema(Schema):
    title = fields.String()
    summary = fields.String(allow_none=True)
    items = fields.List(fields.Nested(ItemSchema))


class CourseSummarySchema(_ContentOutSchema):
    category = fields.String(allow_none=True)
    grade = fields.String(allow_none=True)
    edition = fields.String(allow_none=True)
    capacity = fields.Integer(allow_none=True)
    cover_url = fields.String(allow_none=True)


class CourseSchema(CourseSummarySchema):
    description_html = _Localised()
    translations = fields.Dict()
    enrolment_open = fields.Boolean()
    review_note = fields.String(allow_none=True)
    sessions = fields.List(fields.Nested(SessionSchema))
    sections = fields.List(fields.Nested(SectionSchema))


class ResourceSummarySchema(_ContentOutSchema):
    grades = fields.List(fields.String())
    url = fields.String(allow_none=True)


class ResourceSchema(ResourceSummarySchema):
    description_html = _Localised()
    translations = fields.Dict()
    data = fields.Dict()
    review_note = fields.String(allow_none=True)


CoursePageSchema = page_schema(CourseSummarySchema, "CoursePageSchema")
ResourcePageSchema = page_schema(ResourceSummarySchema, "ResourcePageSchema")


class ReviewQueueSchema(Schema):
    courses = fields.Nested(CoursePageSchema)
    resources = fields.Nested(ResourcePageSchema)


class EnrolmentSchema(Schema):
    id = fields.Integer()
    course_id = fields.String(attribute="course_content_id")
    student = fields.Nested(PersonSchema)
    status = fields.String()
    queued_at = fields.DateTime()
    waitlist_position = fields.Integer(allow_none=True)


class SeatsSchema(Schema):
    capacity = fields.Integer(allow_none=True)
    taken = fields.Integer()


class VocabularyEntrySchema(Schema):
    code = fields.String()
    zh = fields.String()
    en = fields.String()
