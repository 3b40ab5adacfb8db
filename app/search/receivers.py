"""Keeping the index current: listeners of the catalog and curriculum signals.

Each runs after the commit that published, archived or deleted an item (or changed its
alignments), so the index never shows what the database does not hold.  Whoosh's
writer lock serialises writers of all processes; when it stays busy the update moves
to a job, and a failure is logged by the signal dispatcher and repaired by
``flask search check --repair``.
"""

from __future__ import annotations

from flask import Flask

from app import signals
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


def connect(app: Flask) -> None:
    signals.course_published.connect(on_course_changed, sender=app)
    signals.course_archived.connect(on_course_changed, sender=app)
    signals.course_deleted.connect(on_course_deleted, sender=app)
    signals.resource_published.connect(on_resource_changed, sender=app)
    signals.resource_archived.connect(on_resource_changed, sender=app)
    signals.resource_deleted.connect(on_resource_deleted, sender=app)
    signals.alignment_changed.connect(on_alignment_changed, sender=app)
