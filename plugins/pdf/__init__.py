# ruff: noqa: S704  (every value put in the HTML below is escaped)
"""PDF documents: an in-page viewer built on pdfjs-dist (vendored in static/vendor/pdfjs).

Reports ``opened`` when the document loads, ``progressed`` as pages are viewed (result
``progress`` = furthest page / page count) and ``completed`` on the last page.
"""

from __future__ import annotations

from flask import Blueprint, url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape

from app import hooks

bp = Blueprint("pdf_plugin", __name__, static_folder="static")


def player(resource, context=None) -> str:
    if resource.kind != "document":
        return ""
    media = hooks.resource_media(resource)
    if media is None:
        return Markup(
            f'<p class="meta player-empty">{escape(_("No file has been uploaded yet."))}</p>'
        )
    if media["media_type"] != "application/pdf":
        return Markup(
            f'<p><a class="button" href="{escape(media["download_url"])}">'
            f"{escape(_('Download'))}</a></p>"
        )
    lib = url_for("pdf_plugin.static", filename="vendor/pdfjs/pdf.min.mjs")
    worker = url_for("pdf_plugin.static", filename="vendor/pdfjs/pdf.worker.min.mjs")
    viewer = url_for("pdf_plugin.static", filename="viewer.mjs")
    return Markup(
        f'<div class="pdf-viewer" data-src="{escape(media["url"])}" '
        f'data-resource="{escape(resource.content_id)}" '
        f'data-lib="{escape(lib)}" data-worker="{escape(worker)}">'
        f'<div class="pdf-toolbar"><button type="button" class="button pdf-prev">'
        f"{escape(_('Previous page'))}</button> "
        f'<span class="pdf-page">…</span> '
        f'<button type="button" class="button pdf-next">{escape(_("Next page"))}</button> '
        f'<a href="{escape(media["download_url"])}">{escape(_("Download"))} '
        f"{escape(media['filename'])}</a></div>"
        f'<canvas class="pdf-canvas" style="max-width:100%;border:1px solid #ddd"></canvas></div>'
        f'{hooks.player_script()}<script type="module" src="{escape(viewer)}"></script>'
    )


def register(ctx: hooks.PluginContext) -> None:
    ctx.register_blueprint(bp)
    ctx.register_content_type(
        hooks.ContentType(
            kind="document", label="PDF document", player=player, accepts=("application/pdf",)
        )
    )
    ctx.add_to_slot(
        "resource_page_player", lambda resource=None, **kw: player(resource) if resource else ""
    )
