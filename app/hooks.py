"""The only module a plugin may import.

A plugin is a module (or package) exposing ``register(ctx: PluginContext)``; the loader
calls it once per application.  Through ``ctx`` it can:

- add a blueprint (mounted under ``/plugins/<name>`` unless it sets its own prefix);
- listen to the signals documented in :mod:`app.signals` (re-exported here as ``signals``);
- register a content type (how a resource kind is played and which media it accepts);
- add HTML to named slots of the pages (``course_page_bottom``, ``resource_page_player``...);
- read a few public, read-only services (``published_courses``, ``published_resources``,
  ``content_url``).

Plugins never import ``app.<feature>`` modules: those are free to change.  What is here
is the stable contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, current_app
from markupsafe import Markup

from app import signals  # noqa: F401  (re-exported for plugins)
from app.extensions import db  # noqa: F401  (re-exported: plugin tables use db.Model)

__all__ = [
    "ContentType",
    "PluginContext",
    "signals",
    "db",
    "published_courses",
    "content_types",
    "render_slot",
    "emit_learning_event",
    "resource_media",
    "player_script",
    "published_resources",
    "content_url",
    # portraits (issue 12): what the exercise player plugin needs
    "current_actor",
    "visible_resource",
]


@dataclass
class ContentType:
    """How one resource kind is stored and played.

    ``kind`` is a resource kind code (video, audio, document, link, interactive...).
    ``player`` renders the player HTML for a resource: ``player(resource, context) -> str``
    where ``context`` has ``media_url`` and ``user``.  ``accepts`` lists media types an
    upload of this kind may have (sniffed from the bytes, not the file name).
    """

    kind: str
    label: str
    player: Callable[..., str] | None = None
    accepts: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Registry:
    content_types: dict[str, ContentType] = field(default_factory=dict)
    slots: dict[str, list[Callable[..., str]]] = field(default_factory=dict)
    plugins: dict[str, Any] = field(default_factory=dict)


def registry(app: Flask | None = None) -> _Registry:
    app = app or current_app
    return app.extensions.setdefault("shuyuan_hooks", _Registry())


class PluginContext:
    """What the loader hands a plugin's ``register`` function."""

    def __init__(self, app: Flask, name: str):
        self._app = app
        self.name = name

    @property
    def config(self) -> dict:
        """This plugin's settings: config keys ``PLUGIN_<NAME>_*`` without the prefix."""
        prefix = f"PLUGIN_{self.name.upper()}_"
        return {k[len(prefix) :]: v for k, v in self._app.config.items() if k.startswith(prefix)}

    def register_blueprint(self, blueprint: Blueprint, url_prefix: str | None = None) -> None:
        self._app.register_blueprint(blueprint, url_prefix=url_prefix or f"/plugins/{self.name}")

    def connect(self, signal, receiver: Callable) -> None:
        """Listen to a signal of :mod:`app.signals` for this application only."""
        signal.connect(receiver, sender=self._app, weak=False)

    def register_content_type(self, content_type: ContentType) -> None:
        registry(self._app).content_types[content_type.kind] = content_type

    def add_to_slot(self, slot: str, render: Callable[..., str]) -> None:
        """``render(**context) -> str`` is called where a page shows ``slot``."""
        registry(self._app).slots.setdefault(slot, []).append(render)

    def add_template_folder(self, folder: str) -> None:
        """Not needed with a blueprint's own ``template_folder``; kept for slot templates."""
        from jinja2 import ChoiceLoader, FileSystemLoader

        self._app.jinja_loader = ChoiceLoader([self._app.jinja_loader, FileSystemLoader(folder)])


def content_types() -> dict[str, ContentType]:
    return registry().content_types


def render_slot(slot: str, **context) -> Markup:
    parts = []
    for render in registry().slots.get(slot, []):
        parts.append(str(render(**context)))
    # Slot renderers are installed plugins (code the operator chose to run), and they
    # return HTML by contract; escaping their user data is their job.
    return Markup("".join(parts))  # noqa: S704


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


def emit_learning_event(
    user,
    verb: str,
    *,
    resource=None,
    course=None,
    result: dict | None = None,
    context: dict | None = None,
) -> None:
    """Report a learning action (from a player or launch); delivered after commit."""
    from app.common.events import send_after_commit

    send_after_commit(
        signals.learning_event,
        user=user,
        verb=verb,
        resource=resource,
        course=course,
        result=result,
        context=context or {},
    )


def resource_media(resource, user=None) -> dict | None:
    """The file of ``resource`` for a player, or None (no file, or ``user`` may not see it).

    ``user`` defaults to whoever makes the request.  Keys: ``url`` (stable,
    permission-checked address that redirects to a short-lived URL with HTTP Range
    support), ``download_url``, ``media_type`` (sniffed from the bytes), ``filename``,
    ``size``, ``duration`` (seconds or None), ``poster_url``, ``thumbnail_url``,
    ``h5p_base`` (folder URL of an unpacked H5P package, ending in "/"), ``attachment_id``.
    """
    from app.accounts.auth import actor
    from app.media import services

    return services.media_context(user if user is not None else actor(), resource)


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
