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


def _texts() -> dict:
    """Translated, escaped labels (extracted by pybabel; f-strings hide calls from it)."""
    return {
        "download": escape(_("Download")),
        "next_page": escape(_("Next page")),
        "previous_page": escape(_("Previous page")),
        "no_file_has_been_uploaded_yet": escape(_("No file has been uploaded yet.")),
    }


bp = Blueprint("pdf_plugin", __name__, static_folder="static")


def player(resource, context=None) -> str:
    text = _texts()
    if resource.kind != "document":
        return ""
    media = hooks.resource_media(resource)
    if media is None:
        return Markup(f'<p class="meta player-empty">{text["no_file_has_been_uploaded_yet"]}</p>')
    if media["media_type"] != "application/pdf":
        return Markup(
            f'<p><a class="button" href="{escape(media["download_url"])}">'
            f"{text['download']}</a></p>"
        )
    lib = url_for("pdf_plugin.static", filename="vendor/pdfjs/pdf.min.mjs")
    worker = url_for("pdf_plugin.static", filename="vendor/pdfjs/pdf.worker.min.mjs")
    viewer = url_for("pdf_plugin.static", filename="viewer.mjs")
    return Markup(
        f'<div class="pdf-viewer" data-src="{escape(media["url"])}" '
        f'data-resource="{escape(resource.content_id)}" '
        f'data-lib="{escape(lib)}" data-worker="{escape(worker)}">'
        f'<div class="pdf-toolbar"><button type="button" class="button pdf-prev">'
        f"{text['previous_page']}</button> "
        f'<span class="pdf-page">…</span> '
        f'<button type="button" class="button pdf-next">{text["next_page"]}</button> '
        f'<a href="{escape(media["download_url"])}">{text["download"]} '
        f"{escape(media['filename'])}</a></div>"
        f'<canvas class="pdf-canvas" style="max-width:100%;border:1px solid #ddd"></canvas></div>'
        f'{hooks.player_script()}<script type="module" src="{escape(viewer)}"></script>'
    )


def register(ctx: hooks.PluginContext) -> None:
    ctx.register_blueprint(bp)
    ctx.register_player(
        hooks.ContentType(
            kind="document", label="PDF document", player=player, accepts=("application/pdf",)
        )
    )
