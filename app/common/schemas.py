"""Schema building blocks shared by features."""

from __future__ import annotations

import json
from datetime import UTC

from marshmallow import Schema, ValidationError, fields, validate

from app.common.error_schemas import ErrorBodySchema, ErrorSchema  # noqa: F401  (re-exported)
from app.common.pagination import MAX_PAGE, MAX_PER_PAGE


class Text(fields.String):
    """A string without NUL characters (PostgreSQL cannot store them), optionally
    stripped of surrounding whitespace before validation (``strip=True``)."""

    default_error_messages = {"null_character": "Must not contain NUL characters."}

    def __init__(self, *args, strip: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.strip = strip

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("null_character")
        return text.strip() if self.strip else text


class UtcDateTime(fields.DateTime):
    """A timestamp written with its offset (``2026-11-30T06:00:00+00:00``).  Rows store
    naive UTC (``app.common.models.utcnow``); a bare ISO string would leave clients to
    guess the zone, and OpenAPI's ``date-time`` format (RFC 3339) requires the offset."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


def storable_json(max_bytes: int):
    """A validator for a free-form JSON value (a ``fields.Dict``): at most ``max_bytes``
    bytes encoded, and storable on every backend (no NaN or Infinity; no NUL character,
    which PostgreSQL refuses even as the escape ``\\u0000`` that ``json.dumps`` writes)."""

    def validate_json(value) -> None:
        try:
            encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            raise ValidationError(
                "Not valid JSON data (NaN and Infinity are not allowed)."
            ) from None
        if len(encoded.encode()) > max_bytes:
            raise ValidationError(f"At most {max_bytes} bytes.")
        if "\\u0000" in encoded:
            raise ValidationError("Must not contain NUL characters.")

    return validate_json


class PageArgsSchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


def page_schema(item_schema: type[Schema], name: str) -> type[Schema]:
    """An output schema for one page of ``item_schema`` items."""
    return type(
        name,
        (Schema,),
        {
            "items": fields.List(fields.Nested(item_schema)),
            "page": fields.Integer(),
            "per_page": fields.Integer(),
            "total": fields.Integer(),
            "pages": fields.Integer(),
        },
    )
