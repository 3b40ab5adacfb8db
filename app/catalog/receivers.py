"""The catalog's own listeners: what is published changes what cached lists show.

Anonymous pages, the list API's pages (per reader visibility) and the list counts are
cached (app/common/cache.py) under the ``catalog`` generation; every signal that changes
which rows a list shows, or in which order, bumps it after the commit that made the
change, so the next reader anywhere builds the page again.  Subscriptions (app/sharing)
change what a district's members see, so they count too.
"""

from __future__ import annotations

from flask import Flask

from app import signals
from app.catalog.services.queries import CACHE_SCOPE as SCOPE
from app.catalog.services.queries import listed_row_changed
from app.common import cache

CHANGES = (
    signals.course_published,
    signals.course_archived,
    signals.course_deleted,
    signals.resource_published,
    signals.resource_archived,
    signals.resource_deleted,
    signals.release_published,
    signals.subscription_accepted,
    signals.item_withdrawn,
    # The edition and chapter filters of /resources (registered by the curriculum) and
    # their counts follow alignments.
    signals.alignment_changed,
    # A published resource's picture or length, set in place by the media feature's jobs.
    listed_row_changed,
)


def on_catalog_changed(sender, **kwargs) -> None:
    cache.bump(SCOPE)


def connect(app: Flask) -> None:
    for signal in CHANGES:
        signal.connect(on_catalog_changed, sender=app)
