"""Keeping the index current: listeners of the catalog and curriculum signals.

Whoosh: each runs after the commit that published, archived or deleted an item (or
changed its alignments), so the index never shows what the database does not hold.
Whoosh's writer lock serialises writers of all processes; when it stays busy the update
moves to a job, and a failure is logged by the signal dispatcher and repaired by
``flask search check --repair``.

PostgreSQL (a ``transactional`` backend): the same receivers run inside the publishing
transaction, just before it commits (:func:`app.common.events.connect_in_transaction`),
so the search row commits or rolls back with the publish and search cannot drift from
the catalog; a failure to index fails the publish.
"""

from __future__ import annotations

from flask import Flask

from app import signals
from app.common import events
from app.search.services import indexing


def _index(kind: str, content_id: str | None) -> None:
    if content_id:
        indexing.index_content(kind, content_id, wait=indexing.REQUEST_WRITE_WAIT)


def on_course_changed(app: Flask, course, **kwargs) -> None:
    _index("course", course.content_id)


def on_resource_changed(app: Flask, resource, **kwargs) -> None:
    _index("resource", resource.content_id)


def on_course_deleted(app: Flask, content_id: str, **kwargs) -> None:
    _index("course", content_id)


def on_resource_deleted(app: Flask, content_id: str, **kwargs) -> None:
    _index("resource", content_id)


def on_alignment_changed(app: Flask, resource_content_id: str, **kwargs) -> None:
    """A resource's curriculum words are part of its document."""
    _index("resource", resource_content_id)


RECEIVERS = (
    (signals.course_published, on_course_changed),
    (signals.course_archived, on_course_changed),
    (signals.course_deleted, on_course_deleted),
    (signals.resource_published, on_resource_changed),
    (signals.resource_archived, on_resource_changed),
    (signals.resource_deleted, on_resource_deleted),
    (signals.alignment_changed, on_alignment_changed),
)


def connect(app: Flask) -> None:
    in_transaction = indexing.get_backend(app).transactional
    for signal, receiver in RECEIVERS:
        if in_transaction:
            events.connect_in_transaction(app, signal, receiver)
        else:
            signal.connect(receiver, sender=app)
