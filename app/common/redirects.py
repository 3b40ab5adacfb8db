"""The one place a caller-chosen redirect target (``?next=``) is checked.

Only a path on this site is accepted.  Browsers are lenient in ways a naive check is
not: they drop tabs and newlines inside a URL (``/\\t/evil`` becomes ``//evil``, a
scheme-relative address of another host) and read a backslash as a slash, so anything
with a control character or a backslash is refused outright rather than cleaned.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import redirect, url_for
from werkzeug.wrappers import Response

DEFAULT_ENDPOINT = "catalog.browse"
MAX_LENGTH = 2000


def is_safe_path(target: str | None) -> bool:
    """True when ``target`` can only lead to a page of this site."""
    if not target or len(target) > MAX_LENGTH:
        return False
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in target) or "\\" in target:
        return False
    if not target.startswith("/") or target.startswith("//"):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def safe_next(target: str | None, default_endpoint: str = DEFAULT_ENDPOINT) -> str:
    """``target`` when it is a path of this site, else the URL of ``default_endpoint``."""
    return target if is_safe_path(target) else url_for(default_endpoint)


def redirect_next(target: str | None, default_endpoint: str = DEFAULT_ENDPOINT) -> Response:
    """A 302 to ``target`` when safe (see :func:`safe_next`), else to the default page."""
    return redirect(safe_next(target, default_endpoint))
