"""Sharing API under /api/v1/sharing: catalogs, releases, subscriptions, diffs, sync.

No handler commits: the framework commits once per successful request.
"""

from __future__ import annotations

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from app.accounts.auth import actor
from app.common.transaction import keep_on_error
from app.errors import Invalid, Unauthorized, require_json_body
from app.sharing import schemas
from app.sharing.models import Subscription
from app.sharing.services import catalogs, federation, subscriptions
from app.sharing.services.keys import FederationRefused

blp = Blueprint(
    "sharing_api",
    __name__,
    url_prefix="/api/v1/sharing",
    description="Shared catalogs, releases, subscriptions and federation",
)
blp.before_request(require_json_body)


def _user():
    user = actor()
    if user is None:
        raise Unauthorized("Log in or send a bearer token.")
    return user


def _own_catalog(catalog_id: int):
    user = _user()
    catalog = catalogs.get_catalog(catalog_id)
    catalogs.require_admin_of(user, catalog.district_id)
    return user, catalog


@blp.route("/catalogs")
class Catalogs(MethodView):
    @blp.response(200, schemas.CatalogSchema(many=True))
    def get(self):
        """Catalogs of the districts you administer."""
        return catalogs.catalogs_of(_user())

    @blp.arguments(schemas.CatalogCreateSchema)
    @blp.response(201, schemas.CatalogSchema)
    def post(self, data):
        """Create a catalog for your district (items by hand and/or by rule)."""
        return catalogs.create_catalog(_user(), data["district_id"], data)


@blp.route("/catalogs/<int:catalog_id>")
class CatalogOne(MethodView):
    @blp.response(200, schemas.CatalogSchema)
    def get(self, catalog_id):
        """One catalog."""
        return _own_catalog(catalog_id)[1]

    @blp.arguments(schemas.CatalogUpdateSchema)
    @blp.response(200, schemas.CatalogSchema)
    def patch(self, data, catalog_id):
        """Change title, description, rules or region-public flag."""
        user, catalog = _own_catalog(catalog_id)
        return catalogs.update_catalog(user, catalog, data)


@blp.route("/catalogs/<int:catalog_id>/items", methods=["PUT"])
@blp.arguments(schemas.CatalogItemsSchema)
@blp.response(200, schemas.CatalogSchema)
def put_items(data, catalog_id):
    """Replace the hand-picked items."""
    user, catalog = _own_catalog(catalog_id)
    return catalogs.set_entries(
        user, catalog, [(i["type"], i["content_id"]) for i in data["items"]]
    )


@blp.route("/catalogs/<int:catalog_id>/preview")
@blp.response(200, schemas.PreviewSchema)
def preview(catalog_id):
    """What a release made now would contain, and what the licence check refuses."""
    user, catalog = _own_catalog(catalog_id)
    return catalogs.preview(user, catalog)


@blp.route("/catalogs/<int:catalog_id>/releases")
class Releases(MethodView):
    @blp.response(200, schemas.ReleaseSchema(many=True))
    def get(self, catalog_id):
        """Releases, newest first."""
        return catalogs.list_releases(_own_catalog(catalog_id)[1])

    @blp.arguments(schemas.ReleaseCreateSchema)
    @blp.response(201, schemas.ReleaseResultSchema)
    def post(self, data, catalog_id):
        """Release the catalog as the next numbered version.  Items whose licence or
        owner does not allow sharing stop the release (409, named in ``fields``) unless
        ``allow_refusals`` leaves them out."""
        user, catalog = _own_catalog(catalog_id)
        release, refused = catalogs.publish_release(
            user, catalog, data["notes"], data["allow_refusals"]
        )
        return {"release": release, "refused": refused}


@blp.route("/catalogs/<int:catalog_id>/withdrawals")
class Withdrawals(MethodView):
    @blp.response(200, schemas.WithdrawalSchema(many=True))
    def get(self, catalog_id):
        """Items withdrawn from the catalog."""
        return catalogs.withdrawn_items(_own_catalog(catalog_id)[1])

    @blp.arguments(schemas.WithdrawSchema)
    @blp.response(201, schemas.WithdrawalSchema)
    def post(self, data, catalog_id):
        """Withdraw an item now from every subscriber."""
        user, catalog = _own_catalog(catalog_id)
        return catalogs.withdraw_item(user, catalog, data["content_id"], data["reason"])


@blp.route("/catalogs/<int:catalog_id>/requests")
@blp.response(200, schemas.SubscriptionSchema(many=True))
def requests_for(catalog_id):
    """Subscriptions of other districts of this instance to the catalog."""
    user, catalog = _own_catalog(catalog_id)
    return subscriptions.requests_for(user, catalog)


@blp.route("/catalogs/<int:catalog_id>/usage")
@blp.arguments(schemas.UsageQuerySchema, location="query")
@blp.response(200, schemas.DistrictUsageSchema(many=True))
def catalog_usage(args, catalog_id):
    """Launches, completions, average score and launches per day of the catalog's items
    by subscriber district, federated subscribers included (counts only)."""
    _, catalog = _own_catalog(catalog_id)
    from app.sharing.services import usage

    return usage.usage_for_catalog(catalog.id, args["days"])


@blp.route("/catalogs/<int:catalog_id>/remote-requests")
@blp.response(200, schemas.RemoteSubscriberSchema(many=True))
def remote_requests(catalog_id):
    """Subscription requests from other instances."""
    user, catalog = _own_catalog(catalog_id)
    return federation.remote_requests(user, catalog)


@blp.route("/remote-requests/<int:row_id>/decision", methods=["POST"])
@blp.arguments(schemas.DecisionSchema)
@blp.response(200, schemas.RemoteSubscriberSchema)
def decide_remote(data, row_id):
    """Approve or reject another instance's subscription request."""
    return federation.decide_remote(_user(), row_id, data["approve"])


@blp.route("/subscriptions")
class Subscriptions(MethodView):
    @blp.response(200, schemas.SubscriptionSchema(many=True))
    def get(self):
        """Subscriptions of the districts you administer."""
        return subscriptions.subscriptions_of(_user())

    @blp.arguments(schemas.SubscribeSchema)
    @blp.response(201, schemas.SubscriptionSchema)
    def post(self, data):
        """Subscribe to a catalog of this instance (``catalog_id``) or of an allowed
        remote instance (``origin`` + ``catalog_uid``)."""
        user = _user()
        if data.get("catalog_id") is not None:
            catalog = catalogs.get_catalog(data["catalog_id"])
            return subscriptions.subscribe(
                user, data["district_id"], catalog, data.get("filters"), data["auto_accept"]
            )
        if data.get("origin") and data.get("catalog_uid"):
            return federation.request_remote(
                user,
                data["district_id"],
                data["origin"],
                data["catalog_uid"],
                data.get("filters"),
                data["auto_accept"],
            )
        raise Invalid("Give catalog_id, or origin and catalog_uid.")


def _subscription(subscription_id: int) -> tuple:
    user = _user()
    return user, subscriptions.get_subscription(user, subscription_id)


@blp.route("/subscriptions/<int:subscription_id>")
class SubscriptionOne(MethodView):
    @blp.response(200, schemas.SubscriptionSchema)
    def get(self, subscription_id):
        """One subscription."""
        return _subscription(subscription_id)[1]

    @blp.arguments(schemas.SubscriptionOptionsSchema)
    @blp.response(200, schemas.SubscriptionSchema)
    def patch(self, data, subscription_id):
        """Set auto-accept or change the filters."""
        user, sub = _subscription(subscription_id)
        return subscriptions.set_options(
            user, sub, data.get("auto_accept"), data.get("filters", ...)
        )


@blp.route("/subscriptions/<int:subscription_id>/decision", methods=["POST"])
@blp.arguments(schemas.DecisionSchema)
@blp.response(200, schemas.SubscriptionSchema)
def decide(data, subscription_id):
    """The publishing district approves or rejects a subscription request."""
    from app.extensions import db

    user = _user()
    sub = db.session.get(Subscription, subscription_id)
    if sub is None:
        from app.errors import NotFound

        raise NotFound("Subscription not found.")
    return subscriptions.decide(user, sub, data["approve"])


@blp.route("/subscriptions/<int:subscription_id>/pending")
@blp.response(200, schemas.PendingSchema)
def pending(subscription_id):
    """The newest release not yet accepted, with its field-level diff."""
    user, sub = _subscription(subscription_id)
    found = subscriptions.pending(user, sub)
    return found or {"number": None, "notes": None, "diff": None}


@blp.route("/subscriptions/<int:subscription_id>/accept", methods=["POST"])
@blp.arguments(schemas.AcceptSchema)
@blp.response(200, schemas.AcceptResultSchema)
def accept(data, subscription_id):
    """Accept the pending release in full, or only the listed items."""
    user, sub = _subscription(subscription_id)
    taken = subscriptions.accept(user, sub, data["release"], data.get("items"))
    return {"accepted": taken, "accepted_number": sub.accepted_number}


@blp.route("/subscriptions/<int:subscription_id>/sync", methods=["POST"])
@blp.response(200, schemas.SyncResultSchema)
def sync(subscription_id):
    """Fetch the newest release of a remote catalog now (checked before anything is
    stored; a refused feed is logged with its reason and changes nothing else)."""
    user, sub = _subscription(subscription_id)
    catalogs.require_admin_of(user, sub.subscriber_district_id)
    try:
        return federation.sync(sub)
    except FederationRefused as exc:
        # Answered here rather than raised: the error handler would roll back the sync
        # log entry, and the refusal must stay on record (nothing else was written).
        keep_on_error()
        response = jsonify(
            {"error": {"code": "feed_refused", "message": f"The feed was refused: {exc.reason}"}}
        )
        response.status_code = 409
        return response


_CARTRIDGE_DOC = {
    "responses": {
        "200": {
            "description": "The .imscc file (a zip).",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


def _imscc(body: bytes, filename: str):
    from flask import Response

    return Response(
        body,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@blp.route("/cartridge/courses/<content_id>")
@blp.doc(**_CARTRIDGE_DOC)
def course_cartridge(content_id):
    """Common Cartridge 1.3 (Thin) of a course you may read (LTI 1.3 links, web links
    where licences allow)."""
    from app.sharing.services import cartridge

    return _imscc(cartridge.export_course(_user(), content_id), f"{content_id}.imscc")


@blp.route("/cartridge/calendars/<int:calendar_id>/weeks/<int:week>")
@blp.doc(**_CARTRIDGE_DOC)
def week_cartridge(calendar_id, week):
    """Common Cartridge 1.3 (Thin) of one week of a teaching calendar you may read: the
    week's lessons and the resources aligned to them."""
    from app.sharing.services import cartridge

    exported = cartridge.export_week(_user(), calendar_id, week)
    return _imscc(exported.body, exported.filename)
