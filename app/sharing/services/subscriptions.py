"""Subscriber side: subscribe, pending release with its diff, accept all/some/auto, and
what the subscriber's schools may see.

The subscriber keeps the fields it accepted for each item (``SubscribedItem``), so an
item stays pinned to its accepted version until a later release of it is accepted, and
the diff is always "what I have" → "the newest release", whatever was accepted before.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update

from app import signals
from app.accounts.models import District, User
from app.common.events import send_after_commit
from app.common.models import utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from app.extensions import db
from app.sharing.models import (
    Release,
    RemoteRelease,
    SharedCatalog,
    SubscribedItem,
    Subscription,
    SubscriptionStatus,
)
from app.sharing.services import manifest as manifests
from app.sharing.services.catalogs import clean_rules, require_admin_of, withdrawn_ids
from app.sharing.services.diff import Diff, diff, fill_fields


def get_subscription(user: User | None, subscription_id: int) -> Subscription:
    """A subscription seen by an admin of the subscribing district."""
    if user is None:
        raise Unauthorized("Log in first.")
    sub = (
        db.session.get(Subscription, subscription_id) if isinstance(subscription_id, int) else None
    )
    if sub is None or not (
        user.is_platform_admin or user.is_district_admin(sub.subscriber_district_id)
    ):
        raise NotFound("Subscription not found.")
    return sub


def subscribe(
    user: User | None,
    district_id: int,
    catalog: SharedCatalog,
    filters: dict | None = None,
    auto_accept: bool = False,
) -> Subscription:
    """Ask for a catalog of this instance.  A region-public catalog of the same region
    is open at once; anything else waits for the publishing district's approval."""
    require_admin_of(user, district_id)
    district = db.session.get(District, district_id)
    if district is None:
        raise NotFound("District not found.")
    if catalog.district_id == district_id:
        raise Conflict("A district cannot subscribe to its own catalog.")
    existing = db.session.execute(
        select(Subscription).filter_by(subscriber_district_id=district_id, catalog_id=catalog.id)
    ).scalar_one_or_none()
    if existing is not None and existing.status in (
        SubscriptionStatus.PENDING,
        SubscriptionStatus.ACTIVE,
    ):
        raise Conflict("The district already subscribes to this catalog.")
    open_now = catalog.region_public and catalog.district.region_id == district.region_id
    sub = existing or Subscription(subscriber_district_id=district_id, catalog_id=catalog.id)
    sub.filters = clean_rules(filters)
    sub.auto_accept = bool(auto_accept)
    sub.status = SubscriptionStatus.ACTIVE if open_now else SubscriptionStatus.PENDING
    sub.requested_by_id = user.id
    if existing is None:
        db.session.add(sub)
    db.session.flush()
    if open_now and sub.auto_accept:
        _auto_accept(sub)
    return sub


def decide(user: User | None, subscription: Subscription, approve: bool) -> Subscription:
    """The publishing district approves or rejects a local subscription request."""
    if subscription.catalog is None:
        raise NotFound("Subscription not found.")
    require_admin_of(user, subscription.catalog.district_id)
    if subscription.status != SubscriptionStatus.PENDING:
        raise Conflict("The request was already decided.")
    subscription.status = SubscriptionStatus.ACTIVE if approve else SubscriptionStatus.REJECTED
    db.session.flush()
    if approve and subscription.auto_accept:
        _auto_accept(subscription)
    return subscription


def requests_for(user: User | None, catalog: SharedCatalog) -> list[Subscription]:
    require_admin_of(user, catalog.district_id)
    return list(
        db.session.execute(
            select(Subscription).filter_by(catalog_id=catalog.id).order_by(Subscription.id)
        ).scalars()
    )


def set_options(
    user: User | None, subscription: Subscription, auto_accept=None, filters=...
) -> Subscription:
    require_admin_of(user, subscription.subscriber_district_id)
    if auto_accept is not None:
        subscription.auto_accept = bool(auto_accept)
    if filters is not ...:
        subscription.filters = clean_rules(filters)
    db.session.flush()
    if subscription.auto_accept and subscription.status == SubscriptionStatus.ACTIVE:
        _auto_accept(subscription)
    return subscription


def cancel(user: User | None, subscription: Subscription) -> None:
    require_admin_of(user, subscription.subscriber_district_id)
    subscription.status = SubscriptionStatus.CANCELLED
    db.session.execute(delete(SubscribedItem).filter_by(subscription_id=subscription.id))
    db.session.flush()


def subscriptions_of(user: User | None) -> list[Subscription]:
    if user is None:
        return []
    statement = select(Subscription).order_by(Subscription.id)
    if not user.is_platform_admin:
        statement = statement.where(
            Subscription.subscriber_district_id.in_(user.admin_district_ids())
        )
    return list(db.session.execute(statement).scalars())


# --- releases, diffs, acceptance ---------------------------------------------------------


@dataclass
class Target:
    number: int
    notes: str
    manifest: dict


# Releases never change once written, so their decoded manifests can be kept in memory
# (keyed by table, row id and digest); a subscriber's page then decodes none of them.
_MANIFESTS: dict[tuple, dict] = {}
_MANIFESTS_KEPT = 8


def _manifest(model, row_id: int, digest: str) -> dict:
    key = (model.__tablename__, row_id, digest)
    manifest = _MANIFESTS.get(key)
    if manifest is None:
        manifest = db.session.execute(select(model.manifest).where(model.id == row_id)).scalar()
        if len(_MANIFESTS) >= _MANIFESTS_KEPT:
            _MANIFESTS.pop(next(iter(_MANIFESTS)))
        _MANIFESTS[key] = manifest
    return manifest


def newest_remote_release(subscription_id: int) -> RemoteRelease | None:
    """The newest release fetched or imported for a remote subscription."""
    return db.session.execute(
        select(RemoteRelease)
        .where(RemoteRelease.subscription_id == subscription_id)
        .order_by(RemoteRelease.number.desc())
        .limit(1)
    ).scalar_one_or_none()


def target_release(subscription: Subscription) -> Target | None:
    """The newest release the subscriber can take (local or fetched from a remote)."""
    if subscription.catalog_id is not None:
        model, owner = Release, Release.catalog_id == subscription.catalog_id
    else:
        model, owner = RemoteRelease, RemoteRelease.subscription_id == subscription.id
    row = db.session.execute(
        select(model.id, model.number, model.notes, model.digest)
        .where(owner)
        .order_by(model.number.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return Target(row.number, row.notes, _manifest(model, row.id, row.digest))


def _held(subscription: Subscription, with_fields: bool = False) -> tuple[dict, set[str]]:
    """What the subscriber has now (manifest form, ``fields`` only when asked: they are
    the costly part) and its withdrawn item ids."""
    held: dict[str, dict] = {}
    withdrawn: set[str] = set()
    columns = [
        SubscribedItem.content_id,
        SubscribedItem.item_type,
        SubscribedItem.version,
        SubscribedItem.digest,
        SubscribedItem.withdrawn,
    ]
    if with_fields:
        columns.append(SubscribedItem.fields)
    rows = db.session.execute(
        select(*columns).where(SubscribedItem.subscription_id == subscription.id)
    )
    for row in rows:
        if row.withdrawn:
            withdrawn.add(row.content_id)
            continue
        held[row.content_id] = {
            "type": row.item_type,
            "version": row.version,
            "digest": row.digest,
            "fields": row.fields if with_fields else None,
        }
    return held, withdrawn


def subscribed_fields(subscription_id: int, content_ids: list[str]) -> dict[str, dict]:
    """The accepted fields of these items of the subscription (content id → fields)."""
    found: dict[str, dict] = {}
    for start in range(0, len(content_ids), 1000):
        found.update(
            db.session.execute(
                select(SubscribedItem.content_id, SubscribedItem.fields).where(
                    SubscribedItem.subscription_id == subscription_id,
                    SubscribedItem.content_id.in_(content_ids[start : start + 1000]),
                )
            ).all()
        )
    return found


def _wanted(subscription: Subscription, target: Target, withdrawn: set[str]) -> dict:
    wanted = manifests.filtered(target.manifest, subscription.filters)
    for content_id in withdrawn | _publisher_withdrawals(subscription):
        wanted.pop(content_id, None)
    return wanted


def _publisher_withdrawals(subscription: Subscription) -> set[str]:
    if subscription.catalog_id is None:
        return set()
    return withdrawn_ids(subscription.catalog_id)


@dataclass
class Pending:
    number: int
    notes: str
    diff: Diff


def pending(user: User | None, subscription: Subscription) -> Pending | None:
    """The newest release and how it differs from what the subscriber has (None when
    there is nothing to accept)."""
    require_admin_of(user, subscription.subscriber_district_id)
    return _pending(subscription)


def _pending(subscription: Subscription) -> Pending | None:
    if subscription.status != SubscriptionStatus.ACTIVE:
        return None
    target = target_release(subscription)
    if target is None:
        return None
    held, withdrawn = _held(subscription)
    wanted = _wanted(subscription, target, withdrawn)
    changes = diff(held, wanted)
    if changes.empty:
        return None
    # Field-level detail for changed items only, and a title for removed ones.
    old = subscribed_fields(
        subscription.id, [c.content_id for c in changes.changed + changes.removed]
    )
    for change in changes.changed:
        fill_fields(change, old[change.content_id], wanted[change.content_id]["fields"])
    for change in changes.removed:
        change.title = old[change.content_id]["title"]
    return Pending(target.number, target.notes, changes)


def accept(
    user: User | None,
    subscription: Subscription,
    number: int,
    content_ids: list[str] | None = None,
    _system: bool = False,
) -> list[str]:
    """Accept release ``number`` in full (``content_ids`` None) or for some items.

    Returns the items taken.  Refused when ``number`` is not the newest release, so an
    admin never accepts a diff she was not shown.
    """
    if not _system:
        require_admin_of(user, subscription.subscriber_district_id)
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise Conflict("The subscription is not active.")
    target = target_release(subscription)
    if target is None or target.number != number:
        raise Conflict("A newer release is waiting; review its changes first.")
    held, withdrawn = _held(subscription)
    wanted = _wanted(subscription, target, withdrawn)
    changes = diff(held, wanted)
    chosen = changes.all()
    if content_ids is not None:
        if not isinstance(content_ids, list) or not all(isinstance(c, str) for c in content_ids):
            raise Invalid("Items must be a list of content ids.")
        picked = set(content_ids)
        chosen = [c for c in chosen if c.content_id in picked]
    now = utcnow()

    def accepted(content_id: str) -> dict:
        """The stored item as the release has it (keys of ``SubscribedItem``)."""
        item = wanted[content_id]
        return {
            "subscription_id": subscription.id,
            "content_id": content_id,
            "version": item["version"],
            "digest": item["digest"],
            "fields": item["fields"],
            "accepted_at": now,
        }

    added = [
        accepted(c.content_id) | {"item_type": wanted[c.content_id]["type"], "withdrawn": False}
        for c in chosen
        if c.status == "added"
    ]
    changed = [accepted(c.content_id) for c in chosen if c.status == "changed"]
    removed = [c.content_id for c in chosen if c.status == "removed"]
    for start in range(0, len(added), 1000):
        db.session.execute(insert(SubscribedItem), added[start : start + 1000])
    if changed:
        db.session.execute(update(SubscribedItem), changed)
    for start in range(0, len(removed), 1000):
        db.session.execute(
            delete(SubscribedItem).where(
                SubscribedItem.subscription_id == subscription.id,
                SubscribedItem.content_id.in_(removed[start : start + 1000]),
            )
        )
    if len(chosen) == len(changes.all()):
        subscription.accepted_number = number
    db.session.flush()
    db.session.expire_all()
    if subscription.remote_origin is not None:
        # Remote items become local catalog rows (browse, search, LTI, media here).
        from app.sharing.services import materialise

        materialise.reconcile(subscription)
    taken = [c.content_id for c in chosen]
    send_after_commit(
        signals.subscription_accepted,
        subscription=subscription,
        release_number=number,
        content_ids=taken,
        user=None if _system else user,
    )
    return taken


def _auto_accept(subscription: Subscription) -> None:
    target = target_release(subscription)
    if target is not None and _pending(subscription) is not None:
        accept(None, subscription, target.number, None, _system=True)


# --- what subscribers see -----------------------------------------------------------------


def subscribed_ids_select(district_ids):
    """SQL select of the content ids the given districts receive by subscription."""
    return (
        select(SubscribedItem.content_id)
        .join(Subscription, Subscription.id == SubscribedItem.subscription_id)
        .where(
            Subscription.subscriber_district_id.in_(list(district_ids)),
            Subscription.status == SubscriptionStatus.ACTIVE,
            # Remote items count too: they are materialised as local rows with the
            # publisher's content id (services/materialise.py).
            SubscribedItem.withdrawn.is_(False),
        )
    )


@dataclass(frozen=True)
class Source:
    """Where a subscribed item comes from, for the "from ..." mark."""

    subscription_id: int
    publisher: str
    catalog_title: str
    version: int
    withdrawn: bool


def sources_for(district_ids, content_ids) -> dict[str, Source]:
    if not district_ids or not content_ids:
        return {}
    rows = db.session.execute(
        select(SubscribedItem, Subscription)
        .join(Subscription, Subscription.id == SubscribedItem.subscription_id)
        .where(
            Subscription.subscriber_district_id.in_(list(district_ids)),
            Subscription.status == SubscriptionStatus.ACTIVE,
            SubscribedItem.content_id.in_(list(content_ids)),
        )
    )
    found: dict[str, Source] = {}
    for item, sub in rows:
        title = sub.catalog.title if sub.catalog else (sub.remote_title or "")
        found[item.content_id] = Source(
            sub.id, item.fields.get("publisher", ""), title, item.version, item.withdrawn
        )
    return found


def subscribed_item(user: User | None, subscription_id: int, content_id: str) -> SubscribedItem:
    """One item as the subscriber accepted it (pinned fields), for members of the
    subscribing district."""
    if user is None:
        raise Unauthorized("Log in first.")
    sub = (
        db.session.get(Subscription, subscription_id) if isinstance(subscription_id, int) else None
    )
    allowed = sub is not None and (
        user.is_platform_admin or sub.subscriber_district_id in user.member_district_ids()
    )
    item = db.session.get(SubscribedItem, (subscription_id, content_id)) if allowed else None
    if item is None:
        raise NotFound("Item not found.")
    return item


def ensure_member(user: User | None, district_id: int) -> None:
    if user is None or not (user.is_platform_admin or district_id in user.member_district_ids()):
        raise Forbidden("You are not a member of this district.")
