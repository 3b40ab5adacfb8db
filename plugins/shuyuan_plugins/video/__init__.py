# ruff: noqa: S704  (every value put in the HTML below is escaped)
"""Video and audio: HTML5 players reporting played / paused / seeked / completed / progressed.

Imports only ``app.hooks`` from Shuyuan (plus Flask and MarkupSafe).
"""

from __future__ import annotations

from flask_babel import gettext as _
from markupsafe import Markup, escape

from app import hooks

VIDEO_TYPES = ("video/mp4", "video/webm", "video/ogg", "video/quicktime")
AUDIO_TYPES = ("audio/mpeg", "audio/mp4", "audio/ogg", "audio/wav", "audio/flac", "audio/webm")


def _texts() -> dict:
    """Translated, escaped labels (extracted by pybabel; f-strings hide calls from it)."""
    return {
        "download": escape(_("Download")),
        "no_file_has_been_uploaded_yet": escape(_("No file has been uploaded yet.")),
    }


def player(resource, context=None) -> str:
    text = _texts()
    if resource.kind not in ("video", "audio"):
        return ""
    media = hooks.resource_media(resource)
    if media is None:
        return Markup(f'<p class="meta player-empty">{text["no_file_has_been_uploaded_yet"]}</p>')
    rid = escape(resource.content_id)
    url = escape(media["url"])
    duration = ""
    if media.get("duration"):
        seconds = int(media["duration"])
        duration = f'<span class="meta">{seconds // 60}:{seconds % 60:02d}</span>'
    if resource.kind == "video" and media["media_type"].startswith("video/"):
        poster = f' poster="{escape(media["poster_url"])}"' if media.get("poster_url") else ""
        element = (
            f'<video class="player-media" controls preload="metadata" playsinline{poster} '
            f'data-shuyuan-media="{rid}" src="{url}" '
            f'style="width:100%;max-height:70vh;background:#000">'
            f"</video>"
        )
    else:
        element = (
            f'<audio class="player-media" controls preload="metadata" data-shuyuan-media="{rid}" '
            f'src="{url}" style="width:100%"></audio>'
        )
    download = escape(media["download_url"])
    name = escape(media["filename"])
    return Markup(
        f'<div class="player player-{escape(resource.kind)}">{element}'
        f'<p class="meta">{duration} <a href="{download}">{text["download"]} {name}</a>'
        f"</p></div>"
        f"{hooks.player_script()}"
    )


def register(ctx: hooks.PluginContext) -> None:
    ctx.register_player(
        hooks.ContentType(kind="video", label="Video", player=player, accepts=VIDEO_TYPES),
        hooks.ContentType(kind="audio", label="Audio", player=player, accepts=AUDIO_TYPES),
    )
