"""Full-text search for Chinese and English (issue 7).

Public functions (see :mod:`app.search.services`):

- ``services.search(user, q, filters=..., sort=..., page=..., locale=...)`` →
  :class:`~app.search.services.SearchResult`, for pages, the API and the LTI picker;
- ``services.index_content(kind, content_id)`` / ``services.reindex()`` /
  ``services.check_index(repair=...)`` to keep the index in line with the catalog.

Listens to (``app/signals.py``): ``course_published``, ``course_archived``,
``course_deleted``, ``resource_published``, ``resource_archived``, ``resource_deleted``
and ``alignment_changed`` (:mod:`app.search.receivers`).  Reads curriculum words
through :func:`app.curriculum.services.alignments_for_resource` only
(:func:`app.search.services.documents.alignment_terms`).
"""

from __future__ import annotations

import threading

from flask import Flask


def init_app(app: Flask) -> None:
    from app.extensions import api as rest_api
    from app.search import api, cli, models, receivers, views  # noqa: F401  (models: tables)

    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    app.cli.add_command(cli.search_cli)
    receivers.connect(app)
    if not app.testing:
        from app.search.analysis import warm_up

        # Load jieba's dictionary (about a second) off the request path.
        threading.Thread(target=warm_up, name="search-warm-up", daemon=True).start()
