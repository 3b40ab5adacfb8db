"""Publisher side: catalogs, releases (with the licence check) and withdrawals."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app import signals
from app.accounts.models import District, User
from app.catalog.models import Course, Resource
from app.common.events import send_after_commit
from app.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from app.extensions import db
from app.sharing.models import (
    CatalogEntry,
    Release,
    RemoteSubscriber,
    SharedCatalog,
    SubscribedItem,
    Subscription,
    SubscriptionStatus,
    Withdrawal,
)
from app.sharing.services import manifest as manifests

RULE_FACETS = ("type", "kind", "subject", "grade", "edition", "tag")


def require_admin_of(user: User | None, district_id: int) -> User:
    if user is None:
        raise Unauthorized("Log in first.")
    if not (user.is_platform_admin or user.is_district_admin(district_id)):
        raise Forbidden("Only an admin of the district can manage its shared catalogs.")
    return user


def publisher_label(district: District) -> str:
    region = district.region
    return f"{region.name} · {district.name}" if region else district.name


def clean_rules(rules) -> dict | None:
    """Rules or filters from outside: facet → list of short strings, nothing else."""
    if rules in (None, {}):
        return None
    if not isinstance(rules, dict):
        raise Invalid("Rules must be an object.", fields={"rules": ["Not an object."]})
    clean: dict[str, list[str]] = {}
    for facet, values in rules.items():
        if facet not in RULE_FACETS:
            raise Invalid("Unknown rule facet.", fields={"rules": [f"Unknown facet {facet!r}."]})
        if not isinstance(values, list) or not all(
            isinstance(v, str) and 0 < len(v) <= 50 for v in values
        ):
            raise Invalid("Rule values must be lists of short strings.", fields={"rules": [facet]})
        if values:
            clean[facet] = sorted(set(values))[:50]
    return clean or None


def get_catalog(catalog_id: int) -> SharedCatalog:
    catalog = db.session.get(SharedCatalog, catalog_id) if isinstance(catalog_id, int) else None
    if catalog is None:
        raise NotFound("Catalog not found.")
    return catalog


def catalog_by_uid(uid: str) -> SharedCatalog:
    if not isinstance(uid, str) or not manifests.CONTENT_ID.match(uid):
        raise NotFound("Catalog not found.")
    catalog = db.session.execute(select(SharedCatalog).filter_by(uid=uid)).scalar_one_or_none()
    if catalog is None:
        raise NotFound("Catalog not found.")
    return catalog


def require_approved_peer(origin: str, catalog: SharedCatalog) -> None:
    """A verified peer reads a catalog's feed or media only once the publishing district
    approved its subscription request."""
    approved = db.session.execute(
        select(RemoteSubscriber.id).filter_by(
            catalog_id=catalog.id, origin=origin, status=SubscriptionStatus.ACTIVE
        )
    ).first()
    if approved is None:
        raise Forbidden("The publishing district has not approved this subscription yet.")


def create_catalog(user: User | None, district_id: int, data: dict) -> SharedCatalog:
    require_admin_of(user, district_id)
    if db.session.get(District, district_id) is None:
        raise NotFound("District not found.")
    catalog = SharedCatalog(
        district_id=district_id,
        title=data["title"],
        description=data.get("description") or "",
        rules=clean_rules(data.get("rules")),
        region_public=bool(data.get("region_public", False)),
    )
    db.session.add(catalog)
    db.session.flush()
    return catalog


def update_catalog(user: User | None, catalog: SharedCatalog, data: dict) -> SharedCatalog:
    require_admin_of(user, catalog.district_id)
    for name in ("title", "description", "region_public"):
        if name in data:
            setattr(catalog, name, data[name])
    if "rules" in data:
        catalog.rules = clean_rules(data["rules"])
    db.session.flush()
    return catalog


def set_entries(
    user: User | None, catalog: SharedCatalog, items: list[tuple[str, str]]
) -> SharedCatalog:
    """Replace the hand-picked items (``(type, content_id)`` pairs)."""
    require_admin_of(user, catalog.district_id)
    wanted = set()
    for item_type, content_id in items:
        if item_type not in manifests.ITEM_TYPES or not manifests.CONTENT_ID.match(str(content_id)):
            raise Invalid("Unknown item.", fields={"items": [f"{item_type}:{content_id}"]})
        wanted.add((item_type, content_id))
    catalog.entries = [CatalogEntry(item_type=t, content_id=c) for t, c in sorted(wanted)]
    db.session.flush()
    return catalog


def withdrawn_ids(catalog_id: int) -> set[str]:
    """Content ids the publisher withdrew from catalog ``catalog_id``."""
    return set(
        db.session.execute(
            select(Withdrawal.content_id).where(Withdrawal.catalog_id == catalog_id)
        ).scalars()
    )


@dataclass
class Preview:
    manifest: dict
    refused: list[manifests.Refusal]


def preview(user: User | None, catalog: SharedCatalog) -> Preview:
    """What a release made now would contain, and what the licence check refuses."""
    require_admin_of(user, catalog.district_id)
    return _preview(catalog)


def _preview(catalog: SharedCatalog) -> Preview:
    objects = manifests.load_objects(
        catalog.rules,
        [(e.item_type, e.content_id) for e in catalog.entries],
        catalog.district_id,
    )
    withdrawn = withdrawn_ids(catalog.id)
    objects = [o for o in objects if o.content_id not in withdrawn]
    manifest, refused = manifests.build(
        objects, catalog.district_id, publisher_label(catalog.district)
    )
    return Preview(manifest, refused)


def latest_release(catalog: SharedCatalog) -> Release | None:
    return db.session.execute(
        select(Release)
        .where(Release.catalog_id == catalog.id)
        .order_by(Release.number.desc())
        .limit(1)
    ).scalar_one_or_none()


def get_release(catalog: SharedCatalog, number: int) -> Release:
    release = db.session.execute(
        select(Release).filter_by(catalog_id=catalog.id, number=number)
    ).scalar_one_or_none()
    if release is None:
        raise NotFound("Release not found.")
    return release


def list_releases(catalog: SharedCatalog) -> list[Release]:
    return list(
        db.session.execute(
            select(Release).where(Release.catalog_id == catalog.id).order_by(Release.number.desc())
        ).scalars()
    )


def publish_release(
    user: User | None, catalog: SharedCatalog, notes: str, allow_refusals: bool = False
) -> tuple[Release, list[manifests.Refusal]]:
    """Freeze the catalog as the next numbered release.

    Refused items (licence, owner, state) stop the release unless ``allow_refusals``,
    in which case they are left out; either way the caller learns which and why.
    """
    if user is not None or not allow_refusals:
        require_admin_of(user, catalog.district_id)
    found = _preview(catalog)
    if found.refused and not allow_refusals:
        raise Conflict(
            "Some items cannot be shared; remove them or release without them.",
            fields={
                f"{r.item_type}:{r.content_id}": [f"{r.title}: {r.message}"] for r in found.refused
            },
            code="licence_refused",
        )
    if not found.manifest:
        raise Conflict("The catalog has no item that can be released.")
    number = (
        db.session.execute(
            select(func.max(Release.number)).where(Release.catalog_id == catalog.id)
        ).scalar()
        or 0
    ) + 1
    release = Release(
        catalog_id=catalog.id,
        number=number,
        notes=(notes or "")[:4000],
        manifest=found.manifest,
        digest=manifests.digest_of(found.manifest),
        item_count=len(found.manifest),
        created_by_id=user.id if user else None,
    )
    db.session.add(release)
    db.session.flush()
    send_after_commit(signals.release_published, release=release, user=user)
    # Auto-accepting subscribers take it at once (same unit of work).
    from app.sharing.services import subscriptions

    for subscription in db.session.execute(
        select(Subscription).filter_by(
            catalog_id=catalog.id, status=SubscriptionStatus.ACTIVE, auto_accept=True
        )
    ).scalars():
        subscriptions.accept(None, subscription, number, None, _system=True)
    return release, found.refused


def withdraw_item(
    user: User | None, catalog: SharedCatalog, content_id: str, reason: str = ""
) -> Withdrawal:
    """Withdraw an item now: subscribers lose it at once and see a withdrawn page."""
    require_admin_of(user, catalog.district_id)
    if not manifests.CONTENT_ID.match(str(content_id)):
        raise NotFound("Item not found.")
    if db.session.get(Withdrawal, (catalog.id, content_id)) is not None:
        raise Conflict("The item is already withdrawn.")
    release = latest_release(catalog)
    entry = (release.manifest if release else {}).get(content_id)
    if entry is None:
        raise NotFound("Item not found in the catalog's releases.")
    withdrawal = Withdrawal(
        catalog_id=catalog.id,
        content_id=content_id,
        title=entry["fields"]["title"],
        reason=(reason or "")[:500],
    )
    db.session.add(withdrawal)
    db.session.execute(
        SubscribedItem.__table__.update()
        .where(
            SubscribedItem.content_id == content_id,
            SubscribedItem.subscription_id.in_(
                select(Subscription.id).where(Subscription.catalog_id == catalog.id)
            ),
        )
        .values(withdrawn=True)
    )
    db.session.flush()
    send_after_commit(signals.item_withdrawn, catalog=catalog, content_id=content_id, user=user)
    return withdrawal


def withdrawn_items(catalog: SharedCatalog) -> list[Withdrawal]:
    return list(
        db.session.execute(
            select(Withdrawal)
            .where(Withdrawal.catalog_id == catalog.id)
            .order_by(Withdrawal.withdrawn_at)
        ).scalars()
    )


def catalogs_of(user: User | None) -> list[SharedCatalog]:
    """Catalogs the user administers (all for a platform admin)."""
    if user is None:
        return []
    statement = select(SharedCatalog).order_by(SharedCatalog.id)
    if not user.is_platform_admin:
        statement = statement.where(SharedCatalog.district_id.in_(user.admin_district_ids()))
    return list(db.session.execute(statement).scalars())


def subscribable_catalogs(user: User | None) -> list[SharedCatalog]:
    """Catalogs of other districts with at least one release."""
    if user is None:
        return []
    own = user.admin_district_ids()
    statement = (
        select(SharedCatalog)
        .where(SharedCatalog.id.in_(select(Release.catalog_id)))
        .order_by(SharedCatalog.id)
    )
    if own:
        statement = statement.where(SharedCatalog.district_id.not_in(own))
    return list(db.session.execute(statement).scalars())


def content_exists(item_type: str, content_id: str) -> bool:
    model = Course if item_type == "course" else Resource
    return (
        db.session.execute(select(model.id).where(model.content_id == content_id).limit(1)).first()
        is not None
    )
