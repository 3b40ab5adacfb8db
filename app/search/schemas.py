"""Input and output schemas of the search API."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from app.catalog import vocab
from app.common.schemas import page_schema
from app.search import services

FACET_NAMES = list(services.FACET_VOCABULARIES)
Text = fields.String


def _codes(*vocabularies) -> list[str]:
    return [code for v in vocabularies for code in v]


class SearchArgsSchema(Schema):
    """Query string of ``GET /api/v1/search``.  Every facet parameter may repeat
    (``grade=g7&grade=g8`` = either grade); parameters not listed here are rejected (422)."""

    class Meta:
        unknown = RAISE

    q = Text(
        load_default="",
        validate=validate.Length(max=services.MAX_QUERY_CHARS * 5),
        metadata={
            "description": "Free text: Chinese, English, pinyin (jingju) or initials (jj). "
            "Words naming a facet value (视频, video, 七年级, 数学) become filters."
        },
    )
    sort = Text(
        load_default="relevance",
        validate=validate.OneOf(list(services.SORTS) + list(services.SORT_ALIASES)),
        metadata={"description": "relevance | newest | popular (most used)"},
    )
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=services.MAX_PAGE))
    per_page = fields.Integer(
        load_default=20, validate=validate.Range(min=1, max=services.MAX_PER_PAGE)
    )
    facets = fields.List(
        Text(validate=validate.OneOf(FACET_NAMES)),
        metadata={"description": "Facets to count (default: all shown facets)."},
    )
    chapter = fields.Integer(
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={
            "description": "A textbook chapter, section or lesson (curriculum node id): only "
            "resources aligned to it, its lessons and their knowledge points."
        },
    )
    facet_words = fields.Boolean(
        load_default=True,
        metadata={"description": "Turn query words that name a facet value into filters."},
    )
    type = fields.List(Text(validate=validate.OneOf(["course", "resource"])))
    kind = fields.List(
        Text(validate=validate.OneOf(_codes(vocab.RESOURCE_KINDS, vocab.COURSE_KINDS)))
    )
    subject = fields.List(Text(validate=validate.OneOf(list(vocab.SUBJECTS))))
    grade = fields.List(Text(validate=validate.OneOf(list(vocab.GRADES))))
    edition = fields.List(Text(validate=validate.OneOf(list(vocab.EDITIONS))))
    district = fields.List(fields.Integer(validate=validate.Range(min=1, max=2**31 - 1)))
    language = fields.List(Text(validate=validate.OneOf(list(vocab.LANGUAGES))))
    licence = fields.List(Text(validate=validate.OneOf(list(vocab.LICENCES))))
    category = fields.List(Text(validate=validate.OneOf(list(vocab.CATEGORIES))))


class SearchHitSchema(Schema):
    type = fields.String(metadata={"description": "course | resource"})
    content_id = fields.String()
    version = fields.Integer(allow_none=True)
    title = fields.String()
    title_en = fields.String()
    summary = fields.String()
    title_html = fields.String(
        metadata={"description": "Safe HTML: escaped title, matches in <mark>."}
    )
    snippet_html = fields.String(
        metadata={"description": "Safe HTML excerpt with matches in <mark>."}
    )
    kind = fields.String()
    subject = fields.String()
    grades = fields.List(fields.String())
    edition = fields.String()
    category = fields.String()
    language = fields.String()
    licence = fields.String()
    district_id = fields.Integer(allow_none=True)
    url = fields.String()
    published_at = fields.Integer(metadata={"description": "Milliseconds since the epoch."})
    usage_count = fields.Integer()
    tags = fields.List(fields.String())
    score = fields.Float(allow_none=True)


class FacetValueSchema(Schema):
    value = fields.String()
    label = fields.String()
    count = fields.Integer()
    selected = fields.Boolean()


class FacetWordSchema(Schema):
    facet = fields.String()
    value = fields.String()
    word = fields.String()


class SearchResultSchema(page_schema(SearchHitSchema, "SearchHitPageSchema")):
    """A page of hits (the same envelope as every paged listing) with what the search
    understood and counted."""

    query = fields.String(
        metadata={"description": "The query as understood (normalised, cut to length)."}
    )
    sort = fields.String()
    facets = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(FacetValueSchema)))
    filters = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    facet_words = fields.List(fields.Nested(FacetWordSchema))
    did_you_mean = fields.String(allow_none=True)
    corrected = fields.Boolean(metadata={"description": "Results are those of did_you_mean."})
    relaxed = fields.Boolean(
        metadata={"description": "Not every word matched (any-word fallback)."}
    )
