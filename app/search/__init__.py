"""Full-text search for Chinese and English (issue 7).

``services.search(user, q, ...)`` is the entry point for pages, the API and the LTI
picker; the index is kept current by the signal receivers below and repaired by
``flask search reindex`` / ``flask search check --repair``.
"""

from __future__ import annotations

import logging

from flask import Flask

from app import signals

log = logging.getLogger(__name__)


def _index(app: Flask, kind: str, content_id: str | None) -> None:
    if not content_id:
        return
    from app.search import services

    # Runs after the commit that published/archived/deleted the item.  Whoosh's writer
    # lock serialises writers of all processes; a failure here is logged by the signal
    # dispatcher and repaired by `flask search check --repair`.
    services.index_content(kind, content_id, wait=services.REQUEST_WRITE_WAIT)


def _content_id(obj) -> str | None:
    return getattr(obj, "content_id", None)


def on_course_changed(app, course=None, **kwargs):
    _index(app, "course", _content_id(course))


def on_resource_changed(app, resource=None, **kwargs):
    _index(app, "resource", _content_id(resource))


def on_course_deleted(app, content_id=None, **kwargs):
    _index(app, "course", content_id)


def on_resource_deleted(app, content_id=None, **kwargs):
    _index(app, "resource", content_id)


def on_alignment_changed(app, **kwargs):
    """Curriculum alignment of a resource changed: its lesson/knowledge-point titles are
    part of its document.  Accepts ``resource_content_id``, ``content_id`` or
    ``resource`` (and lists of content ids in ``resource_content_ids``)."""
    ids = list(kwargs.get("resource_content_ids") or [])
    for key in ("resource_content_id", "content_id"):
        if kwargs.get(key):
            ids.append(kwargs[key])
    if kwargs.get("resource") is not None:
        ids.append(_content_id(kwargs["resource"]))
    for content_id in dict.fromkeys(i for i in ids if i):
        _index(app, "resource", content_id)


def init_app(app: Flask) -> None:
    from app.extensions import api as rest_api
    from app.search import api, cli, views

    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    app.cli.add_command(cli.search_cli)

    signals.course_published.connect(on_course_changed, sender=app)
    signals.course_archived.connect(on_course_changed, sender=app)
    signals.course_deleted.connect(on_course_deleted, sender=app)
    signals.resource_published.connect(on_resource_changed, sender=app)
    signals.resource_archived.connect(on_resource_changed, sender=app)
    signals.resource_deleted.connect(on_resource_deleted, sender=app)
    if not app.testing:
        # Load jieba's dictionary (about a second) off the request path.
        import threading

        from app.search.analysis import warm_up

        threading.Thread(target=warm_up, name="search-warm-up", daemon=True).start()

    alignment_changed = getattr(signals, "alignment_changed", None)
    if alignment_changed is not None:
        alignment_changed.connect(on_alignment_changed, sender=app)
