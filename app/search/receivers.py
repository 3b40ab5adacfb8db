"""Keeping the index current: listeners of the catalog and curriculum signals.

Whoosh: each runs after the commit that published, archived or deleted an item (or
changed its alignments), so the index never shows what the database does not hold, and
only queues a job (:mod:`app.jobs`): Whoosh's writer lock serialises writers of all
processes, and a publish request must not wait for it (issue 14).  The job re-reads the
database and waits for the lock itself; a failure is logged and repaired by
``flask search check --repair``.  When the job queue is unreachable the request indexes
itself (with the short request wait) rather than lose the update.

PostgreSQL (a ``transactional`` backend): the same receivers run inside the publishing
transaction, just before it commits (:func:`app.common.events.connect_in_transaction`),
so the search row commits or rolls back with the publish and search cannot drift from
the catalog; a failure to index fails the publish.
"""

from __future__ import annotations

from flask import Flask, current_app

from app import signals
from app.common import events
from app.jobs import JobsUnavailable, enqueue
from app.search.services import indexing


def _index(kind: str, content_id: str | None) -> None:
    if not content_id:
        return
    if indexing.get_backend(current_app).transactional:
        # PostgreSQL: inside the publishing transaction, through its session.
        indexing.index_content(kind, content_id)
        return
    try:
        enqueue("app.search.services.indexing:index_content_job", kind, content_id)
    except JobsUnavailable:
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
