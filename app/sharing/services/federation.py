"""Federation between instances: the signed, paged feed (publisher) and sync
(subscriber).

Nothing from a feed is stored until the whole release has been fetched and checked:
every page's signature, the origin and catalog it names, page numbering (a page served
twice or out of order is a cycle), sizes, every item's fields against their types and
their hash, the release hash over all items, and the release number (an older or
re-written release is a replay).  Then it is written in one savepoint — all or nothing.
Each attempt is logged in ``sharing_sync_log`` with the reason for a refusal.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import requests
from blinker import Namespace
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import District, User
from app.common.events import send_after_commit
from app.common.models import utcnow
from app.common.transaction import savepoint
from app.errors import Conflict, Forbidden, NotFound
from app.extensions import db
from app.sharing.models import (
    Release,
    RemoteRelease,
    RemoteSubscriber,
    SharedCatalog,
    SubscribedItem,
    Subscription,
    SubscriptionStatus,
    SyncLog,
)
from app.sharing.services import keys
from app.sharing.services import manifest as manifests
from app.sharing.services.catalogs import (
    catalog_by_uid,
    clean_rules,
    publisher_label,
    require_admin_of,
    require_approved_peer,
    withdrawn_ids,
)
from app.sharing.services.keys import FederationRefused
from app.sharing.services.subscriptions import _manifest, newest_remote_release

log = logging.getLogger(__name__)

FEED_PATH = "/sharing/federation/catalogs/{uid}/feed"
SUBSCRIBE_PATH = "/sharing/federation/subscribe"
_FEED_KEYS = {"origin", "catalog", "release", "withdrawn", "page", "pages", "items"}


# --- publisher ------------------------------------------------------------------------------


def receive_request(origin: str, data) -> RemoteSubscriber:
    """A verified peer asks for one of our catalogs on behalf of one of its districts."""
    if not isinstance(data, dict):
        raise FederationRefused("request body must be an object")
    uid, request_id, district = data.get("catalog"), data.get("request_id"), data.get("district")
    if not (
        isinstance(request_id, str)
        and manifests.CONTENT_ID.match(request_id)
        and isinstance(district, str)
        and 0 < len(district) <= 200
    ):
        raise FederationRefused("request_id and district are required")
    catalog = catalog_by_uid(uid)
    row = db.session.execute(
        select(RemoteSubscriber).filter_by(origin=origin, request_id=request_id)
    ).scalar_one_or_none()
    if row is None:
        row = RemoteSubscriber(
            catalog_id=catalog.id,
            origin=origin,
            request_id=request_id,
            district_name=district,
            status=SubscriptionStatus.PENDING,
        )
        try:
            with savepoint():
                db.session.add(row)
                db.session.flush()
        except IntegrityError:  # the same request delivered twice at once
            row = db.session.execute(
                select(RemoteSubscriber).filter_by(origin=origin, request_id=request_id)
            ).scalar_one()
    return row


def remote_requests(user: User | None, catalog: SharedCatalog) -> list[RemoteSubscriber]:
    require_admin_of(user, catalog.district_id)
    return list(
        db.session.execute(
            select(RemoteSubscriber).filter_by(catalog_id=catalog.id).order_by(RemoteSubscriber.id)
        ).scalars()
    )


def decide_remote(user: User | None, row_id: int, approve: bool) -> RemoteSubscriber:
    row = db.session.get(RemoteSubscriber, row_id) if isinstance(row_id, int) else None
    if row is None:
        raise NotFound("Request not found.")
    require_admin_of(user, row.catalog.district_id)
    row.status = SubscriptionStatus.ACTIVE if approve else SubscriptionStatus.REJECTED
    db.session.flush()
    return row


@dataclass
class FeedPage:
    body: bytes
    etag: str
    status: int = 200


def feed_page(origin: str, uid: str, release_number, page) -> FeedPage:
    """One page of a catalog's feed for a verified peer with an approved request."""
    catalog = catalog_by_uid(uid)
    require_approved_peer(origin, catalog)
    statement = (
        select(Release.id, Release.number, Release.notes, Release.digest, Release.item_count)
        .where(Release.catalog_id == catalog.id)
        .order_by(Release.number.desc())
        .limit(1)
    )
    if release_number not in (None, ""):
        try:
            statement = statement.where(Release.number == int(release_number))
        except ValueError:
            raise NotFound("Release not found.") from None
    release = db.session.execute(statement).first()
    if release is None and release_number not in (None, ""):
        raise NotFound("Release not found.")
    # Every page of a release reads the same immutable manifest: decode it once.
    manifest = _manifest(Release, release.id, release.digest) if release else {}
    try:
        page = max(1, int(page or 1))
    except ValueError:
        page = 1
    size = current_app.config["SHARING_PAGE_SIZE"]
    ids = sorted(manifest)
    pages = max(1, -(-len(ids) // size))
    if page > pages:
        raise NotFound("Page not found.")
    withdrawn = sorted(withdrawn_ids(catalog.id))
    body = {
        "origin": keys.own_origin(),
        "catalog": {
            "uid": catalog.uid,
            "title": catalog.title,
            "publisher": publisher_label(catalog.district),
        },
        "release": None
        if release is None
        else {
            "number": release.number,
            "notes": release.notes,
            "digest": release.digest,
            "item_count": release.item_count,
        },
        "withdrawn": withdrawn,
        "page": page,
        "pages": pages,
        "items": {cid: manifest[cid] for cid in ids[(page - 1) * size : page * size]},
    }
    raw = manifests.canonical(body)
    tag = hashlib.sha256(
        f"{release.digest if release else '-'}|{','.join(withdrawn)}|{page}".encode()
    ).hexdigest()[:40]
    return FeedPage(raw, f'"{tag}"')


# --- subscriber -----------------------------------------------------------------------------


def request_remote(
    user: User | None,
    district_id: int,
    origin: str,
    catalog_uid: str,
    filters: dict | None = None,
    auto_accept: bool = False,
) -> Subscription:
    """Ask a peer instance for one of its catalogs (its district admin approves)."""
    require_admin_of(user, district_id)
    keys.ensure_key()
    district = db.session.get(District, district_id)
    if district is None:
        raise NotFound("District not found.")
    try:
        origin = keys.allowed_origin(origin)
    except FederationRefused as exc:
        raise Forbidden("That instance is not on this instance's allow-list.") from exc
    if not isinstance(catalog_uid, str) or not manifests.CONTENT_ID.match(catalog_uid):
        raise NotFound("Catalog not found.")
    existing = db.session.execute(
        select(Subscription).filter_by(
            subscriber_district_id=district_id,
            remote_origin=origin,
            remote_catalog_uid=catalog_uid,
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict("The district already subscribes to this catalog.")
    sub = Subscription(
        subscriber_district_id=district_id,
        remote_origin=origin,
        remote_catalog_uid=catalog_uid,
        filters=clean_rules(filters),
        auto_accept=bool(auto_accept),
        status=SubscriptionStatus.PENDING,
        requested_by_id=user.id,
    )
    db.session.add(sub)
    db.session.flush()
    # Sent by a job once this request has committed and answered, never from inside it:
    # the publisher verifies the request by reading our keys from our well-known URL, so
    # a synchronous call would need a second free worker here (and hang without one).
    send_after_commit(request_ready, subscription_id=sub.id)
    return sub


# Local to sharing: "a remote subscription request waits to be delivered" (after commit).
request_ready = Namespace().signal("sharing-remote-request-ready")


def deliver_request(subscription_id: int) -> str:
    """Job: send a pending remote subscription request to its publisher.  Safe to repeat
    (the publisher keys requests by origin and request id).  Returns what happened."""
    sub = db.session.get(Subscription, subscription_id)
    if sub is None or sub.remote_origin is None or sub.remote_requested_at is not None:
        return "nothing to do"
    if sub.status != SubscriptionStatus.PENDING:
        return "not pending"
    keys.ensure_key()
    district = db.session.get(District, sub.subscriber_district_id)
    body = manifests.canonical(
        {
            "catalog": sub.remote_catalog_uid,
            "request_id": sub.remote_request_id,
            "district": district.name,
        }
    )

    def logged(ok: bool, message: str) -> str:
        db.session.add(SyncLog(subscription_id=sub.id, ok=ok, message=message[:1000]))
        db.session.flush()
        if not ok:
            log.warning("sharing: request of subscription %s: %s", sub.id, message)
        return message

    try:
        keys.allowed_origin(sub.remote_origin)
        response = _send("POST", sub.remote_origin + SUBSCRIBE_PATH, body)
    except FederationRefused as exc:
        return logged(False, f"request not delivered: {exc.reason}")
    if response.status_code == 404:
        sub.status = SubscriptionStatus.REJECTED
        return logged(False, "request refused: the remote instance has no such catalog")
    if response.status_code >= 400:
        return logged(
            False, f"request not delivered: the remote instance answered {response.status_code}"
        )
    sub.remote_requested_at = utcnow()
    return logged(True, "request delivered; waiting for the publishing district's approval")


def _send(method: str, url: str, body: bytes = b"", headers: dict | None = None):
    prepared = requests.Request(
        method,
        url,
        data=body or None,
        headers={"Content-Type": "application/json", **(headers or {})},
    ).prepare()
    keys.sign_request(prepared, body)
    limit = current_app.config["SHARING_MAX_PAGE_BYTES"]
    try:
        with requests.Session() as session:
            response = session.send(prepared, timeout=30, allow_redirects=False, stream=True)
            data = response.raw.read(limit + 1, decode_content=True)
    except requests.RequestException as exc:
        raise FederationRefused(f"connection failed: {type(exc).__name__}") from None
    if len(data) > limit:
        raise FederationRefused(f"page larger than {limit} bytes")
    response._content = data
    return response


@dataclass
class SyncResult:
    status: str  # pending | up_to_date | synced
    release_number: int | None = None
    items: int = 0


def _refuse(subscription: Subscription, reason: str, number: int | None = None) -> None:
    log.warning(
        "sharing: refused feed of %s for subscription %s: %s",
        subscription.remote_origin,
        subscription.id,
        reason,
    )
    db.session.add(
        SyncLog(
            subscription_id=subscription.id, ok=False, message=reason[:1000], release_number=number
        )
    )
    db.session.flush()
    raise FederationRefused(reason)


def _parse_page(subscription: Subscription, response, expect_page: int) -> dict:
    try:
        keys.verify_response(response, subscription.remote_origin)
    except FederationRefused as exc:
        _refuse(subscription, exc.reason)
    if response.headers.get("Content-Type", "").split(";")[0] != "application/json":
        _refuse(subscription, "feed is not JSON")
    try:
        data = json.loads(response.content)
    except ValueError:
        _refuse(subscription, "feed is not valid JSON")
    if not isinstance(data, dict) or set(data) != _FEED_KEYS:
        _refuse(subscription, "feed page has unknown or missing fields")
    if keys.normalise_origin(str(data["origin"])) != subscription.remote_origin:
        _refuse(subscription, "feed names another origin")
    catalog = data["catalog"]
    if not isinstance(catalog, dict) or catalog.get("uid") != subscription.remote_catalog_uid:
        _refuse(subscription, "feed names another catalog")
    if data["page"] != expect_page:
        _refuse(subscription, "feed pages out of order (cycle)")
    pages = data["pages"]
    if not isinstance(pages, int) or isinstance(pages, bool) or pages < 1:
        _refuse(subscription, "bad page count")
    if pages > current_app.config["SHARING_MAX_PAGES"]:
        _refuse(subscription, "too many pages")
    if not isinstance(data["items"], dict) or not isinstance(data["withdrawn"], list):
        _refuse(subscription, "items must be an object and withdrawn a list")
    if not all(isinstance(c, str) and manifests.CONTENT_ID.match(c) for c in data["withdrawn"]):
        _refuse(subscription, "bad withdrawn id")
    return data


def _check_release_block(subscription: Subscription, release) -> dict:
    if not isinstance(release, dict) or set(release) != {
        "number",
        "notes",
        "digest",
        "item_count",
    }:
        _refuse(subscription, "bad release block")
    number, count = release["number"], release["item_count"]
    for value in (number, count):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**31:
            _refuse(subscription, "bad release number or count")
    if not isinstance(release["notes"], str) or len(release["notes"]) > 4000:
        _refuse(subscription, "bad release notes")
    if not isinstance(release["digest"], str) or not manifests.DIGEST.match(release["digest"]):
        _refuse(subscription, "bad release digest")
    return release


def sync(subscription: Subscription) -> SyncResult:
    """Fetch the newest release of a remote catalog, check all of it, store it."""
    keys.ensure_key()
    if subscription.remote_origin is None:
        raise Conflict("Only remote subscriptions are synced.")
    if subscription.status in (SubscriptionStatus.REJECTED, SubscriptionStatus.CANCELLED):
        raise Conflict("The subscription is not active.")
    try:
        keys.allowed_origin(subscription.remote_origin)
    except FederationRefused as exc:
        _refuse(subscription, exc.reason)
    base = subscription.remote_origin + FEED_PATH.format(uid=subscription.remote_catalog_uid)
    newest = newest_remote_release(subscription.id)
    headers = {"If-None-Match": subscription.remote_etag} if subscription.remote_etag else {}
    try:
        first = _send("GET", base + "?page=1", headers=headers)
    except FederationRefused as exc:
        _refuse(subscription, exc.reason)
    if first.status_code == 304:
        return SyncResult("up_to_date", newest.number if newest else None)
    if first.status_code == 403:
        if subscription.remote_requested_at is None:
            # Never delivered (publisher unreachable then): try again, off this request.
            send_after_commit(request_ready, subscription_id=subscription.id)
        return SyncResult("pending")
    if first.status_code != 200:
        _refuse(subscription, f"feed answered {first.status_code}")
    data = _parse_page(subscription, first, 1)
    if data["release"] is None:
        _apply_withdrawals(subscription, data["withdrawn"])
        subscription.status = SubscriptionStatus.ACTIVE
        return SyncResult("synced")
    release = _check_release_block(subscription, data["release"])
    number = release["number"]
    if newest is not None and number < newest.number:
        _refuse(subscription, f"replayed old release {number} (have {newest.number})", number)
    if newest is not None and number == newest.number:
        if release["digest"] != newest.digest:
            _refuse(subscription, f"release {number} was rewritten after publication", number)
        _apply_withdrawals(subscription, data["withdrawn"])
        subscription.status = SubscriptionStatus.ACTIVE
        subscription.remote_etag = first.headers.get("ETag", "")[:100] or None
        return SyncResult("up_to_date", number)
    manifest: dict = {}
    pages = [data]
    for page in range(2, data["pages"] + 1):
        try:
            response = _send("GET", f"{base}?release={number}&page={page}")
        except FederationRefused as exc:
            _refuse(subscription, exc.reason, number)
        if response.status_code != 200:
            _refuse(subscription, f"feed page {page} answered {response.status_code}", number)
        following = _parse_page(subscription, response, page)
        if following["release"] != release or following["pages"] != data["pages"]:
            _refuse(subscription, "pages of one release disagree", number)
        pages.append(following)
    for page_data in pages:
        for content_id, entry in page_data["items"].items():
            if content_id in manifest:
                _refuse(subscription, f"item {content_id} served twice (cycle)", number)
            problem = manifests.check_entry(content_id, entry)
            if problem:
                _refuse(subscription, f"item {str(content_id)[:40]}: {problem}", number)
            manifest[content_id] = entry
    if len(manifest) != release["item_count"]:
        _refuse(subscription, "item count does not match the release", number)
    if manifests.digest_of(manifest) != release["digest"]:
        _refuse(subscription, "release hash mismatch", number)
    catalog = data["catalog"]
    with savepoint():
        db.session.add(
            RemoteRelease(
                subscription_id=subscription.id,
                number=number,
                notes=release["notes"],
                manifest=manifest,
                digest=release["digest"],
            )
        )
        subscription.status = SubscriptionStatus.ACTIVE
        subscription.remote_title = str(catalog.get("title", ""))[:200]
        subscription.remote_publisher = {"name": str(catalog.get("publisher", ""))[:200]}
        subscription.remote_etag = first.headers.get("ETag", "")[:100] or None
        _apply_withdrawals(subscription, data["withdrawn"])
        db.session.add(
            SyncLog(
                subscription_id=subscription.id,
                ok=True,
                release_number=number,
                message=f"release {number}: {len(manifest)} items",
            )
        )
        db.session.flush()
        if subscription.auto_accept:
            from app.sharing.services import subscriptions

            subscriptions.accept(None, subscription, number, None, _system=True)
    return SyncResult("synced", number, len(manifest))


def _apply_withdrawals(subscription: Subscription, withdrawn: list[str]) -> None:
    if not withdrawn:
        return
    db.session.execute(
        SubscribedItem.__table__.update()
        .where(
            SubscribedItem.subscription_id == subscription.id,
            SubscribedItem.content_id.in_(withdrawn[:100000]),
        )
        .values(withdrawn=True)
    )
    # Materialised local rows of withdrawn items leave the catalog at once (edge branch).
    from app.sharing.services import materialise

    materialise.reconcile(subscription)


def sync_log(subscription: Subscription, limit: int = 20) -> list[SyncLog]:
    return list(
        db.session.execute(
            select(SyncLog)
            .where(SyncLog.subscription_id == subscription.id)
            .order_by(SyncLog.id.desc())
            .limit(limit)
        ).scalars()
    )
