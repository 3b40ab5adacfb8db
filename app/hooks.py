"""The only module a plugin may import.

A plugin is a module (or package) exposing ``register(ctx: PluginContext)``; the loader
calls it once per application.  Through ``ctx`` it can:

- add a blueprint (mounted under ``/plugins/<name>`` unless it sets its own prefix);
- listen to the signals documented in :mod:`app.signals` (re-exported here as ``signals``);
- register a content type (how a resource kind is played and which media it accepts);
- register a player for its content types on the resource page (``register_player``);
- add HTML to named slots of the pages (``course_page_bottom``, ``resource_page_player``...);
- read a few public, read-only services (``published_courses``, ``published_resources``,
  ``content_url``).

Plugins never import ``app.<feature>`` modules: those are free to change.  What is here
is the stable contract.
"""

from __future__ import annotations

from markupsafe import Markup

from app import signals  # noqa: F401  (re-exported for plugins)
from app.extensions import db  # noqa: F401  (re-exported: plugin tables use db.Model)
from app.plugins import (  # re-exported: the plugin contract lives in app.plugins
    ContentType,
    PluginContext,
    content_types,
    registry,
    render_slot,
)

__all__ = [
    "ContentType",
    "registry",
    "PluginContext",
    "signals",
    "db",
    "published_courses",
    "content_types",
    "render_slot",
    "emit_learning_event",
    "resource_media",
    "player_script",
    "csp_nonce",
    "published_resources",
    "content_url",
    # portraits (issue 12): what the exercise player plugin needs
    "current_actor",
    "visible_resource",
]


def _public_entry(obj, kind: str) -> dict:
    return {
        "id": obj.content_id,
        "version": obj.version,
        "title": obj.title,
        "summary": obj.summary,
        "kind": obj.kind,
        "subject": obj.subject,
        "language": obj.language,
        "licence": obj.licence,
        "tags": [tag.name for tag in obj.tags],
        "published_at": obj.published_at,
        "updated_at": obj.updated_at,
        "translations": obj.translations or {},
        "author": obj.author.name,
        "school": obj.school.name if obj.school is not None else None,
        "district": obj.district.name,
        "url": content_url(kind, obj.content_id),
    }


def published_courses(limit: int = 20, kind: str | None = None) -> list[dict]:
    """The newest region-public published courses, newest first, as plain dicts (read-only).

    Only what an anonymous visitor may see: private, school and district content never
    appears.  Keys: ``id`` (stable content id), ``version``, ``title``, ``summary``,
    ``kind``, ``category``, ``subject``, ``language``, ``licence``, ``tags``,
    ``published_at`` and ``updated_at`` (naive UTC datetimes), ``translations``
    (``{"en": {"title": ...}}``), ``author``, ``school`` and ``district`` (names),
    ``url`` (absolute address of the course page).  ``limit`` is capped at 100.
    """
    from app.catalog import services
    from app.catalog.models import Course

    page = services.list_published(
        None, Course, services.CatalogFilters(kind=kind), 1, max(1, min(limit, 100))
    )
    return [_public_entry(c, "course") | {"category": c.category} for c in page.items]


def published_resources(limit: int = 20, kind: str | None = None) -> list[dict]:
    """The newest region-public published resources, newest first, as plain dicts
    (read-only).  Same keys as :func:`published_courses`, with ``grades`` instead of
    ``category``; ``kind`` filters by resource kind (video, document...)."""
    from app.catalog import services
    from app.catalog.models import Resource

    page = services.list_published(
        None, Resource, services.CatalogFilters(kind=kind), 1, max(1, min(limit, 100))
    )
    return [_public_entry(r, "resource") | {"grades": r.grades} for r in page.items]


def content_url(kind: str, content_id: str, external: bool = True) -> str:
    """Address of the page of a course (``kind="course"``) or resource
    (``kind="resource"``); absolute unless ``external`` is False.  Needs a request or
    ``SERVER_NAME``."""
    from flask import url_for

    endpoints = {"course": "catalog.course_detail", "resource": "catalog.resource_detail"}
    endpoint = endpoints[kind]
    return url_for(endpoint, content_id=content_id, _external=external)


# Report a learning action (from a player or launch); delivered after commit.
# ``emit_learning_event(user, verb, *, resource=None, course=None, result=None, context=None)``
emit_learning_event = signals.send_learning_event


def resource_media(resource, user=None) -> dict | None:
    """The file of ``resource`` for a player, or None (no file, or ``user`` may not see it).

    ``user`` defaults to whoever makes the request.  Keys: ``url`` (stable,
    permission-checked address that redirects to a short-lived URL with HTTP Range
    support), ``download_url``, ``media_type`` (sniffed from the bytes), ``filename``,
    ``size``, ``duration`` (seconds or None), ``poster_url``, ``thumbnail_url``,
    ``attachment_id``; for an unpacked package (H5P): ``h5p_base`` (its folder URL,
    ending in "/", carrying a signed per-viewer launch token), ``frame_url`` (the content
    type's ``frame_assets/frame.html`` inside that folder: put it in an
    ``<iframe sandbox="allow-scripts">``, never in the page) and ``frame_origin`` (the
    origin the frame's ``postMessage`` events carry: ``"null"``, the opaque sandbox, also
    when packages come from ``SHUYUAN_CONTENT_ORIGIN``; check ``event.source`` too);
    these three are None for other files.
    """
    from app.accounts.auth import actor
    from app.media import services

    return services.media_context(user if user is not None else actor(), resource)


def csp_nonce() -> str:
    """The nonce every inline ``<script>`` a plugin writes must carry
    (``<script nonce="...">``): the Content-Security-Policy refuses inline script without it."""
    from app.core.headers import csp_nonce as nonce

    return nonce()


def player_script() -> Markup:
    """The ``<script>`` tag of the player API (``window.Shuyuan.report(resourceId, verb,
    data)``, ``Shuyuan.bindMedia(element, resourceId)``), carrying the page's CSRF token.
    Include it in every player; loading it twice is harmless."""
    from flask import url_for
    from flask_wtf.csrf import generate_csrf
    from markupsafe import escape

    src = url_for("static", filename="js/shuyuan-player.js")
    return Markup(  # noqa: S704  (escaped)
        f'<script src="{escape(src)}" data-csrf="{escape(generate_csrf())}" '
        f'data-endpoint="{escape(url_for("media_api.Progress"))}"></script>'
    )


# --- added for the exercise player plugin (issue 12, portraits) ---------------------------


def current_actor():
    """The user making the request (session cookie or bearer token), or None."""
    from app.accounts.auth import actor

    return actor()


def visible_resource(content_id: str, user=None):
    """The published resource row ``content_id`` that ``user`` (default: whoever makes the
    request) may see, or None.  Read-only: a plugin must not change it."""
    from app.catalog import services

    if not isinstance(content_id, str) or len(content_id) > 36:
        return None
    user = user if user is not None else current_actor()
    return services.resolve_resources(user, [content_id]).get(content_id)
