"""Input and output schemas of the catalog API."""

from __future__ import annotations

from datetime import UTC

from flask_babel import get_locale
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.catalog import vocab
from app.catalog.models import REVIEW_NOTE_MAX as MAX_NOTE
from app.catalog.models import Resource
from app.common.schemas import PageArgsSchema, Text, UtcDateTime, page_schema, storable_json
from app.errors import Invalid

TITLE = validate.Length(min=1, max=200)
SUMMARY = validate.Length(max=500)
RICH_TEXT = validate.Length(max=100_000)
URL = validate.And(
    validate.Length(max=2000), validate.URL(schemes={"http", "https"}, require_tld=False)
)


MAX_PAYLOAD_BYTES = 200_000
# Row ids are 32-bit integers on every backend: a larger one cannot exist, so it is a
# validation error in a body and "not found" in a path (never a database error).
MAX_ID = 2**31 - 1
ID_RANGE = validate.Range(min=1, max=MAX_ID)
PATH_ID = f"int(min=1, max={MAX_ID})"
# Positions of a course's parts (0-based) in paths and bodies.
MAX_POSITION = 10_000
PATH_POSITION = f"int(max={MAX_POSITION})"


def flatten_messages(messages) -> dict[str, list[str]]:
    """Marshmallow's nested messages as ``{"field" or "field.sub": [messages]}``."""
    flat: dict[str, list[str]] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list | tuple):
            for inner in value:
                walk(prefix, inner)
        else:
            flat.setdefault(prefix or "_schema", []).append(str(value))

    walk("", messages)
    return flat


def load_form(schema: Schema, data: dict, partial: bool = False) -> dict:
    """Check a page's form with the API's input schema, so both accept the same; the
    errors come back as :class:`~app.errors.Invalid` with one entry per field."""
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise Invalid(
            "The submitted data is not valid.", fields=flatten_messages(exc.messages)
        ) from None


def one_of(vocabulary: str):
    return validate.OneOf(list(vocab.VOCABULARIES[vocabulary]))


class TranslationSchema(Schema):
    title = Text(strip=True, validate=TITLE)
    summary = Text(validate=SUMMARY)
    description_html = Text(validate=RICH_TEXT)


class SessionInSchema(Schema):
    starts_at = fields.NaiveDateTime(required=True)
    ends_at = fields.NaiveDateTime(required=True)
    place = Text(validate=validate.Length(max=200), allow_none=True)
    online_url = Text(validate=URL, allow_none=True)
    note = Text(validate=validate.Length(max=500), allow_none=True)

    @validates_schema
    def _ends_after_start(self, data, **kwargs):
        if "ends_at" in data and "starts_at" in data and data["ends_at"] <= data["starts_at"]:
            raise ValidationError("Must be after starts_at.", "ends_at")


class ItemInSchema(Schema):
    title = Text(validate=validate.Length(max=200), allow_none=True)
    resource_id = Text(
        validate=validate.Length(equal=36),
        allow_none=True,
        metadata={"description": "content_id of a resource"},
    )
    item_key = Text(validate=validate.Length(equal=36))


class SectionInSchema(Schema):
    title = Text(required=True, strip=True, validate=TITLE)
    summary = Text(validate=validate.Length(max=1000), allow_none=True)
    items = fields.List(
        fields.Nested(ItemInSchema), load_default=list, validate=validate.Length(max=200)
    )


class SessionUpdateSchema(SessionInSchema):
    """PATCH body of one session: any of its fields."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("partial", True)
        super().__init__(*args, **kwargs)


class SectionUpdateSchema(Schema):
    title = Text(strip=True, validate=TITLE)
    summary = Text(validate=validate.Length(max=1000), allow_none=True)


class ItemAddSchema(Schema):
    """A new item: a resource the author may read, a title, or both (its item key is
    made by the server and stays with it across versions)."""

    title = Text(validate=validate.Length(max=200), allow_none=True)
    resource_id = Text(
        validate=validate.Length(equal=36),
        allow_none=True,
        metadata={"description": "content_id of a resource"},
    )


class ItemUpdateSchema(ItemAddSchema):
    """PATCH body of one item: its title, its resource or both."""


class MoveSchema(Schema):
    to = fields.Integer(
        required=True,
        validate=validate.Range(min=0, max=MAX_POSITION),
        metadata={"description": "0-based position to move to (past the end: last)"},
    )


class ItemMoveSchema(MoveSchema):
    section = fields.Integer(
        validate=validate.Range(min=0, max=MAX_POSITION),
        metadata={"description": "0-based section to move into (default: the same)"},
    )


class _ContentInSchema(Schema):
    title = Text(required=True, strip=True, validate=TITLE)
    summary = Text(validate=SUMMARY)
    description_html = Text(validate=RICH_TEXT)
    language = Text(validate=one_of("language"))
    licence = Text(validate=one_of("licence"))
    visibility = Text(validate=one_of("visibility"))
    subject = Text(validate=one_of("subject"), allow_none=True)
    tags = fields.List(
        Text(validate=validate.Length(min=1, max=50)), validate=validate.Length(max=20)
    )
    translations = fields.Dict(
        keys=Text(validate=validate.OneOf(["en"])), values=fields.Nested(TranslationSchema)
    )


class CourseCreateSchema(_ContentInSchema):
    kind = Text(required=True, validate=one_of("course_kind"))
    cover_url = Text(validate=URL, allow_none=True)
    category = Text(validate=one_of("category"), allow_none=True)
    # strict: 1.5 or "12" is refused rather than silently turned into an integer.
    capacity = fields.Integer(
        strict=True, validate=validate.Range(min=1, max=100_000), allow_none=True
    )
    enrolment_open = fields.Boolean()
    grade = Text(validate=one_of("grade"), allow_none=True)
    edition = Text(validate=one_of("edition"), allow_none=True)
    sessions = fields.List(fields.Nested(SessionInSchema), validate=validate.Length(max=200))
    sections = fields.List(fields.Nested(SectionInSchema), validate=validate.Length(max=200))


class _PartialMixin:
    """For PATCH: every top-level field is optional (a sent field replaces the stored
    one); nested objects such as one session must still be complete."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("partial", tuple(self._declared_fields))
        super().__init__(*args, **kwargs)


class CourseUpdateSchema(_PartialMixin, CourseCreateSchema):
    """PATCH body of a course: any subset of the create fields."""


class ResourceCreateSchema(_ContentInSchema):
    kind = Text(required=True, validate=one_of("resource_kind"))
    url = Text(validate=URL, allow_none=True)
    grades = fields.List(Text(validate=one_of("grade")), validate=validate.Length(max=12))
    data = fields.Dict(
        keys=Text(validate=validate.Length(max=100)),
        validate=storable_json(MAX_PAYLOAD_BYTES),
        metadata={"description": "Kind-specific payload, e.g. exercise questions."},
    )


class ResourceUpdateSchema(_PartialMixin, ResourceCreateSchema):
    """PATCH body of a resource: any subset of the create fields."""


class RejectSchema(Schema):
    note = Text(required=True, strip=True, validate=validate.Length(min=1, max=MAX_NOTE))


class VersionArgsSchema(Schema):
    version = Text(
        validate=validate.Length(max=12),
        metadata={"description": "'published' (default), 'latest' (editors) or a number"},
    )


class CatalogQuerySchema(PageArgsSchema):
    kind = Text(validate=validate.OneOf(list(vocab.RESOURCE_KINDS) + list(vocab.COURSE_KINDS)))
    subject = Text(validate=one_of("subject"))
    grade = Text(validate=one_of("grade"))
    district = fields.Integer(validate=ID_RANGE)
    school = fields.Integer(validate=ID_RANGE)
    language = Text(validate=one_of("language"))
    licence = Text(validate=one_of("licence"))
    tag = Text(validate=validate.Length(max=50))
    category = Text(validate=one_of("category"))
    edition = Text(validate=one_of("edition"))
    q = Text(validate=validate.Length(max=200))
    sort = Text(load_default="newest", validate=validate.OneOf(["newest", "oldest", "title"]))


class MineQuerySchema(PageArgsSchema):
    state = Text(validate=one_of("state"))


class ChoicesQuerySchema(Schema):
    q = Text(load_default=None, validate=validate.Length(max=200))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=50))


class ResourceChoiceSchema(Schema):
    """A resource the section picker offers."""

    id = fields.String()
    title = fields.String()
    kind = fields.String()
    kind_label = fields.String()
    state = fields.String()
    state_label = fields.String()
    own = fields.Boolean()
    duration_seconds = fields.Integer(allow_none=True)


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
    # A draft the district's reviewer returned with a note ("Sent back: <note>").
    sent_back = fields.Method("_sent_back")
    has_picture = fields.Method("_has_picture")

    def _sent_back(self, obj) -> bool:
        return obj.state == "draft" and bool(obj.review_note)

    def _has_picture(self, obj) -> bool:
        return bool(obj.cover_id)

    tags = fields.Method("_tags")
    author = fields.Nested(PersonSchema)
    school = fields.Nested(OrgSchema, allow_none=True)
    district = fields.Nested(OrgSchema)
    published_at = UtcDateTime(allow_none=True)
    updated_at = UtcDateTime()
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


class _DetailFields(Schema):
    """What the page of one course or resource shows beyond its list entry."""

    description_html = _Localised()
    translations = fields.Dict()
    review_note = fields.String(allow_none=True)


class CourseSchema(_DetailFields, CourseSummarySchema):
    enrolment_open = fields.Boolean()
    sessions = fields.List(fields.Nested(SessionSchema))
    sections = fields.List(fields.Nested(SectionSchema))


class ResourceSummarySchema(_ContentOutSchema):
    grades = fields.List(fields.String())
    url = fields.String(allow_none=True)
    duration_seconds = fields.Integer(allow_none=True)


class ResourceSchema(_DetailFields, ResourceSummarySchema):
    data = fields.Dict()


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
    queued_at = UtcDateTime()
    waitlist_position = fields.Integer(allow_none=True)


class SeatsSchema(Schema):
    capacity = fields.Integer(allow_none=True)
    taken = fields.Integer()


class VocabularyEntrySchema(Schema):
    code = fields.String()
    zh = fields.String()
    en = fields.String()


# --- fast path for list pages ----------------------------------------------------------


def _text(value):
    return None if value is None else str(value)


def _stamp(value):
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _org(org):
    return None if org is None else {"id": org.id, "name": _text(org.name)}


def summary_dict(obj, locale: str) -> dict:
    """What ``CourseSummarySchema``/``ResourceSummarySchema`` dump for ``obj``, built
    directly: a list page dumps 20-100 of them, and marshmallow's per-field machinery was
    a quarter of the list API's CPU (docs/catalog.md).  The schemas stay the documented
    contract; tests/catalog/test_queries.py checks both give the same JSON."""
    author = obj.author
    data = {
        "id": _text(obj.content_id),
        "row_id": obj.id,
        "version": obj.version,
        "state": _text(obj.state),
        "kind": _text(obj.kind),
        "title": obj.translated("title", locale),
        "summary": obj.translated("summary", locale),
        "language": _text(obj.language),
        "licence": _text(obj.licence),
        "visibility": _text(obj.visibility),
        "subject": _text(obj.subject),
        "sent_back": obj.state == "draft" and bool(obj.review_note),
        "has_picture": bool(obj.cover_id),
        "tags": [tag.name for tag in obj.tags],
        "author": None
        if author is None
        else {"id": _text(author.public_id), "name": _text(author.name)},
        "school": _org(obj.school),
        "district": _org(obj.district),
        "published_at": _stamp(obj.published_at),
        "updated_at": _stamp(obj.updated_at),
        "source_content_id": _text(obj.source_content_id),
    }
    if isinstance(obj, Resource):
        data["grades"] = [_text(grade) for grade in obj.grades]
        data["url"] = _text(obj.url)
        data["duration_seconds"] = obj.duration_seconds
    else:
        data["category"] = _text(obj.category)
        data["grade"] = _text(obj.grade)
        data["edition"] = _text(obj.edition)
        data["capacity"] = obj.capacity
        data["cover_url"] = _text(obj.cover_url)
    return data


def page_dict(page, locale: str) -> dict:
    """What ``CoursePageSchema``/``ResourcePageSchema`` dump for a page of summaries."""
    return {
        "items": [summary_dict(obj, locale) for obj in page.items],
        "page": page.page,
        "per_page": page.per_page,
        "total": page.total,
        "pages": page.pages,
    }
