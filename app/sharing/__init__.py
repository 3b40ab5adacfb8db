"""Shared catalogs across districts and instances (see docs/sharing.md).

Public functions other features may call (typed, no guessing of internals):

- :func:`subscribed_content_select` — SQL select of the content ids a set of districts
  receives by subscription (used by the catalog's visibility rule);
- :func:`subscribed_content_ids` — the same as a Python set;
- :func:`withdrawal_notice` — whether a content id was withdrawn by its publisher, for
  a clear "withdrawn" page instead of a dead link;
- :func:`usage_subscriptions_column` / :func:`usage_read_ahead` — the usage counter's
  subscriptions read by the statement of an LTI launch (no SELECT of its own).

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
    from app.common.routing import add_csrf_exempt_prefix
    from app.extensions import api as rest_api
    from app.sharing import (
        api,
        cli,
        demo,
        federation_views,
        media_views,
        models,  # noqa: F401  (tables)
        oai,
        receivers,
        views,
    )

    app.register_blueprint(views.bp)
    app.register_blueprint(oai.bp)
    app.register_blueprint(federation_views.bp)
    app.register_blueprint(media_views.bp)
    app.before_request(redirect_withdrawn)
    # Templates mark federated items with their source ("From 天津市 · 河西区").
    app.jinja_env.globals["shared_from"] = shared_from
    rest_api.register_blueprint(api.blp)
    app.cli.add_command(cli.sharing_cli)
    demo.register()
    events.connect_in_transaction(app, signals.learning_event, receivers.on_learning_event)
    from app.sharing.services import federation

    federation.request_ready.connect(receivers.on_request_ready, sender=app, weak=False)
    # Peers authenticate with HTTP Message Signatures, never with a browser session.
    for prefix in ("/sharing/federation/", "/sharing/oai"):
        add_csrf_exempt_prefix(app, prefix)


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
        return _federated_withdrawal(str(content_id)[:36])
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


def usage_subscriptions_column(content_id, user_id, user_district_id):
    """SQL for a statement that reads a user and the item she opens (an LTI launch): the
    subscriptions the usage counter of her learning event on it would count, read in that
    statement instead of by a SELECT of the counter's own (see
    :func:`app.sharing.services.usage.subscriptions_column`).  Hand the value read to
    :func:`usage_read_ahead`.  PostgreSQL only."""
    from app.sharing.services.usage import subscriptions_column

    return subscriptions_column(content_id, user_id, user_district_id)


def usage_read_ahead(user, districts: frozenset[int], content_id: str, found) -> None:
    """What :func:`usage_subscriptions_column` read for ``user`` (whose districts were
    ``districts`` in the same statement) and ``content_id``: this transaction's usage
    counter uses it instead of its own SELECT."""
    from app.sharing.services.usage import read_ahead

    read_ahead(user, districts, content_id, found)


def _federated_withdrawal(content_id: str) -> WithdrawalNotice | None:
    """A remote item its publisher withdrew (learnt by a sync): the local row is archived."""
    from app.extensions import db
    from app.sharing.models import FederatedItem

    fed = db.session.get(FederatedItem, content_id)
    if fed is None or fed.withdrawn_at is None:
        return None
    from app.sharing.services.materialise import local_title

    return WithdrawalNotice(
        content_id, local_title(fed), fed.publisher or fed.origin, "", fed.withdrawn_at
    )


def redirect_withdrawn():
    """``before_request``: a detail page of a withdrawn remote item shows the
    "withdrawn by its publisher" page (410) instead of a 404 or a dead link."""
    from flask import redirect, request, url_for

    if request.endpoint not in ("catalog.resource_detail", "catalog.course_detail"):
        return None
    content_id = (request.view_args or {}).get("content_id")
    if not isinstance(content_id, str) or _federated_withdrawal(content_id[:36]) is None:
        return None
    return redirect(url_for("sharing.withdrawn", content_id=content_id[:36]))


def shared_from(item) -> str | None:
    """The publisher label of a federated (remote) item, or None for local content.
    Takes a course/resource row or a content id (search hits)."""
    data = getattr(item, "data", None)
    if isinstance(data, dict):  # resources carry it: no query per card
        federated = data.get("federated")
        return federated.get("publisher") or federated.get("origin") if federated else None
    content_id = getattr(item, "content_id", None)
    if isinstance(content_id, str):  # a course row
        return _federated_course_labels().get(content_id[:36])
    if not isinstance(item, str):
        return None
    from app.extensions import db
    from app.sharing.models import FederatedItem

    fed = db.session.get(FederatedItem, item[:36])
    return (fed.publisher or fed.origin) if fed is not None else None


def _federated_course_labels() -> dict[str, str]:
    """Publisher labels of the federated courses, loaded once per request: a page of
    cards asks for each card, and one query per card is what
    tests/media/test_pictures_and_progress.py forbids.  Federated courses are few (a
    region's catalog holds hundreds, not thousands)."""
    from flask import g
    from sqlalchemy import select

    from app.extensions import db
    from app.sharing.models import FederatedItem

    labels = g.get("_shuyuan_federated_labels")
    if labels is None:
        rows = db.session.execute(
            select(FederatedItem.content_id, FederatedItem.publisher, FederatedItem.origin).where(
                FederatedItem.item_type == "course"
            )
        )
        labels = {row.content_id: row.publisher or row.origin for row in rows}
        g._shuyuan_federated_labels = labels
    return labels
