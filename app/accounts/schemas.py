from marshmallow import Schema, fields, validate

from app.common.schemas import Text, UtcDateTime


class TokenCreateSchema(Schema):
    email = Text(required=True, strip=True, validate=[validate.Length(max=254), validate.Email()])
    password = Text(required=True, load_only=True, validate=validate.Length(max=200))
    name = Text(load_default="api", strip=True, validate=validate.Length(min=1, max=100))


class TokenSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    prefix = fields.String()
    created_at = UtcDateTime()
    expires_at = UtcDateTime(allow_none=True)
    last_used_at = UtcDateTime(allow_none=True)
    revoked_at = UtcDateTime(allow_none=True)


class TokenIssuedSchema(TokenSchema):
    token = fields.String(
        attribute="raw",
        metadata={"description": "Shown once; send as `Authorization: Bearer <token>`."},
    )


class OrganisationRefSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    name_en = fields.String(allow_none=True)


class UserSchema(Schema):
    id = fields.String(attribute="public_id")
    name = fields.String()
    email = fields.String(allow_none=True)
    roles = fields.Method("_roles")
    school = fields.Nested(OrganisationRefSchema, allow_none=True)
    district = fields.Nested(OrganisationRefSchema, allow_none=True)

    def _roles(self, user):
        return [
            {"role": str(a.role), "district_id": a.district_id, "school_id": a.school_id}
            for a in user.roles
        ]


class DistrictSchema(OrganisationRefSchema):
    region_id = fields.Integer()
    requires_review = fields.Boolean()


class DistrictUpdateSchema(Schema):
    requires_review = fields.Boolean(required=True)


class SchoolSchema(OrganisationRefSchema):
    district_id = fields.Integer()


class SchoolQuerySchema(Schema):
    district = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
