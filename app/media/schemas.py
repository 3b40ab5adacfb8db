"""Input and output schemas of the media API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.common.schemas import UtcDateTime, storable_json

MAX_JSON_BYTES = 64_000
_SMALL_JSON = storable_json(MAX_JSON_BYTES)


class UploadCreateSchema(Schema):
    resource_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    # The name is checked by the service (path, control characters, length) for a clear message.
    filename = fields.String(required=True, validate=validate.Length(max=2000))
    size = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=2**62))
    checksum = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))


class PartNumbersSchema(Schema):
    part_numbers = fields.List(
        fields.Integer(strict=True), load_default=None, validate=validate.Length(max=10_000)
    )


class PartSchema(Schema):
    part_number = fields.Integer(required=True, strict=True)
    etag = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class CompleteSchema(Schema):
    parts = fields.List(
        fields.Nested(PartSchema), load_default=list, validate=validate.Length(max=10_000)
    )


class DonePartSchema(Schema):
    part_number = fields.Integer()
    size = fields.Integer()
    etag = fields.String()


class UploadOutSchema(Schema):
    id = fields.String(attribute="public_id")
    resource_id = fields.String(attribute="resource_content_id")
    filename = fields.String()
    size = fields.Integer()
    checksum = fields.String(allow_none=True)
    state = fields.String()
    error = fields.String(allow_none=True)
    mode = fields.String()
    part_size = fields.Integer()
    part_count = fields.Integer()
    url = fields.String(allow_none=True)
    part_urls = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    done_parts = fields.List(fields.Nested(DonePartSchema), allow_none=True)
    expires_in = fields.Integer(allow_none=True)
    attachment_id = fields.String(allow_none=True)


class DeliveryQuerySchema(Schema):
    variant = fields.String(load_default=None, validate=validate.OneOf(["poster", "thumbnail"]))
    download = fields.Boolean(load_default=False)


class DeliverySchema(Schema):
    url = fields.String()
    expires_in = fields.Integer()
    media_type = fields.String()
    filename = fields.String()
    size = fields.Integer()


class AttachmentSchema(Schema):
    id = fields.String(attribute="public_id")
    role = fields.String()
    filename = fields.String()
    media_type = fields.String(attribute="object.media_type")
    size = fields.Integer(attribute="object.size")
    checksum = fields.String(attribute="object.checksum")
    meta = fields.Dict(attribute="object.meta")


class VersionQuerySchema(Schema):
    version = fields.String(load_default=None, validate=validate.Length(max=20))


class PlayerProgressInSchema(Schema):
    resource_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    verb = fields.String(required=True, validate=validate.Length(min=1, max=40))
    result = fields.Dict(load_default=None, allow_none=True, validate=_SMALL_JSON)
    context = fields.Dict(load_default=None, allow_none=True, validate=_SMALL_JSON)
    statement = fields.Dict(load_default=None, allow_none=True, validate=_SMALL_JSON)
    # A convenience for players: Shuyuan.report(id, verb, data) sends data here.
    data = fields.Dict(load_default=None, allow_none=True, validate=_SMALL_JSON)


class PlayerProgressOutSchema(Schema):
    id = fields.Integer()
    resource_id = fields.String(attribute="content_id")
    verb = fields.String()
    result = fields.Dict(allow_none=True)
    context = fields.Dict()
    created_at = UtcDateTime()


class PlayerProgressQuerySchema(Schema):
    resource_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
