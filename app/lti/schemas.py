"""LTI API schemas: input and output kept apart."""

from marshmallow import Schema, fields, validate

from app.common.schemas import PageArgsSchema, Text, UtcDateTime, page_schema

_url = [validate.URL(schemes={"http", "https"}, require_tld=False), validate.Length(max=1000)]


class PlatformCreateSchema(Schema):
    name = Text(load_default="", strip=True, validate=validate.Length(max=200))
    issuer = Text(required=True, strip=True, validate=validate.Length(min=1, max=255))
    client_id = Text(required=True, strip=True, validate=validate.Length(min=1, max=255))
    deployment_id = Text(required=True, strip=True, validate=validate.Length(min=1, max=255))
    auth_login_url = Text(required=True, validate=_url)
    auth_token_url = Text(required=True, validate=_url)
    key_set_url = Text(required=True, validate=_url)
    auth_audience = Text(load_default=None, allow_none=True, validate=_url)
    school = Text(load_default=None, allow_none=True, validate=validate.Length(max=64))
    district = Text(load_default=None, allow_none=True, validate=validate.Length(max=64))
    approved = fields.Boolean(load_default=True)


class DeploymentApprovalSchema(Schema):
    approved = fields.Boolean(required=True)
    school = Text(load_default=None, allow_none=True, validate=validate.Length(max=64))


class DeploymentSchema(Schema):
    id = fields.Integer()
    deployment_id = fields.String()
    school_id = fields.Integer(allow_none=True)
    district_id = fields.Integer(allow_none=True)
    approved = fields.Boolean()
    approved_at = UtcDateTime(allow_none=True)


class PlatformSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    issuer = fields.String()
    client_id = fields.String()
    auth_login_url = fields.String()
    auth_token_url = fields.String()
    key_set_url = fields.String()
    auth_audience = fields.String(allow_none=True)
    source = fields.String()
    active = fields.Boolean()
    deployments = fields.List(fields.Nested(DeploymentSchema))


class GradeArgsSchema(PageArgsSchema):
    status = fields.String(
        load_default=None, validate=validate.OneOf(["pending", "sent", "failed"])
    )


class GradeSchema(Schema):
    id = fields.Integer()
    status = fields.String()
    score_given = fields.Float()
    score_maximum = fields.Float()
    attempts = fields.Integer()
    next_attempt_at = UtcDateTime()
    last_error = fields.String(allow_none=True)
    created_at = UtcDateTime()
    sent_at = UtcDateTime(allow_none=True)
    lineitem_url = fields.String(attribute="link.lineitem_url")
    content_id = fields.String(attribute="link.content_id")


GradePageSchema = page_schema(GradeSchema, "LtiGradePageSchema")


class RosterSyncSchema(Schema):
    members = fields.Integer()
    added = fields.Integer()
    deactivated = fields.Integer()


class RegistrationLinkCreateSchema(Schema):
    district = Text(load_default=None, allow_none=True, validate=validate.Length(max=64))
    school = Text(load_default=None, allow_none=True, validate=validate.Length(max=64))
    hours = fields.Integer(load_default=72, validate=validate.Range(min=1, max=720))
    note = Text(load_default="", strip=True, validate=validate.Length(max=200))


class RegistrationLinkSchema(Schema):
    id = fields.Integer()
    district_id = fields.Integer()
    school_id = fields.Integer(allow_none=True)
    note = fields.String()
    created_at = fields.DateTime()
    expires_at = fields.DateTime()
    used_at = fields.DateTime(allow_none=True)
    deployment_id = fields.Integer(allow_none=True)


class NewRegistrationLinkSchema(Schema):
    link = fields.Nested(RegistrationLinkSchema)
    url = fields.String(metadata={"description": "The one-time link; shown only here."})
