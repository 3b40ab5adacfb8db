"""Delivery: short-lived URLs for files, and the sandbox that plays uploaded packages.

Files (video, PDF, images) are answered with a redirect to a presigned or signed URL.

Unpacked packages (H5P) are active content written by whoever uploaded them, so they
never run on Shuyuan's own origin with the viewer's session:

- the page embeds them in ``<iframe sandbox="allow-scripts">`` (no ``allow-same-origin``:
  the frame has an opaque origin, cannot read Shuyuan's cookies or DOM, cannot navigate
  the top page, open pop-ups or submit forms);
- every package file is answered with ``Content-Security-Policy: sandbox allow-scripts``
  and sources limited to the package's own folder, so a file opened directly (not in the
  frame) is just as contained and cannot even reach Shuyuan's API;
- with ``CONTENT_ORIGIN`` set, package files are served only from that separate host
  (which never sets cookies) and Shuyuan's own host refuses them;
- the URL carries a signed per-launch token (viewer, attachment, expiry) instead of a
  cookie: an opaque-origin frame has no cookies to send, and the token is checked again
  (``can_view``) on every file;
- the frame talks to the page only by ``postMessage``; the page checks the sender.
"""

from __future__ import annotations

import functools
import mimetypes
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app, request, url_for
from flask_babel import gettext as _
from sqlalchemy import bindparam, select

from app.accounts.models import User
from app.accounts.principal import Principal
from app.catalog import services as catalog
from app.catalog.models import Resource
from app.errors import Conflict, Forbidden, NotFound
from app.extensions import db
from app.media.models import MediaAttachment, MediaDerivative, MediaObject
from app.media.services.attachments import attachments_of
from app.media.services.common import CONTROL, setting
from app.media.services.permissions import visible_attachment, visible_file
from app.media.storage import TokenRejected, get_storage, read_token, sign_token
from app.plugins import content_types

PLAYER_FOLDER = "~player/"  # a content type's frame assets; "~" never starts a package path
OPAQUE_ORIGIN = "null"  # what a sandboxed frame without allow-same-origin reports
# Media types a browser would run as a document: delivered as downloads, never inline.
ACTIVE_TYPES = (
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/xml",
    "application/xml",
)


@dataclass
class Delivery:
    url: str
    expires_in: int
    media_type: str
    filename: str
    size: int


def delivery_url(
    user: User | Principal | None,
    attachment_id: str,
    variant: str | None = None,
    inline: bool = True,
) -> Delivery:
    """A short-lived URL for a file of a resource ``user`` may see (or NotFound).

    Read with Core rows, not ORM objects (a player asks for one per file it opens; see
    docs/media.md "Presigned URLs over HTTP")."""
    obj = visible_file(user, attachment_id)
    filename = obj.filename
    if variant:
        derived = (
            db.session.connection()
            .execute(_derivative_statement(), {"source_id": obj.object_id, "kind": variant})
            .first()
        )
        if derived is None:
            raise NotFound(f"No {variant} for this file.")
        obj = derived
        stem = filename.rsplit(".", 1)[0]
        filename = f"{stem}-{variant}.{derived.media_type.split('/')[-1].replace('jpeg', 'jpg')}"
    storage = get_storage()
    if obj.backend != storage.name:
        raise Conflict("This file is kept in another storage backend.")
    ttl = int(setting("MEDIA_URL_TTL"))
    if obj.media_type.split(";")[0].strip().lower() in ACTIVE_TYPES:
        inline = False
    url = storage.download_url(obj.key, filename, obj.media_type, ttl, inline)
    return Delivery(url, ttl, obj.media_type, filename, obj.size)


@functools.cache
def _derivative_statement():
    return (
        select(MediaObject.backend, MediaObject.key, MediaObject.media_type, MediaObject.size)
        .join(MediaDerivative, MediaDerivative.object_id == MediaObject.id)
        .where(
            MediaDerivative.source_id == bindparam("source_id"),
            MediaDerivative.kind == bindparam("kind"),
        )
    )


# --- packages -----------------------------------------------------------------------------


def content_origin() -> str | None:
    """The separate host for package content (``CONTENT_ORIGIN``), or None (one host)."""
    return current_app.config.get("CONTENT_ORIGIN") or None


def is_content_host() -> bool:
    """Whether this request came to the content host (only package files live there)."""
    origin = content_origin()
    return origin is not None and urlsplit(origin).netloc.lower() == request.host.lower()


def package_frame_origin() -> str:
    """The origin a package frame's messages carry (what the page must check).

    Always the opaque origin, also on a separate content host: the sandbox header of
    every package response leaves out ``allow-same-origin``, so packages never share a
    real origin (nor its storage) with each other.  The page therefore also checks that
    a message comes from its own frame's window and carries this launch's id."""
    return OPAQUE_ORIGIN


def package_base(user: User | None, attachment: MediaAttachment) -> str:
    """Folder URL (ending in "/") of an unpacked package for this viewer, with a signed
    per-launch token; absolute on the content host when one is configured."""
    token = sign_token(
        {"op": "pkg", "a": attachment.public_id, "u": user.id if user is not None else None},
        int(setting("MEDIA_PACKAGE_TTL")),
    )
    path = url_for("media.package_file", token=token, path="")
    origin = content_origin()
    return f"{origin}{path}" if origin else path


@dataclass
class PackageFile:
    """One file to answer inside a package sandbox: from storage (``key``) or from the
    content type's frame assets (``asset_folder`` + ``asset``)."""

    media_type: str
    base_url: str
    key: str | None = None
    asset_folder: str | None = None
    asset: str | None = None


def _safe_path(path: str) -> bool:
    return bool(
        path
        and not path.startswith("/")
        and ".." not in path.split("/")
        and "\\" not in path
        and not CONTROL.search(path)
    )


def link_payload(token: str, op: str) -> dict:
    """The payload of a signed media link for operation ``op`` ("get", "put", "pkg"), or
    403 saying whether it expired (reload the page) or is not valid at all."""
    try:
        return read_token(token, op)
    except TokenRejected as exc:
        if exc.reason == "expired":
            raise Forbidden(
                _("This link has expired. Reload the page to get a new one."), code="link_expired"
            ) from None
        raise Forbidden(_("This link is not valid."), code="link_invalid") from None


def package_file(token: str, path: str) -> PackageFile:
    """Resolve ``path`` inside the package a launch token opens (or NotFound/Forbidden)."""
    payload = link_payload(token, "pkg")
    attachment_id, user_id = payload.get("a"), payload.get("u")
    if not isinstance(attachment_id, str) or not (user_id is None or isinstance(user_id, int)):
        raise Forbidden(_("This link is not valid."), code="link_invalid")
    user = db.session.get(User, user_id) if user_id is not None else None
    if user_id is not None and (user is None or not user.is_active):
        raise NotFound("File not found.")
    # Checked on every file: a viewer who lost access mid-session loses the package too.
    attachment, resource = visible_attachment(user, attachment_id)
    info = (attachment.object.meta or {}).get("h5p")
    if not isinstance(info, dict) or not _safe_path(path):
        raise NotFound("File not found.")
    base_url = request.host_url.rstrip("/") + url_for("media.package_file", token=token, path="")
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if path.startswith(PLAYER_FOLDER):
        content_type = content_types().get(resource.kind)
        folder = content_type.frame_assets if content_type is not None else None
        if not folder:
            raise NotFound("File not found.")
        return PackageFile(
            media_type, base_url, asset_folder=folder, asset=path[len(PLAYER_FOLDER) :]
        )
    return PackageFile(media_type, base_url, key=info["prefix"] + path)


def package_headers(base_url: str) -> dict[str, str]:
    """Headers of every package response: the sandbox applies even when the file is
    opened directly, and scripts may load and connect only inside the package folder."""
    inside = base_url
    policy = "; ".join(
        [
            "sandbox allow-scripts",
            "default-src 'none'",
            f"script-src {inside} 'unsafe-inline' 'unsafe-eval'",
            f"style-src {inside} 'unsafe-inline'",
            f"img-src {inside} data: blob:",
            f"media-src {inside} data: blob:",
            f"font-src {inside} data:",
            f"connect-src {inside}",
            f"frame-src {inside} blob: data:",
            f"worker-src {inside} blob:",
            "form-action 'none'",
            "base-uri 'none'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        # The opaque-origin frame fetches JSON and fonts cross-origin; the token in the URL
        # is the credential, never a cookie, so any origin may read what the token opens.
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "private, max-age=300",
    }


def media_context(user: User | None, resource: Resource) -> dict | None:
    """What a player needs for ``resource``: URLs (stable, permission-checked), type, name."""
    if not catalog.can_view(user, resource):
        return None
    rows = attachments_of(resource)
    primary = rows.get("primary")
    if primary is None:
        return None
    obj = primary.object
    context = {
        "attachment_id": primary.public_id,
        "url": url_for("media.open_file", attachment_id=primary.public_id),
        "download_url": url_for("media.open_file", attachment_id=primary.public_id, download=1),
        "media_type": obj.media_type,
        "filename": primary.filename,
        "size": obj.size,
        "duration": (obj.meta or {}).get("duration"),
        "poster_url": None,
        "thumbnail_url": None,
        "h5p_base": None,
        "frame_url": None,
        "frame_origin": None,
    }
    for variant in ("poster", "thumbnail"):
        if obj.derivative(variant) is not None:
            context[f"{variant}_url"] = url_for(
                "media.open_file", attachment_id=primary.public_id, variant=variant
            )
    if (obj.meta or {}).get("h5p"):
        base = package_base(user, primary)
        context["h5p_base"] = base
        context["frame_url"] = base + PLAYER_FOLDER + "frame.html"
        context["frame_origin"] = package_frame_origin()
    return context
