# ruff: noqa: S704  (every value put in the HTML below is escaped)
"""Interactive H5P packages, played with h5p-standalone (vendored in frame/vendor).

The package is checked and unpacked into storage by the media feature at upload
(paths cannot leave the package folder; size and file-count limits stop zip bombs).

A package is code written by whoever uploaded it, so it never runs in the page: the
page holds ``<iframe sandbox="allow-scripts">`` (no ``allow-same-origin``) whose
document is ``frame/frame.html``, served by the media feature under the package's own
URL with its sandbox headers (``ContentType.frame_assets``).  h5p-standalone runs
there; the frame posts ``opened``, ``xapi`` and ``resize`` messages, and
``static/player.js`` on the page accepts them only from that frame, from the expected
origin, with this launch's id, then forwards statements to ``POST /api/v1/progress``
as ``{"verb": "xapi", "statement": ...}`` with the viewer's session and CSRF token.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlencode

from flask import Blueprint, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape

from app import hooks

FRAME_ASSETS = str(Path(__file__).resolve().parent / "frame")


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
    if media is None or not media.get("frame_url"):
        return Markup(f'<p class="meta player-empty">{text["no_h_p_package_has_been_upload"]}</p>')

    # A fresh id per page view: the page accepts messages carrying it only.
    launch = secrets.token_urlsafe(16)
    page_origin = request.host_url.rstrip("/")
    src = media["frame_url"] + "#" + urlencode({"launch": launch, "origin": page_origin})
    player_js = escape(url_for("h5p_plugin.static", filename="player.js"))
    return Markup(
        f'<iframe class="h5p-frame" src="{escape(src)}" sandbox="allow-scripts" '
        f'referrerpolicy="no-referrer" title="H5P" '
        f'data-resource="{escape(resource.content_id)}" data-launch="{escape(launch)}" '
        f'data-origin="{escape(media["frame_origin"])}" '
        f'style="width:100%;height:400px;border:0"></iframe>'
        f"{hooks.player_script()}"
        f'<script src="{player_js}"></script>'
    )


def register(ctx: hooks.PluginContext) -> None:
    ctx.register_blueprint(bp)
    ctx.register_player(
        hooks.ContentType(
            kind="interactive",
            label="H5P package",
            player=player,
            accepts=("application/zip",),
            frame_assets=FRAME_ASSETS,
        )
    )
