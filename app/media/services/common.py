"""Settings, names and keys shared by the media sub-domains."""

from __future__ import annotations

import re
import unicodedata

from blinker import Signal
from flask import current_app

from app.common.events import send_after_commit
from app.errors import Invalid
from app.plugins import content_types

MIN_PART = 8 * 1024**2
MAX_PART = 64 * 1024**2
MAX_PARTS = 10_000
MAX_FILENAME = 255
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SHA256 = re.compile(r"^[0-9a-f]{64}$")

# Used when no plugin registered the kind (plugins normally declare ``accepts``).
DEFAULT_ACCEPTS = {
    "video": ("video/mp4", "video/webm", "video/ogg", "video/quicktime"),
    "audio": ("audio/mpeg", "audio/mp4", "audio/ogg", "audio/wav", "audio/flac", "audio/webm"),
    "document": ("application/pdf",),
    "image": ("image/png", "image/jpeg", "image/gif", "image/webp"),
    "interactive": ("application/zip",),
}

# A job must only start once the rows it reads are committed; the framework delivers this
# (private) signal right after the request's or the job's commit.
jobs_due = Signal("media jobs due after commit")


def setting(name: str):
    return current_app.config[name]


def enqueue_after_commit(path: str, *args) -> None:
    """Run job ``path`` once the current unit of work has committed (never before)."""
    send_after_commit(jobs_due, path=path, args=args)


def accepted_types(kind: str) -> tuple[str, ...]:
    content_type = content_types().get(kind)
    if content_type is not None and content_type.accepts:
        return tuple(content_type.accepts)
    return DEFAULT_ACCEPTS.get(kind, ())


def clean_filename(name: str | None) -> str:
    """The file name as given (Chinese kept), or :class:`Invalid` with the reason."""
    field = "filename"
    if name is None or not str(name).strip():
        raise Invalid("The file needs a name.", fields={field: ["Missing file name."]})
    name = unicodedata.normalize("NFC", str(name)).strip()
    if CONTROL.search(name):
        raise Invalid(
            "The file name contains control characters.", fields={field: ["Control characters."]}
        )
    if "/" in name or "\\" in name or name in (".", "..") or ".." in name.split("."):
        raise Invalid(
            "The file name must not contain a path (/, \\ or ..).",
            fields={field: ["Path in name."]},
        )
    if len(name) > MAX_FILENAME:
        raise Invalid(
            f"The file name is longer than {MAX_FILENAME} characters.",
            fields={field: [f"At most {MAX_FILENAME} characters."]},
        )
    return name


def object_key(checksum: str) -> str:
    """Content-addressed key: identical bytes are stored once, whoever uploads them."""
    return f"sha256/{checksum[:2]}/{checksum}"
