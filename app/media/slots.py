"""What the media feature shows inside the catalog's pages (through page slots, so the
catalog never imports media): card pictures, the editor's file and cover forms, and a
learner's own progress with "continue where you left off"."""

from __future__ import annotations

import mimetypes

from flask import current_app, g, render_template, url_for
from markupsafe import Markup, escape

from app.accounts.auth import actor
from app.catalog import services as catalog


def card_picture(content=None, kind: str = "resources", **kwargs) -> str:
    """The picture of a catalog card (no query: the row carries the picture's id)."""
    if content is None or not content.cover_id:
        return ""
    src = url_for("media.picture", kind=kind, content_id=content.content_id, v=content.version)
    return Markup(  # noqa: S704  (the one value is escaped)
        f'<img class="card-picture" src="{escape(src)}" alt="" loading="lazy" '
        f'width="640" height="360">'
    )


def editor_cover(obj=None, kind: str = "resources", **kwargs) -> str:
    if obj is None:
        return ""
    return Markup(render_template("media/_cover_form.html", obj=obj, kind=kind))  # noqa: S704  (an escaping template)


def editor_files(resource=None, **kwargs) -> str:
    """The upload form inside the resource editor (drag and drop, progress, resume)."""
    from app.media import services

    if resource is None:
        return ""
    accepts = services.accepted_types(resource.kind)
    if not accepts:
        return ""
    return Markup(render_template("media/_files.html", **upload_context(resource)))  # noqa: S704  (an escaping template)


def upload_context(resource) -> dict:
    from app.media import services

    accepts = services.accepted_types(resource.kind)
    return {
        "resource": resource,
        "attachments": services.attachments_of(resource),
        "accepts": accepts,
        "quota": services.district_quota(resource.district_id),
        "used": services.district_usage(resource.district_id),
        "max_bytes": current_app.config["MEDIA_MAX_UPLOAD_BYTES"],
        "can_take_file": catalog.can_take_changes(resource),
        "extensions": sorted(
            {ext for t in accepts for ext in (mimetypes.guess_all_extensions(t) or [])}
        ),
    }


def _progress_cache() -> dict:
    if "_shuyuan_progress" not in g:
        g._shuyuan_progress = {}
    return g._shuyuan_progress


def _prime(user, items, kind: str) -> None:
    """Load her progress for a whole page of cards in a few queries (not one per card)."""
    from app.media import services

    cache = _progress_cache()
    missing = [obj for obj in items if obj.content_id not in cache]
    if not missing:
        return
    if kind == "courses":
        found = services.course_progress(user, missing)
    else:
        found = services.learner_progress(user, [obj.content_id for obj in missing])
    for obj in missing:
        cache[obj.content_id] = found.get(obj.content_id)


def continue_learning(items=(), kind: str = "resources", **kwargs) -> str:
    """Above a list of cards: the resources she left unfinished, newest first."""
    from app.media import services

    user = actor()
    if user is None:
        return ""
    _prime(user, list(items), kind)
    recent = services.recent_resources(user, 3)
    if not recent:
        return ""
    resources = catalog.resolve_resources(user, [p.content_id for p in recent])
    rows = [(resources[p.content_id], p) for p in recent if p.content_id in resources]
    if not rows:
        return ""
    return Markup(render_template("media/_continue.html", rows=rows))  # noqa: S704  (an escaping template)


def card_progress(content=None, kind: str = "resources", **kwargs) -> str:
    user = actor()
    if user is None or content is None:
        return ""
    _prime(user, [content], kind)
    progress = _progress_cache().get(content.content_id)
    if progress is None:
        return ""
    return Markup(render_template("media/_progress.html", progress=progress, kind=kind))  # noqa: S704  (an escaping template)
