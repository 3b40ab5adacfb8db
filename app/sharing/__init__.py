"""Shared catalogs across districts and instances (see docs/sharing.md).

Public functions other features may call (typed, no guessing of internals):

- :func:`subscribed_content_select` — SQL select of the content ids a set of districts
  receives by subscription (used by the catalog's visibility rule);
- :func:`subscribed_content_ids` — the same as a Python set;
- :func:`withdrawal_notice` — whether a content id was withdrawn by its publisher, for
  a clear "withdrawn" page instead of a dead link.

Signals sent (app/signals.py): ``release_published``, ``subscription_accepted``,
``item_withdrawn``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from flask import Flask


def init_app(app: Flask) -> None:
    """Blueprints (pages, JSON API, federation endpoints) and the CLI."""
    from app import signals
    from app.common import events
    from app.extensions import api as rest_api
    from app.sharing import (
        api,
        cli,
        demo,
        federation_views,
        models,  # noqa: F401  (tables)
        oai,
        receivers,
        views,
    )

    app.register_blueprint(views.bp)
    app.register_blueprint(oai.bp)
    app.register_blueprint(federation_views.bp)
    rest_api.register_blueprint(api.blp)
    app.cli.add_command(cli.sharing_cli)
    demo.register()
    events.connect_in_transaction(app, signals.learning_event, receivers.on_learning_event)
    # Peers authenticate with HTTP Message Signatures, never with a browser session.
    exempt = list(app.config.get("CSRF_EXEMPT_PREFIXES", []))
    app.config["CSRF_EXEMPT_PREFIXES"] = exempt + ["/sharing/federation/", "/sharing/oai"]


def subscribed_content_select(district_ids: Iterable[int]):
    """``SELECT content_id`` of items the districts receive through active, accepted,
    not withdrawn subscriptions to catalogs of this instance."""
    from app.sharing.services.subscriptions import subscribed_ids_select

    return subscribed_ids_select(set(district_ids))


def subscribed_content_ids(district_ids: Iterable[int]) -> set[str]:
    ids = set(district_ids)
    if not ids:
        return set()
    from app.extensions import db

    return set(db.session.execute(subscribed_content_select(ids)).scalars())


@dataclass(frozen=True)
class WithdrawalNotice:
    content_id: str
    title: str
    publisher: str
    reason: str
    withdrawn_at: datetime


def withdrawal_notice(content_id: str) -> WithdrawalNotice | None:
    from sqlalchemy import select

    from app.extensions import db
    from app.sharing.models import SharedCatalog, Withdrawal
    from app.sharing.services.catalogs import publisher_label

    row = db.session.execute(
        select(Withdrawal, SharedCatalog)
        .join(SharedCatalog, SharedCatalog.id == Withdrawal.catalog_id)
        .where(Withdrawal.content_id == str(content_id)[:36])
        .order_by(Withdrawal.withdrawn_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    withdrawal, catalog = row
    return WithdrawalNotice(
        withdrawal.content_id,
        withdrawal.title,
        publisher_label(catalog.district),
        withdrawal.reason,
        withdrawal.withdrawn_at,
    )


def is_subscribed(content_id: str, district_ids: Iterable[int]) -> bool:
    """Does one of the districts receive ``content_id`` by an accepted subscription?"""
    ids = set(district_ids)
    if not ids:
        return False
    from app.extensions import db
    from app.sharing.models import SubscribedItem

    statement = subscribed_content_select(ids).where(SubscribedItem.content_id == content_id)
    return db.session.execute(statement.limit(1)).first() is not None
