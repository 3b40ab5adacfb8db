# ruff: noqa: S704  (every value put in the HTML below is escaped)
"""Images: shown in the page (thumbnail first when there is one); reports ``experienced``."""

from __future__ import annotations

from markupsafe import Markup, escape

from app import hooks

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def player(resource, context=None) -> str:
    if resource.kind != "image":
        return ""
    media = hooks.resource_media(resource)
    if media is None:
        return ""
    rid = escape(resource.content_id)
    return Markup(
        f'<figure class="player player-image"><a href="{escape(media["url"])}">'
        f'<img src="{escape(media["thumbnail_url"] or media["url"])}" '
        f'alt="{escape(media["filename"])}" '
        f'style="max-width:100%" loading="lazy"></a></figure>{hooks.player_script()}'
        f'<script nonce="{escape(hooks.csp_nonce())}">'
        f'document.addEventListener("DOMContentLoaded",function(){{'
        f'Shuyuan.report("{rid}","experienced",{{result:{{progress:1}}}});}});</script>'
    )


def register(ctx: hooks.PluginContext) -> None:
    ctx.register_player(
        hooks.ContentType(kind="image", label="Image", player=player, accepts=IMAGE_TYPES)
    )
