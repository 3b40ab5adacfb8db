# ruff: noqa: S704  (every value put in the HTML below is escaped)
"""Interactive H5P packages, played with h5p-standalone (vendored in static/vendor).

The package is checked and unpacked into storage by the media feature at upload
(paths cannot leave the package folder; size and file-count limits stop zip bombs).
The package's own xAPI events are forwarded to ``POST /api/v1/progress`` as
``{"verb": "xapi", "statement": ...}``.
"""

from __future__ import annotations

from flask import Blueprint, url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape

from app import hooks


def _texts() -> dict:
    """Translated, escaped labels (extracted by pybabel; f-strings hide calls from it)."""
    return {
        "no_h_p_package_has_been_upload": escape(_("No H5P package has been uploaded yet.")),
    }


bp = Blueprint("h5p_plugin", __name__, static_folder="static")


def player(resource, context=None) -> str:
    text = _texts()
    if resource.kind != "interactive":
        return ""
    media = hooks.resource_media(resource)
    if media is None or not media.get("h5p_base"):
        return Markup(f'<p class="meta player-empty">{text["no_h_p_package_has_been_upload"]}</p>')

    def static(name):
        return escape(url_for("h5p_plugin.static", filename=name))

    return Markup(
        f'<div class="h5p-player" data-base="{escape(media["h5p_base"])}" '
        f'data-resource="{escape(resource.content_id)}" '
        f'data-frame-js="{static("vendor/h5p-standalone/frame.bundle.js")}" '
        f'data-frame-css="{static("vendor/h5p-standalone/styles/h5p.css")}"></div>'
        f"{hooks.player_script()}"
        f'<script src="{static("vendor/h5p-standalone/main.bundle.js")}"></script>'
        f'<script src="{static("player.js")}"></script>'
    )


def register(ctx: hooks.PluginContext) -> None:
    ctx.register_blueprint(bp)
    ctx.register_content_type(
        hooks.ContentType(
            kind="interactive", label="H5P package", player=player, accepts=("application/zip",)
        )
    )
    ctx.add_to_slot(
        "resource_page_player", lambda resource=None, **kw: player(resource) if resource else ""
    )
