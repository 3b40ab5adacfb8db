"""Marshmallow schemas of the sharing API (input and output kept apart)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.common.schemas import Text

_FACETS = ("type", "kind", "subject", "grade", "edition", "tag")
_Rules = fields.Dict(
    keys=fields.String(validate=validate.OneOf(_FACETS)),
    values=fields.List(
        Text(validate=validate.Length(min=1, max=50)), validate=validate.Length(max=50)
    ),
    allow_none=True,
)


class CatalogCreateSchema(Schema):
    district_id = fields.Integer(required=True)
    title = Text(required=True, strip=True, validate=validate.Length(min=1, max=200))
    description = Text(load_default="", validate=validate.Length(max=2000))
    rules = _Rules
    region_public = fields.Boolean(load_default=False)


class CatalogUpdateSchema(Schema):
    title = Text(strip=True, validate=validate.Length(min=1, max=200))
    description = Text(validate=validate.Length(max=2000))
    rules = _Rules
    region_public = fields.Boolean()


class ItemRefSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(("course", "resource")))
    content_id = Text(required=True, validate=validate.Length(min=1, max=36))


class CatalogItemsSchema(Schema):
    items = fields.List(
        fields.Nested(ItemRefSchema), required=True, validate=validate.Length(max=20000)
    )


class CatalogSchema(Schema):
    id = fields.Integer()
    uid = fields.String()
    district_id = fields.Integer()
    title = fields.String()
    description = fields.String()
    rules = fields.Dict(allow_none=True)
    region_public = fields.Boolean()
    items = fields.Method("_items")

    def _items(self, obj):
        return [{"type": e.item_type, "content_id": e.content_id} for e in obj.entries]


class RefusalSchema(Schema):
    item_type = fields.String()
    content_id = fields.String()
    title = fields.String()
    reason = fields.String()
    message = fields.String()


class PreviewSchema(Schema):
    item_count = fields.Method("_count")
    items = fields.Method("_items")
    refused = fields.List(fields.Nested(RefusalSchema))

    def _count(self, obj):
        return len(obj.manifest)

    def _items(self, obj):
        return sorted(obj.manifest)


class ReleaseCreateSchema(Schema):
    notes = Text(load_default="", validate=validate.Length(max=4000))
    allow_refusals = fields.Boolean(load_default=False)


class ReleaseSchema(Schema):
    number = fields.Integer()
    notes = fields.String()
    digest = fields.String()
    item_count = fields.Integer()
    created_at = fields.DateTime()


class ReleaseResultSchema(Schema):
    release = fields.Nested(ReleaseSchema)
    refused = fields.List(fields.Nested(RefusalSchema))


class WithdrawSchema(Schema):
    content_id = Text(required=True, validate=validate.Length(min=1, max=36))
    reason = Text(load_default="", validate=validate.Length(max=500))


class WithdrawalSchema(Schema):
    content_id = fields.String()
    title = fields.String()
    reason = fields.String()
    withdrawn_at = fields.DateTime()


class SubscribeSchema(Schema):
    district_id = fields.Integer(required=True)
    catalog_id = fields.Integer()
    origin = Text(validate=validate.Length(max=300))
    catalog_uid = Text(validate=validate.Length(max=36))
    filters = _Rules
    auto_accept = fields.Boolean(load_default=False)


class SubscriptionOptionsSchema(Schema):
    auto_accept = fields.Boolean()
    filters = _Rules


class DecisionSchema(Schema):
    approve = fields.Boolean(required=True)


class SubscriptionSchema(Schema):
    id = fields.Integer()
    subscriber_district_id = fields.Integer()
    catalog_id = fields.Integer(allow_none=True)
    remote_origin = fields.String(allow_none=True)
    remote_catalog_uid = fields.String(allow_none=True)
    remote_title = fields.String(allow_none=True)
    filters = fields.Dict(allow_none=True)
    status = fields.String()
    auto_accept = fields.Boolean()
    accepted_number = fields.Integer(allow_none=True)
    # Remote subscriptions: when the publisher acknowledged the request (None: not yet).
    remote_requested_at = fields.DateTime(allow_none=True)


class RemoteSubscriberSchema(Schema):
    id = fields.Integer()
    catalog_id = fields.Integer()
    origin = fields.String()
    district_name = fields.String()
    status = fields.String()


class FieldChangeSchema(Schema):
    name = fields.String()
    old = fields.Raw()
    new = fields.Raw()


class ItemChangeSchema(Schema):
    content_id = fields.String()
    item_type = fields.String()
    title = fields.String()
    old_version = fields.Integer(allow_none=True)
    new_version = fields.Integer(allow_none=True)
    status = fields.String()
    relicensed = fields.Boolean()
    moved = fields.Boolean()
    fields_ = fields.List(fields.Nested(FieldChangeSchema), data_key="fields", attribute="fields")


class DiffSchema(Schema):
    added = fields.List(fields.Nested(ItemChangeSchema))
    removed = fields.List(fields.Nested(ItemChangeSchema))
    changed = fields.List(fields.Nested(ItemChangeSchema))
    counts = fields.Method("_counts")

    def _counts(self, obj):
        return obj.counts()


class PendingSchema(Schema):
    number = fields.Integer(allow_none=True)
    notes = fields.String(allow_none=True)
    diff = fields.Nested(DiffSchema, allow_none=True)


class AcceptSchema(Schema):
    release = fields.Integer(required=True)
    items = fields.List(
        Text(validate=validate.Length(min=1, max=36)),
        load_default=None,
        validate=validate.Length(max=20000),
    )


class AcceptResultSchema(Schema):
    accepted = fields.List(fields.String())
    accepted_number = fields.Integer(allow_none=True)


class SyncResultSchema(Schema):
    status = fields.String()
    release_number = fields.Integer(allow_none=True)
    items = fields.Integer()


class UsageQuerySchema(Schema):
    days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=365))


class DistrictUsageSchema(Schema):
    """One subscriber district (federated ones carry their instance in the name)."""

    district = fields.String()
    launches = fields.Integer()
    completions = fields.Integer()
    average_score = fields.Float(allow_none=True)
    by_day = fields.Method("_by_day")

    def _by_day(self, obj) -> dict:
        return {day.isoformat(): n for day, n in sorted(obj.by_day.items())}
