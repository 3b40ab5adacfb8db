"""Catalog pages.  Thin: read the form (checked with the API's input schemas), call a
service, redirect with a flash; the framework commits (app.common.transaction).

Forms that fail validation are shown again, filled in, with the errors next to their
fields and HTTP 422; nothing is stored.  Authorisation is the services' business: a
``Forbidden`` or ``NotFound`` from them becomes the error page.

Modules: ``browse`` (catalog, course and resource pages, enrolment), ``editor`` (my
content, new content, the editor, publishing buttons), ``course_parts`` (sessions,
sections, items), ``reviews`` (district review), ``forms`` and ``common`` (helpers).
"""

from app.catalog.views import browse, course_parts, editor, reviews  # noqa: F401  (routes)
from app.catalog.views.common import bp

__all__ = ["bp"]
