"""Remote (federated) items as local catalog rows.

An item accepted from a remote catalog becomes a published course or resource row of
this instance with **the publisher's content id** (so LTI links and "this week" entries
made against the publisher open the same item here), owned by the subscribing district
and visible to its members like its own district content.  ``sharing_federated_items``
remembers its origin, publisher and catalog (the "from ..." mark), the accepted version
and hash (an unchanged item is not rewritten) and its media.  A withdrawn item's row is
archived at once, so it leaves browse, search and LTI, and its links land on the
"withdrawn by its publisher" page.

Called after an acceptance (``subscriptions.accept``) and after withdrawals were
applied by a sync; idempotent, so running it again repairs anything missed.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from app import signals
from app.catalog.models import (
    Course,
    Resource,
    ResourceGrade,
    State,
    Tag,
    Visibility,
)
from app.common.events import send_after_commit
from app.common.models import utcnow
from app.extensions import db
from app.sharing.models import FederatedItem, SubscribedItem, Subscription, SubscriptionStatus
from app.sharing.services.subscriptions import subscribed_fields

log = logging.getLogger(__name__)
_MODELS = {"course": Course, "resource": Resource}


def _tags(names, cache: dict[str, Tag]) -> list[Tag]:
    wanted = sorted({str(n)[:50] for n in names if isinstance(n, str) and n})
    for name in wanted:
        if name not in cache:
            cache[name] = Tag(name=name)
            db.session.add(cache[name])
    return [cache[n] for n in wanted]


def _row(model, content_id: str):
    return (
        db.session.execute(
            select(model).where(model.content_id == content_id).order_by(model.version.desc())
        )
        .scalars()
        .first()
    )


def _write(row, item, fields: dict, sub: Subscription, origin: str, tags: dict) -> None:
    row.version = item.version
    row.state = State.PUBLISHED
    row.title = str(fields.get("title", ""))[:200] or item.content_id
    row.summary = str(fields.get("summary", ""))[:500]
    row.language = str(fields.get("language", "") or "zh")[:10]
    row.licence = str(fields.get("licence", ""))[:20]
    row.subject = str(fields.get("subject", ""))[:32] or None
    row.kind = str(fields.get("kind", ""))[:20] or "link"
    row.visibility = Visibility.DISTRICT
    row.district_id = sub.subscriber_district_id
    row.school_id = None
    row.published_at = row.published_at or utcnow()
    row.tags = _tags(fields.get("tags") or [], tags)
    grades = [str(g)[:8] for g in (fields.get("grades") or []) if isinstance(g, str)]
    if isinstance(row, Resource):
        # The publisher's page for the item, for "open at the source" (never fetched).
        row.url = (origin + str(fields.get("url", "")))[:2000]
        row.data = {
            **(row.data or {}),
            "federated": {"origin": origin, "publisher": str(fields.get("publisher", ""))},
        }
        row.grade_rows = [ResourceGrade(grade=g) for g in sorted(set(grades))]
    else:
        row.grade = grades[0] if grades else None
        row.edition = str(fields.get("edition", ""))[:32] or None


def reconcile(subscription: Subscription) -> dict:
    """Bring the local rows of a remote subscription in line with what it accepted."""
    counts = {"created": 0, "updated": 0, "archived": 0}
    if subscription.remote_origin is None:
        return counts
    origin = subscription.remote_origin
    active = subscription.status == SubscriptionStatus.ACTIVE
    owner_id = subscription.requested_by_id
    # Columns, not entities: a bulk UPDATE applied the withdrawals (read them as stored),
    # and the fields (JSON, costly to decode) are read only for items to be written.
    items = {
        row.content_id: row
        for row in db.session.execute(
            select(
                SubscribedItem.content_id,
                SubscribedItem.item_type,
                SubscribedItem.version,
                SubscribedItem.digest,
                SubscribedItem.withdrawn,
            ).where(SubscribedItem.subscription_id == subscription.id)
        )
    }
    known = {
        f.content_id: f
        for f in db.session.execute(
            select(FederatedItem).where(FederatedItem.subscription_id == subscription.id)
        ).scalars()
    }
    catalog_title = subscription.remote_title or ""
    # Decide first from the hashes which items need their row (an unchanged item of a
    # 10,000-item catalog costs no query), then load those rows in batches.
    todo = []
    for content_id, item in items.items():
        if item.item_type not in _MODELS:
            continue
        fed = known.get(content_id)
        if item.withdrawn or not active:
            if fed is not None and (fed.withdrawn_at is None or not active):
                todo.append(content_id)
            continue
        if fed is not None and fed.digest == item.digest and fed.withdrawn_at is None:
            continue  # written by us with these fields and still published
        todo.append(content_id)
    removed = [c for c, fed in known.items() if c not in items and fed.digest]
    rows = _rows(
        todo + removed,
        {**{c: items[c].item_type for c in todo}, **{c: known[c].item_type for c in removed}},
    )
    fields = subscribed_fields(subscription.id, [c for c in todo if not items[c].withdrawn])
    tags = _tag_cache(fields.values())
    for content_id in todo:
        item, fed, row = items[content_id], known.get(content_id), rows.get(content_id)
        model = _MODELS[item.item_type]
        if item.withdrawn or not active:
            if fed is not None and row is not None and row.state == State.PUBLISHED:
                _archive(row)
                counts["archived"] += 1
            if fed is not None and item.withdrawn and fed.withdrawn_at is None:
                fed.withdrawn_at = utcnow()
            continue
        if fed is None and row is not None:
            # Same id already here and not ours to overwrite (e.g. the publisher's own row).
            log.warning("sharing: %s exists locally; not materialised", content_id)
            continue
        if row is None:
            if owner_id is None:
                log.warning("sharing: subscription %s has no owner user", subscription.id)
                continue
            row = model(content_id=content_id, author_id=owner_id)
            db.session.add(row)
            counts["created"] += 1
        else:
            counts["updated"] += 1
        _write(row, item, fields[content_id], subscription, origin, tags)
        if fed is None:
            fed = FederatedItem(content_id=content_id, subscription_id=subscription.id, media=[])
            db.session.add(fed)
        fed.item_type = item.item_type
        fed.origin = origin
        fed.publisher = str(fields[content_id].get("publisher", ""))[:200]
        fed.catalog_title = catalog_title[:200]
        fed.version = item.version
        fed.digest = item.digest
        fed.withdrawn_at = None
        fed.updated_at = utcnow()
        _announce(row, "published")
    # Accepted removals (no longer in the subscription): their rows leave the catalog;
    # the emptied hash makes a later re-acceptance write the row again.
    for content_id in removed:
        row = rows.get(content_id)
        if row is not None and row.state == State.PUBLISHED:
            _archive(row)
            counts["archived"] += 1
        known[content_id].digest = ""
    db.session.flush()
    return counts


def _rows(content_ids: list[str], types: dict[str, str]) -> dict:
    """content id → its (newest) local row, loaded in batches per model."""
    found: dict = {}
    for kind, model in _MODELS.items():
        ids = sorted(c for c in content_ids if types.get(c) == kind)
        for start in range(0, len(ids), 500):
            for row in db.session.execute(
                select(model)
                .where(model.content_id.in_(ids[start : start + 500]))
                .order_by(model.version)
            ).scalars():
                found[row.content_id] = row  # ordered by version: the newest wins
    return found


def _tag_cache(field_sets) -> dict[str, Tag]:
    names = sorted(
        {
            str(n)[:50]
            for fields in field_sets
            for n in (fields.get("tags") or [])
            if isinstance(n, str) and n
        }
    )
    cache: dict[str, Tag] = {}
    for start in range(0, len(names), 500):
        for tag in db.session.execute(
            select(Tag).where(Tag.name.in_(names[start : start + 500]))
        ).scalars():
            cache[tag.name] = tag
    return cache


def _archive(row) -> None:
    row.state = State.ARCHIVED
    db.session.flush()
    _announce(row, "archived")


def _announce(row, event: str) -> None:
    # Search (and anything else listening) indexes the row as it would a local publish.
    if isinstance(row, Course):
        signal = signals.course_published if event == "published" else signals.course_archived
        send_after_commit(signal, course=row, user=None)
    else:
        signal = signals.resource_published if event == "published" else signals.resource_archived
        send_after_commit(signal, resource=row, user=None)


def reconcile_all() -> dict:
    totals = {"created": 0, "updated": 0, "archived": 0}
    subs = db.session.execute(
        select(Subscription).where(Subscription.remote_origin.is_not(None))
    ).scalars()
    for sub in list(subs):
        for key, value in reconcile(sub).items():
            totals[key] += value
    return totals


def federated_source(content_id: str) -> FederatedItem | None:
    return db.session.get(FederatedItem, str(content_id)[:36])


def local_title(fed: FederatedItem) -> str:
    row = _row(_MODELS.get(fed.item_type, Resource), fed.content_id)
    return row.title if row is not None else fed.content_id
