"""Catalog: courses and resources with numbered versions, review workflow, visibility
scopes, enrolment and the course structure (sessions, sections, items).

Seams for other features:
- :mod:`app.catalog.services` — verbs with the acting user passed in (see its docstring
  for the sub-domains: permissions, queries, editing, structure, workflow, enrolment);
  ``can_view`` / ``visibility_condition`` are the one visibility rule every feature uses.
- :mod:`app.catalog.vocab` — the controlled vocabularies (subjects, grades, kinds) and
  their labels in both languages.
- Signals sent after commit (:mod:`app.signals`): ``course_published``,
  ``course_submitted``, ``course_archived``, ``course_deleted``, the ``resource_*``
  equivalents, ``resource_version_created``, ``student_enrolled``,
  ``student_unenrolled``.  Received: those content signals, the sharing feature's
  ``release_published``, ``subscription_accepted``, ``item_withdrawn`` and the
  curriculum's ``alignment_changed``, each dropping the cached catalog pages (see
  :mod:`app.catalog.receivers`).
"""

from flask import Flask


def duration_text(seconds) -> str:
    """A media length as cards show it: ``8:02`` or ``1:02:05``."""
    try:
        total = int(round(float(seconds)))
    except (TypeError, ValueError):
        return ""
    if total < 0:
        return ""
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def init_app(app: Flask) -> None:
    from app.catalog import api, receivers, views
    from app.common.transaction import read_only
    from app.extensions import api as rest_api

    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    # The list endpoints only read: on PostgreSQL their requests run without the BEGIN and
    # COMMIT round trips (a write, such as a token's last use, still opens a transaction;
    # app/common/transaction.py).  Method views are marked here, once Flask has made their
    # view functions (the flag counts for GET and HEAD only, so POST is unaffected).  Not
    # the browse pages: read_only takes a connection at the start of the request, which
    # costs an anonymous page answered from the cache (no statement at all) ~0.12 ms CPU
    # and saves nothing there (docs/catalog.md).
    for endpoint in api.READ_ONLY_ENDPOINTS:
        read_only(app.view_functions[f"{api.blp.name}.{endpoint}"])
    app.jinja_env.globals["duration_text"] = duration_text
    receivers.connect(app)
