"""Schema building blocks shared by features."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

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


class ErrorBodySchema(Schema):
    code = fields.String()
    message = fields.String()
    fields_ = fields.Dict(data_key="fields")


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema)
