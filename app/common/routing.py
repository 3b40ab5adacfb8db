"""URL matching shared by every feature: bounded integer path parts, and the per-app
lists of path prefixes that are JSON-only or exempt from the form CSRF check.

Integer ids are PostgreSQL ``integer`` columns: ``/things/99999999999`` would reach the
database and fail there (a 500 on PostgreSQL, a silent miss on SQLite).  The ``int``
converter of every application refuses such a path part outright, so it is a 404 for
every feature, with no per-route ``max=``.
"""

from __future__ import annotations

import builtins

from flask import Flask
from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1


class BoundedIntegerConverter(IntegerConverter):
    """``<int:x>`` that only matches 0 … 2**31-1 (or a tighter ``max=``)."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):  # noqa: A002
        max = MAX_ID if max is None else builtins.min(max, MAX_ID)  # noqa: A001
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def install(app: Flask) -> None:
    """Before any route is added: the bounded ``int`` converter, and fresh prefix lists."""
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.config["JSON_PREFIXES"] = list(app.config.get("JSON_PREFIXES") or ["/api/"])
    app.config["CSRF_EXEMPT_PREFIXES"] = list(
        app.config.get("CSRF_EXEMPT_PREFIXES") or ["/lti/", "/xapi/", "/healthz"]
    )


def add_json_prefix(app: Flask, prefix: str) -> None:
    """Requests under ``prefix`` come from programs: errors answer in the JSON envelope."""
    if prefix not in app.config["JSON_PREFIXES"]:
        app.config["JSON_PREFIXES"].append(prefix)


def add_csrf_exempt_prefix(app: Flask, prefix: str) -> None:
    """Requests under ``prefix`` never carry a form of ours (token-, signature- or
    Basic-authenticated), so the form CSRF check is skipped for them."""
    if prefix not in app.config["CSRF_EXEMPT_PREFIXES"]:
        app.config["CSRF_EXEMPT_PREFIXES"].append(prefix)
