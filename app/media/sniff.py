"""What a file really is, from its first bytes (never from its name)."""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

# ISO base media (MP4/MOV/M4A): box "ftyp" at offset 4, then the major brand.
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"F4A "}
_QUICKTIME_BRANDS = {b"qt  "}


def sniff(head: bytes) -> str | None:
    """The media type of content starting with ``head`` (give 4 KB or more), or None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AUDIO_BRANDS:
            return "audio/mp4"
        if brand in _QUICKTIME_BRANDS:
            return "video/quicktime"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/x-matroska" if b"matroska" in head[:64] else "video/webm"
    if head.startswith(b"OggS"):
        return "audio/ogg" if b"vorbis" in head[:128] or b"Opus" in head[:128] else "video/ogg"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"ID3") or (
        len(head) > 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0
    ):
        return "audio/mpeg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None


def describe(head: bytes) -> str:
    """A human name for content we do not accept (for error messages)."""
    known = sniff(head)
    if known:
        return known
    try:
        import puremagic

        matches = puremagic.magic_string(head)
        if matches:
            best = matches[0]
            return best.mime_type or best.name
    except Exception as exc:  # puremagic raises on content it does not know
        log.debug("puremagic could not identify the upload: %s", exc)
    if head and not re.search(rb"[\x00-\x08\x0e-\x1f]", head[:1024]):
        return "text"
    return "unknown binary data"
