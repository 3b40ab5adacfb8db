# ruff: noqa: S704  (every value put in the HTML below is escaped)
"""Web links: reports ``opened`` when a learner follows the resource's link."""

from __future__ import annotations

from urllib.parse import urlsplit

from markupsafe import Markup, escape

from app import hooks


def player(resource, context=None) -> str:
    if resource.kind != "link" or not resource.url:
        return ""
    parts = urlsplit(resource.url)
    if parts.scheme not in ("http", "https"):
        return ""
    rid = escape(resource.content_id)
    # The resource page already shows the "Open link" button; this tracks clicks on it.
    return Markup(
        f'<p class="meta weblink-host" data-shuyuan-link="{escape(resource.url)}" '
        f'data-resource="{rid}">'
        f"{escape(parts.hostname or '')}</p>{hooks.player_script()}"
        f'<script nonce="{escape(hooks.csp_nonce())}">'
        'document.addEventListener("click",function(e){'
        'var a=e.target.closest&&e.target.closest("a[href]");if(!a){return;}'
        'var m=document.querySelector("[data-shuyuan-link]");'
        "if(m&&a.href===new URL(m.dataset.shuyuanLink,location.href).href){"
        'Shuyuan.report(m.dataset.resource,"opened",{context:{url:a.href}});}});</script>'
    )


def register(ctx: hooks.PluginContext) -> None:
    ctx.register_player(hooks.ContentType(kind="link", label="Web link", player=player, accepts=()))
