"""Atom feeds of what was newly published for the whole region.

- ``/plugins/course_feed/courses.atom``: region-public courses, newest first
  (``?kind=extended`` or ``?kind=curriculum`` to narrow, ``?lang=en`` for English titles);
- ``/plugins/course_feed/resources.atom``: region-public resources (``?kind=video``...).

Only content an anonymous visitor may read ever appears: the feeds read the catalog
through :func:`app.hooks.published_courses` / :func:`app.hooks.published_resources`,
so private, school and district content, drafts and archived content stay out.  The
feed is built from the database on every request (no per-process cache, so every
worker serves the same feed) and answers conditional requests (ETag, Last-Modified)
with 304.  Setting: ``PLUGIN_COURSE_FEED_LIMIT`` (entries per feed, default 50, max 100).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: S405  (only builds XML, never parses input)
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, current_app, request

from app import hooks

ATOM = "http://www.w3.org/2005/Atom"
DEFAULT_LIMIT = 50
_KIND = re.compile(r"^[a-z_]{1,20}$")

bp = Blueprint("course_feed", __name__)


def _timestamp(value: datetime | None) -> str:
    value = value or datetime(1970, 1, 1)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat() + "Z"


def _text(parent, tag: str, text: str | None, **attrs) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text or ""
    return element


def _localised(entry: dict, field: str, lang: str) -> str:
    if lang == "en":
        value = (entry.get("translations") or {}).get("en", {}).get(field)
        if value:
            return value
    return entry.get(field) or ""


def build_feed(
    title: str, self_url: str, alternate_url: str, entries: list[dict], lang: str
) -> bytes:
    """Atom 1.0 document for ``entries`` (dicts as returned by the hooks)."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": lang})
    _text(feed, f"{{{ATOM}}}id", self_url)
    _text(feed, f"{{{ATOM}}}title", title)
    newest = max((e["published_at"] for e in entries if e.get("published_at")), default=None)
    _text(feed, f"{{{ATOM}}}updated", _timestamp(newest))
    ET.SubElement(
        feed, f"{{{ATOM}}}link", {"rel": "self", "href": self_url, "type": "application/atom+xml"}
    )
    ET.SubElement(
        feed, f"{{{ATOM}}}link", {"rel": "alternate", "href": alternate_url, "type": "text/html"}
    )
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, f"{{{ATOM}}}name", current_app.config.get("PLATFORM_NAME", "Shuyuan"))
    _text(feed, f"{{{ATOM}}}generator", "Shuyuan course_feed")
    for item in entries:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        # One entry per content: a new version updates it rather than adding another.
        _text(entry, f"{{{ATOM}}}id", f"urn:uuid:{item['id']}")
        _text(entry, f"{{{ATOM}}}title", _localised(item, "title", lang))
        _text(entry, f"{{{ATOM}}}published", _timestamp(item.get("published_at")))
        _text(entry, f"{{{ATOM}}}updated", _timestamp(item.get("published_at")))
        ET.SubElement(
            entry, f"{{{ATOM}}}link", {"rel": "alternate", "href": item["url"], "type": "text/html"}
        )
        entry_author = ET.SubElement(entry, f"{{{ATOM}}}author")
        _text(entry_author, f"{{{ATOM}}}name", item.get("author"))
        summary = _localised(item, "summary", lang)
        if summary:
            _text(entry, f"{{{ATOM}}}summary", summary, type="text")
        for term in filter(None, [item.get("kind"), item.get("category"), item.get("subject")]):
            ET.SubElement(entry, f"{{{ATOM}}}category", {"term": term})
        for tag in item.get("tags") or []:
            ET.SubElement(entry, f"{{{ATOM}}}category", {"term": tag, "scheme": "tag"})
        _text(entry, f"{{{ATOM}}}rights", item.get("licence"))
        _text(entry, "{http://purl.org/dc/elements/1.1/}publisher", item.get("district"))
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _serve(source, title_zh: str, title_en: str) -> Response:
    kind = request.args.get("kind") or None
    if kind is not None and not _KIND.match(kind):
        abort(400, description="Unknown kind.")
    lang = "en" if request.args.get("lang") == "en" else "zh"
    limit = current_app.config.get("PLUGIN_COURSE_FEED_LIMIT", DEFAULT_LIMIT)
    entries = source(limit=max(1, min(int(limit), 100)), kind=kind)
    platform = current_app.config.get("PLATFORM_NAME", "Shuyuan")
    body = build_feed(
        f"{platform}: {title_en if lang == 'en' else title_zh}",
        request.url,
        request.url_root,
        entries,
        lang,
    )
    response = Response(body, mimetype="application/atom+xml")
    response.charset = "utf-8"
    newest = max((e["published_at"] for e in entries if e.get("published_at")), default=None)
    if newest is not None:
        response.last_modified = newest.replace(tzinfo=UTC)
    response.cache_control.public = True
    response.cache_control.max_age = 300
    response.add_etag()
    return response.make_conditional(request)


@bp.route("/courses.atom")
def courses_feed():
    return _serve(hooks.published_courses, "新发布的课程", "New courses")


@bp.route("/resources.atom")
def resources_feed():
    return _serve(hooks.published_resources, "新发布的资源", "New resources")


def register(ctx: hooks.PluginContext) -> None:
    ctx.register_blueprint(bp)
