"""Validation of xAPI statements with our own marshmallow schemas.

Every MUST of the statement data model of xAPI 1.0.3 and 2.0 (IEEE 9274.1.1) that can be
checked on one statement is checked here; rules that need the store (voiding targets,
conflicting ids) live in :mod:`app.xapi.services`.  The version the client speaks
(``X-Experience-API-Version``) is read from :data:`SPEC_VERSION` where the two differ:

- 2.0 accepts ``context.contextAgents`` / ``context.contextGroups``; 1.0.3 refuses them as
  unknown properties;
- 2.0 timestamps follow RFC 3339 (an offset is required unless ``Z``);
  1.0.3 follows ISO 8601 (a missing offset is read as UTC).

Primitive values (IRIs, timestamps, ...) and their fields are in
:mod:`app.xapi.primitives`.  Rejections are marshmallow ``ValidationError``s whose
messages are keyed by property path, so the LRS can answer
"statement[0].actor.mbox: must be a mailto IRI".
"""

from __future__ import annotations

import re

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validates_schema

from app.common.schemas import UtcDateTime
from app.xapi import fastcheck, jsontext
from app.xapi.primitives import (  # noqa: F401 -- also this module's public names
    MIME,
    SHA1,
    SPEC_VERSION,
    Duration,
    Extensions,
    Integer,
    Iri,
    LanguageMap,
    Number,
    StrictBool,
    Text,
    Timestamp,
    Uuid,
    Version,
    format_timestamp,
    is_iri,
    is_language_tag,
    is_uuid,
    parse_timestamp,
)

VOIDED_VERB = "http://adlnet.gov/expapi/verbs/voided"
SIGNATURE_USAGE = "http://adlnet.gov/expapi/attachments/signature"
INTERACTION_TYPES = {
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
}
COMPONENT_LISTS = {"choices", "scale", "source", "target", "steps"}
ALLOWED_COMPONENTS = {
    "choice": {"choices"},
    "sequencing": {"choices"},
    "likert": {"scale"},
    "matching": {"source", "target"},
    "performance": {"steps"},
}

# --- fields that need the schemas ---------------------------------------------------------


class OneOrMany(fields.Field):
    """A context activity list: one Activity or an array of them."""

    def _deserialize(self, value, attr, data, **kwargs):
        items = value if isinstance(value, list) else [value]
        schema = _one(ActivitySchema)
        errors = {}
        for index, item in enumerate(items):
            try:
                schema.load(item)
            except ValidationError as exc:
                errors[index] = exc.messages
        if errors:
            raise ValidationError(errors)
        return value


class Nested(fields.Field):
    """Nested schema picked at load time (lets us choose by objectType and recurse)."""

    def __init__(self, schema_factory, many: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.schema_factory = schema_factory
        self.many = many

    def _deserialize(self, value, attr, data, **kwargs):
        if self.many:
            if not isinstance(value, list):
                raise ValidationError("must be an array.")
            errors = {}
            for index, item in enumerate(value):
                try:
                    self.schema_factory(item).load(item)
                except ValidationError as exc:
                    errors[index] = exc.messages
            if errors:
                raise ValidationError(errors)
            return value
        self.schema_factory(value).load(value)
        return value


# --- schemas -----------------------------------------------------------------------------

_INSTANCES: dict[type, Schema] = {}


def _one(schema_class):
    """One shared instance per schema class (loading is stateless; building is costly)."""
    instance = _INSTANCES.get(schema_class)
    if instance is None:
        instance = _INSTANCES[schema_class] = schema_class()
    return instance


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE

    @pre_load
    def _must_be_object(self, data, **kwargs):
        if not isinstance(data, dict):
            raise ValidationError("must be a JSON object.")
        return data


class AccountSchema(StrictSchema):
    homePage = Iri(required=True)
    name = Text(required=True)


def _check_mbox(value):
    if not isinstance(value, str) or not re.match(r"^mailto:[^@\s]+@[^@\s]+$", value):
        raise ValidationError('must be a "mailto:" IRI such as mailto:someone@example.org.')


def _check_sha1(value):
    if not isinstance(value, str) or not SHA1.match(value):
        raise ValidationError("must be a hex-encoded SHA-1 (40 characters).")


IFIS = ("mbox", "mbox_sha1sum", "openid", "account")


class _AgentBase(StrictSchema):
    objectType = Text()
    name = Text()
    mbox = fields.Raw(validate=_check_mbox)
    mbox_sha1sum = fields.Raw(validate=_check_sha1)
    openid = Iri()
    account = fields.Nested(AccountSchema)


class AgentSchema(_AgentBase):
    @validates_schema
    def _one_ifi(self, data, **kwargs):
        if data.get("objectType", "Agent") != "Agent":
            raise ValidationError('must be "Agent".', "objectType")
        present = [key for key in IFIS if key in data]
        if len(present) != 1:
            raise ValidationError(
                "an Agent must have exactly one inverse functional identifier "
                f"(mbox, mbox_sha1sum, openid, account); found {len(present)}.",
                "_schema",
            )


class GroupSchema(_AgentBase):
    member = fields.List(fields.Nested(AgentSchema))

    @validates_schema
    def _group_rules(self, data, **kwargs):
        if data.get("objectType") != "Group":
            raise ValidationError('must be "Group".', "objectType")
        present = [key for key in IFIS if key in data]
        if len(present) > 1:
            raise ValidationError(
                "a Group must have at most one inverse functional identifier.", "_schema"
            )
        if not present and not data.get("member"):
            raise ValidationError(
                "an anonymous Group (no identifier) must list its members.", "member"
            )


def actor_schema(value):
    if isinstance(value, dict) and value.get("objectType") == "Group":
        return _one(GroupSchema)
    return _one(AgentSchema)


class VerbSchema(StrictSchema):
    id = Iri(required=True)
    display = LanguageMap()


class InteractionComponentSchema(StrictSchema):
    id = Text(required=True)
    description = LanguageMap()


class ActivityDefinitionSchema(StrictSchema):
    name = LanguageMap()
    description = LanguageMap()
    type = Iri()
    moreInfo = Iri()
    extensions = Extensions()
    interactionType = Text()
    correctResponsesPattern = fields.List(Text())
    choices = fields.List(fields.Nested(InteractionComponentSchema))
    scale = fields.List(fields.Nested(InteractionComponentSchema))
    source = fields.List(fields.Nested(InteractionComponentSchema))
    target = fields.List(fields.Nested(InteractionComponentSchema))
    steps = fields.List(fields.Nested(InteractionComponentSchema))

    @validates_schema
    def _interaction(self, data, **kwargs):
        kind = data.get("interactionType")
        lists = COMPONENT_LISTS & set(data)
        if kind is None:
            if lists or "correctResponsesPattern" in data:
                raise ValidationError(
                    "interaction properties need an interactionType.", "interactionType"
                )
            return
        if kind not in INTERACTION_TYPES:
            raise ValidationError(
                f"must be one of {', '.join(sorted(INTERACTION_TYPES))}.", "interactionType"
            )
        allowed = ALLOWED_COMPONENTS.get(kind, set())
        extra = lists - allowed
        if extra:
            raise ValidationError(
                f"{', '.join(sorted(extra))} not allowed for interactionType {kind}.", "_schema"
            )
        for name in lists:
            ids = [c.get("id") for c in data[name]]
            if len(ids) != len(set(ids)):
                raise ValidationError("interaction component ids must be unique.", name)


class _TypedSchema(StrictSchema):
    """An object whose ``objectType`` must be ``OBJECT_TYPE``; where the specification
    lets it be left out (``TYPE_OPTIONAL``), a missing one means ``OBJECT_TYPE``."""

    OBJECT_TYPE: str
    TYPE_OPTIONAL = False

    @validates_schema
    def _type(self, data, **kwargs):
        given = data.get("objectType", self.OBJECT_TYPE if self.TYPE_OPTIONAL else None)
        if given != self.OBJECT_TYPE:
            raise ValidationError(f'must be "{self.OBJECT_TYPE}".', "objectType")


class ActivitySchema(_TypedSchema):
    OBJECT_TYPE = "Activity"
    TYPE_OPTIONAL = True
    objectType = Text()
    id = Iri(required=True)
    definition = fields.Nested(ActivityDefinitionSchema)


class StatementRefSchema(_TypedSchema):
    OBJECT_TYPE = "StatementRef"
    objectType = Text(required=True)
    id = Uuid(required=True)


class ScoreSchema(StrictSchema):
    scaled = Number()
    raw = Number()
    min = Number()
    max = Number()

    @validates_schema
    def _ranges(self, data, **kwargs):
        if "scaled" in data and not -1 <= data["scaled"] <= 1:
            raise ValidationError("must be between -1 and 1.", "scaled")
        low, high = data.get("min"), data.get("max")
        if low is not None and high is not None and low >= high:
            raise ValidationError("must be greater than min.", "max")
        if "raw" in data:
            if low is not None and data["raw"] < low:
                raise ValidationError("must not be less than min.", "raw")
            if high is not None and data["raw"] > high:
                raise ValidationError("must not be greater than max.", "raw")


class ResultSchema(StrictSchema):
    score = fields.Nested(ScoreSchema)
    success = StrictBool()
    completion = StrictBool()
    response = Text()
    duration = Duration()
    extensions = Extensions()


class ContextActivitiesSchema(StrictSchema):
    parent = OneOrMany()
    grouping = OneOrMany()
    category = OneOrMany()
    other = OneOrMany()


class _ContextMemberSchema(_TypedSchema):
    """An entry of ``context.contextAgents`` / ``context.contextGroups`` (xAPI 2.0)."""

    objectType = Text(required=True)
    relevantTypes = fields.List(Iri(), validate=lambda v: len(v) > 0 or _fail("must not be empty."))


class ContextAgentSchema(_ContextMemberSchema):
    OBJECT_TYPE = "contextAgent"
    agent = Nested(lambda v: _one(AgentSchema), required=True)


class ContextGroupSchema(_ContextMemberSchema):
    OBJECT_TYPE = "contextGroup"
    group = Nested(lambda v: _one(GroupSchema), required=True)


def _fail(message):
    raise ValidationError(message)


class ContextSchema(StrictSchema):
    registration = Uuid()
    instructor = Nested(actor_schema)
    team = Nested(lambda v: _one(GroupSchema))
    contextActivities = fields.Nested(ContextActivitiesSchema)
    revision = Text()
    platform = Text()
    language = fields.Raw(
        validate=lambda v: is_language_tag(v) or _fail("must be an RFC 5646 language tag.")
    )
    statement = fields.Nested(StatementRefSchema)
    extensions = Extensions()
    contextAgents = Nested(lambda v: _one(ContextAgentSchema), many=True)
    contextGroups = Nested(lambda v: _one(ContextGroupSchema), many=True)

    @pre_load
    def _version_properties(self, data, **kwargs):
        if isinstance(data, dict) and SPEC_VERSION.get().startswith("1"):
            for key in ("contextAgents", "contextGroups"):
                if key in data:
                    raise ValidationError(
                        {key: ["is not a property of xAPI 1.0.3 (it is new in 2.0)."]}
                    )
        return data


class AttachmentSchema(StrictSchema):
    usageType = Iri(required=True)
    display = LanguageMap(required=True)
    description = LanguageMap()
    contentType = fields.Raw(
        required=True,
        validate=lambda v: (
            (isinstance(v, str) and bool(MIME.match(v)))
            or _fail("must be an Internet media type such as image/png.")
        ),
    )
    length = Integer(required=True)
    sha2 = fields.Raw(
        required=True,
        validate=lambda v: (
            (isinstance(v, str) and bool(re.match(r"^[0-9a-fA-F]{56,128}$", v)))
            or _fail("must be a hex SHA-2 hash of the attachment.")
        ),
    )
    fileUrl = Iri()


def object_schema(value, sub: bool = False):
    kind = value.get("objectType", "Activity") if isinstance(value, dict) else "Activity"
    if kind == "Activity":
        return _one(ActivitySchema)
    if kind == "Agent":
        return _one(AgentSchema)
    if kind == "Group":
        return _one(GroupSchema)
    if kind == "StatementRef":
        return _one(StatementRefSchema)
    if kind == "SubStatement" and not sub:
        return _one(SubStatementSchema)
    return _BadObjectType(kind, sub)


class _BadObjectType:
    def __init__(self, kind, sub):
        self.kind, self.sub = kind, sub

    def load(self, value):
        if self.kind == "SubStatement":
            raise ValidationError(
                {"objectType": ["a SubStatement must not contain a SubStatement."]}
            )
        raise ValidationError(
            {
                "objectType": [
                    f"{self.kind!r} is not Activity, Agent, Group, StatementRef or SubStatement."
                ]
            }
        )


class _StatementBase(StrictSchema):
    actor = Nested(actor_schema, required=True)
    verb = fields.Nested(VerbSchema, required=True)
    result = fields.Nested(ResultSchema)
    context = fields.Nested(ContextSchema)
    timestamp = Timestamp()
    attachments = fields.List(fields.Nested(AttachmentSchema))

    @validates_schema
    def _context_rules(self, data, **kwargs):
        context = data.get("context") or {}
        obj = data.get("object") or {}
        if isinstance(obj, dict) and obj.get("objectType", "Activity") != "Activity":
            for key in ("revision", "platform"):
                if key in context:
                    raise ValidationError(
                        {key: ["only allowed when the object is an Activity."]}, "context"
                    )


class SubStatementSchema(_StatementBase):
    objectType = Text(required=True)
    object = Nested(lambda v: object_schema(v, sub=True), required=True)


class StatementSchema(_StatementBase):
    id = Uuid()
    objectType = fields.Raw()
    object = Nested(object_schema, required=True)
    stored = Timestamp()
    authority = Nested(actor_schema)
    version = Version()

    @validates_schema
    def _statement_rules(self, data, **kwargs):
        if "objectType" in data:
            raise ValidationError("a Statement has no objectType.", "objectType")
        verb = data.get("verb") or {}
        if verb.get("id") == VOIDED_VERB:
            obj = data.get("object") or {}
            if not isinstance(obj, dict) or obj.get("objectType") != "StatementRef":
                raise ValidationError(
                    "a voiding statement's object must be a StatementRef.", "object"
                )
        authority = data.get("authority")
        if isinstance(authority, dict) and authority.get("objectType") == "Group":
            members = authority.get("member") or []
            if any(key in authority for key in IFIS):
                raise ValidationError(
                    "a Group authority must be anonymous (OAuth consumer and user as members).",
                    "authority",
                )
            if len(members) != 2:
                raise ValidationError(
                    "a Group authority must have exactly two members (OAuth consumer and user).",
                    "authority",
                )


_STATEMENT_SCHEMA = StatementSchema()


_JSON_REASONS = {
    "number": "NaN and Infinity (or a number too large for a double) are not JSON numbers.",
    "surrogate": "contains a lone UTF-16 surrogate; strings must be valid Unicode.",
    "depth": "is nested too deeply.",
}


def validate_statement(
    statement,
    version: str = "2.0.0",
    max_depth: int = jsontext.DEFAULT_MAX_DEPTH,
    json_checked: bool = False,
) -> None:
    """Raise ValidationError (messages keyed by property) if ``statement`` breaks a MUST.

    ``json_checked``: the statement was read by :func:`jsontext.loads` with the same
    depth limit, so the JSON-level checks already ran (they are a third of a batch's
    validation time; issue 14)."""
    if not json_checked:
        try:
            jsontext.check(statement, max_depth)
        except jsontext.JsonRejected as exc:
            where = exc.path.removeprefix("$").lstrip(".") or "_schema"
            raise ValidationError({where: [_JSON_REASONS.get(exc.kind, str(exc))]}) from None
    if fastcheck.valid(statement, version):
        # Certainly valid (the common shapes, checked in plain Python); anything else,
        # and every rejection with its message, is the schema's (issue 14).
        return
    token = SPEC_VERSION.set(version)
    try:
        _STATEMENT_SCHEMA.load(statement)
        obj = statement.get("object")
        if isinstance(obj, dict) and obj.get("objectType") == "SubStatement":
            for key in ("id", "stored", "version", "authority"):
                if key in obj:
                    raise ValidationError({"object": {key: ["is not allowed in a SubStatement."]}})
    finally:
        SPEC_VERSION.reset(token)


def flatten_errors(messages, prefix: str = "") -> dict[str, list[str]]:
    """{"actor": {"mbox": ["..."]}} -> {"actor.mbox": ["..."]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = (
                prefix
                if key == "_schema"
                else (
                    f"{prefix}[{key}]"
                    if isinstance(key, int)
                    else (f"{prefix}.{key}" if prefix else str(key))
                )
            )
            for sub_key, sub_value in flatten_errors(value, name).items():
                flat.setdefault(sub_key, []).extend(sub_value)
    elif isinstance(messages, list):
        if all(isinstance(item, str) for item in messages):
            flat[prefix or "statement"] = list(messages)
        else:
            for item in messages:
                for sub_key, sub_value in flatten_errors(item, prefix).items():
                    flat.setdefault(sub_key, []).extend(sub_value)
    else:
        flat[prefix or "statement"] = [str(messages)]
    return flat


def describe_errors(flat: dict[str, list[str]]) -> str:
    parts = [f"{key}: {' '.join(value)}" for key, value in flat.items()]
    return "; ".join(parts)


# --- output schemas (for the API docs and the management endpoints) ---------------------


class ClientOutSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    key = fields.String()
    scopes = fields.List(fields.String())
    district_id = fields.Integer(allow_none=True)
    school_id = fields.Integer(allow_none=True)
    created_at = UtcDateTime()
    revoked_at = UtcDateTime(allow_none=True)


class ClientCreatedSchema(ClientOutSchema):
    secret = fields.String()


class ClientInSchema(Schema):
    name = fields.String(required=True, validate=lambda v: bool(v.strip()) or _fail("required"))
    district_id = fields.Integer(required=True)
    scopes = fields.List(fields.String(), required=True)
    school_id = fields.Integer(allow_none=True)
