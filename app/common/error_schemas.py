"""The error envelope of the API as a schema, for the OpenAPI document.

Its own module, importing only marshmallow, because app/extensions.py needs it and
everything else imports app/extensions.py.
"""

from marshmallow import Schema, fields


class ErrorBodySchema(Schema):
    code = fields.String(
        required=True, metadata={"description": "Stable machine-readable code, e.g. `not_found`."}
    )
    message = fields.String(
        required=True, metadata={"description": "In the language the request asked for."}
    )
    fields_ = fields.Dict(
        data_key="fields",
        metadata={"description": "Problems per input field (validation errors only)."},
    )


class ErrorSchema(Schema):
    """The envelope of every error response of the API (see app/errors.py)."""

    error = fields.Nested(ErrorBodySchema, required=True)
