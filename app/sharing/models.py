"""Shared catalogs, their immutable releases, subscriptions and federation keys.

A **catalog** is a district's curated set of courses and resources (chosen by hand in
``sharing_catalog_entries`` and/or by ``rules``).  A **release** freezes it: its
``manifest`` maps each content id to the version, a hash of its shared fields and those
fields, so a subscriber can be shown a field-level diff and keep the fields it
accepted (``sharing_subscribed_items``) until it accepts the next release.

A subscription is either to a catalog on this instance (``catalog_id``) or to a catalog
on a remote instance (``remote_origin`` + ``remote_catalog_uid``); remote releases are
copied into ``sharing_remote_releases`` after their signatures and hashes checked out.
"""

from __future__ import annotations

import enum

from app.common.models import (
    JSONType,
    TimestampMixin,
    cascading_fk,
    children,
    new_uuid,
    utcnow,
    value_enum,
)
from app.extensions import db


class SubscriptionStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for the publishing district's approval
    ACTIVE = "active"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class SharedCatalog(TimestampMixin, db.Model):
    __tablename__ = "sharing_catalogs"

    id = db.Column(db.Integer, primary_key=True)
    # Public, stable id used in feeds and packages (row ids never leave the instance).
    uid = db.Column(db.String(36), nullable=False, unique=True, default=new_uuid)
    district_id = db.Column(db.Integer, db.ForeignKey("districts.id"), nullable=False, index=True)
    title = db.Column(db.String(200), nullable=False)
    description = db.Column(db.String(2000), nullable=False, default="")
    # {"type": [...], "kind": [...], "subject": [...], "grade": [...], "edition": [...],
    #  "tag": [...]}: published content of the district matching every listed facet.
    rules = db.Column(JSONType)
    # Harvestable by anyone (OAI-PMH) and subscribable without approval in the region.
    region_public = db.Column(db.Boolean, nullable=False, default=False)

    district = db.relationship("District")
    entries = children("CatalogEntry", back_populates="catalog", lazy="selectin")


class CatalogEntry(db.Model):
    """A course or resource picked by hand."""

    __tablename__ = "sharing_catalog_entries"

    catalog_id = db.Column(
        db.Integer, db.ForeignKey("sharing_catalogs.id", ondelete="CASCADE"), primary_key=True
    )
    item_type = db.Column(db.String(10), primary_key=True)  # course | resource
    content_id = db.Column(db.String(36), primary_key=True)

    catalog = db.relationship("SharedCatalog", back_populates="entries")


class Withdrawal(db.Model):
    """An item its publisher withdrew: gone from later releases and, at once, from every
    subscriber (withdrawal never waits for acceptance)."""

    __tablename__ = "sharing_withdrawals"

    catalog_id = db.Column(
        db.Integer, db.ForeignKey("sharing_catalogs.id", ondelete="CASCADE"), primary_key=True
    )
    content_id = db.Column(db.String(36), primary_key=True)
    title = db.Column(db.String(200), nullable=False, default="")
    reason = db.Column(db.String(500), nullable=False, default="")
    withdrawn_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class _ReleaseMixin:
    """A numbered snapshot of a catalog, here or fetched from a remote instance."""

    id = db.Column(db.Integer, primary_key=True)
    number = db.Column(db.Integer, nullable=False)
    notes = db.Column(db.String(4000), nullable=False, default="")
    # {content_id: {"type", "version", "digest", "fields": {...}}}
    manifest = db.Column(JSONType, nullable=False)
    # SHA-256 of the canonical manifest: the release's identity in feeds (ETag).
    digest = db.Column(db.String(64), nullable=False)


class Release(_ReleaseMixin, db.Model):
    """An immutable, numbered snapshot of a catalog (rows are never updated)."""

    __tablename__ = "sharing_releases"
    __table_args__ = (db.UniqueConstraint("catalog_id", "number"),)

    catalog_id = cascading_fk("sharing_catalogs.id")
    item_count = db.Column(db.Integer, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))

    catalog = db.relationship("SharedCatalog")
    created_by = db.relationship("User")


class Subscription(TimestampMixin, db.Model):
    __tablename__ = "sharing_subscriptions"
    __table_args__ = (
        db.UniqueConstraint("subscriber_district_id", "catalog_id"),
        db.UniqueConstraint("subscriber_district_id", "remote_origin", "remote_catalog_uid"),
    )

    id = db.Column(db.Integer, primary_key=True)
    subscriber_district_id = db.Column(
        db.Integer, db.ForeignKey("districts.id"), nullable=False, index=True
    )
    # Local catalog, or (remote_origin, remote_catalog_uid) on another instance.
    catalog_id = db.Column(
        db.Integer, db.ForeignKey("sharing_catalogs.id", ondelete="CASCADE"), index=True
    )
    remote_origin = db.Column(db.String(300))
    remote_catalog_uid = db.Column(db.String(36))
    # What the remote feed says about its publisher (shown as the items' source).
    remote_title = db.Column(db.String(200))
    remote_publisher = db.Column(JSONType)
    # Only items whose fields match: {"subject": [...], "grade": [...], ...}.
    filters = db.Column(JSONType)
    status = db.Column(value_enum(SubscriptionStatus), nullable=False)
    auto_accept = db.Column(db.Boolean, nullable=False, default=False)
    # The newest release accepted in full (None before the first acceptance).
    accepted_number = db.Column(db.Integer)
    requested_by_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    # Remote subscriptions: id of the request on the publisher (shown to its admin).
    remote_request_id = db.Column(db.String(36), default=new_uuid, unique=True)
    # ETag of the remote feed's first page at the last good sync (If-None-Match).
    remote_etag = db.Column(db.String(100))
    # When the publisher acknowledged the request (None: not delivered yet).  The request
    # is sent by a job after this instance's own request ends, never inside it: the
    # publisher reads our keys from our well-known URL while it verifies the request.
    remote_requested_at = db.Column(db.DateTime)

    subscriber_district = db.relationship("District")
    catalog = db.relationship("SharedCatalog")


class SubscribedItem(db.Model):
    """What a subscriber sees of one item: the version and fields it accepted (pinned
    until it accepts a newer release of that item)."""

    __tablename__ = "sharing_subscribed_items"
    __table_args__ = (db.Index("ix_sharing_subscribed_items_content", "content_id", "withdrawn"),)

    subscription_id = db.Column(
        db.Integer,
        db.ForeignKey("sharing_subscriptions.id", ondelete="CASCADE"),
        primary_key=True,
    )
    content_id = db.Column(db.String(36), primary_key=True)
    item_type = db.Column(db.String(10), nullable=False)
    version = db.Column(db.Integer, nullable=False)
    digest = db.Column(db.String(64), nullable=False)
    fields = db.Column(JSONType, nullable=False)
    withdrawn = db.Column(db.Boolean, nullable=False, default=False)
    accepted_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    subscription = db.relationship("Subscription")


class RemoteRelease(_ReleaseMixin, db.Model):
    """A release fetched from a remote instance, stored only after every page verified."""

    __tablename__ = "sharing_remote_releases"
    __table_args__ = (db.UniqueConstraint("subscription_id", "number"),)

    subscription_id = cascading_fk("sharing_subscriptions.id")
    fetched_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class RemoteSubscriber(TimestampMixin, db.Model):
    """Publisher side: another instance's district asking for one of our catalogs."""

    __tablename__ = "sharing_remote_subscribers"
    __table_args__ = (db.UniqueConstraint("origin", "request_id"),)

    id = db.Column(db.Integer, primary_key=True)
    catalog_id = cascading_fk("sharing_catalogs.id")
    origin = db.Column(db.String(300), nullable=False)
    request_id = db.Column(db.String(36), nullable=False)
    district_name = db.Column(db.String(200), nullable=False)
    status = db.Column(value_enum(SubscriptionStatus), nullable=False)

    catalog = db.relationship("SharedCatalog")


class InstanceKey(db.Model):
    """This instance's Ed25519 signing keys; the newest active one signs."""

    __tablename__ = "sharing_instance_keys"

    id = db.Column(db.Integer, primary_key=True)
    kid = db.Column(db.String(64), nullable=False, unique=True)
    private_pem = db.Column(db.Text, nullable=False)
    public_pem = db.Column(db.Text, nullable=False)
    active = db.Column(db.Boolean, nullable=False, default=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class PeerKey(db.Model):
    """A remote instance's public key, as published at its well-known URL."""

    __tablename__ = "sharing_peer_keys"

    origin = db.Column(db.String(300), primary_key=True)
    kid = db.Column(db.String(64), primary_key=True)
    public_pem = db.Column(db.Text, nullable=False)
    fetched_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class SyncLog(db.Model):
    """Every sync attempt and why it was refused (kept even when the sync rolls back)."""

    __tablename__ = "sharing_sync_log"

    id = db.Column(db.Integer, primary_key=True)
    subscription_id = db.Column(
        db.Integer, db.ForeignKey("sharing_subscriptions.id", ondelete="CASCADE"), index=True
    )
    at = db.Column(db.DateTime, nullable=False, default=utcnow)
    ok = db.Column(db.Boolean, nullable=False)
    release_number = db.Column(db.Integer)
    message = db.Column(db.String(1000), nullable=False)


class Usage(db.Model):
    """Daily use of one subscribed item by one subscribing district: counts and score
    sums only (no student, no statement leaves the subscriber)."""

    __tablename__ = "sharing_usage"

    subscription_id = db.Column(
        db.Integer,
        db.ForeignKey("sharing_subscriptions.id", ondelete="CASCADE"),
        primary_key=True,
    )
    content_id = db.Column(db.String(36), primary_key=True)
    day = db.Column(db.Date, primary_key=True)
    launches = db.Column(db.Integer, nullable=False, default=0)
    completions = db.Column(db.Integer, nullable=False, default=0)
    score_sum = db.Column(db.Float, nullable=False, default=0.0)
    score_count = db.Column(db.Integer, nullable=False, default=0)


class RemoteUsage(db.Model):
    """Publisher side: one day of a federated subscriber's use of one item, as that
    instance reported it (counts only).  A report for a day replaces the stored day, so
    sending the same day again never doubles it."""

    __tablename__ = "sharing_remote_usage"

    remote_subscriber_id = db.Column(
        db.Integer,
        db.ForeignKey("sharing_remote_subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    )
    day = db.Column(db.Date, primary_key=True)
    content_id = db.Column(db.String(36), primary_key=True)
    launches = db.Column(db.Integer, nullable=False, default=0)
    completions = db.Column(db.Integer, nullable=False, default=0)
    score_sum = db.Column(db.Float, nullable=False, default=0.0)
    score_count = db.Column(db.Integer, nullable=False, default=0)
    received_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class FederatedItem(db.Model):
    """A remote (federated) item materialised as a local catalog row with the same
    content id, so browse, search, "this week", LTI and media serve it from this
    instance (an edge node keeps serving while its upstream is down).  The local row is
    owned by the subscribing district; this row remembers where it came from."""

    __tablename__ = "sharing_federated_items"

    content_id = db.Column(db.String(36), primary_key=True)
    item_type = db.Column(db.String(10), nullable=False)
    subscription_id = db.Column(
        db.Integer, db.ForeignKey("sharing_subscriptions.id", ondelete="CASCADE"), index=True
    )
    origin = db.Column(db.String(300), nullable=False)
    publisher = db.Column(db.String(200), nullable=False, default="")
    catalog_title = db.Column(db.String(200), nullable=False, default="")
    version = db.Column(db.Integer, nullable=False)
    digest = db.Column(db.String(64), nullable=False)
    # [{"sha256", "size", "media_type", "filename", "role"}] as the publisher listed them.
    media = db.Column(JSONType, nullable=False, default=list)
    withdrawn_at = db.Column(db.DateTime)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
