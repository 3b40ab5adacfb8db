"""Language selection: ?lang= → the user's choice in the session → browser → zh_CN.

Translations live in each feature's ``translations/`` folder (so features do not edit
one shared catalogue); they are merged at start.
"""

from __future__ import annotations

import functools
from pathlib import Path

from babel import Locale
from flask import Flask, current_app, request, session
from flask_babel import get_locale


class CatalogueLocale(Locale):
    """Babel parses ``zh_CN`` as ``zh_Hans_CN``, and gettext then never looks in the
    ``zh_CN`` catalogue folders; this locale keeps Babel's data but is named ``zh_CN``."""

    catalogue_name: str | None = None

    def __str__(self) -> str:
        return self.catalogue_name or super().__str__()


@functools.cache
def _locale(code: str) -> Locale:
    # One parsed Locale per supported code for the life of the process: parsing (and
    # Babel's locale-data lookups, two stat() calls) on every request showed in profiles.
    parsed = Locale.parse(code)
    locale = CatalogueLocale(parsed.language, parsed.territory, parsed.script, parsed.variant)
    locale.catalogue_name = code
    return locale


def select_locale() -> Locale:
    return _locale(_select_code())


def _select_code() -> str:
    supported = current_app.config["LANGUAGES"]
    wanted = request.args.get("lang") if request else None
    if wanted in supported:
        session["lang"] = wanted
        return wanted
    if request and session.get("lang") in supported:
        return session["lang"]
    if request:
        best = request.accept_languages.best_match(supported + ["zh", "en-US", "en-GB"])
        if best:
            return "en" if best.startswith("en") else "zh_CN"
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def current_language() -> str:
    return str(get_locale() or "zh_CN")


def translation_directories() -> list[str]:
    app_root = Path(__file__).resolve().parent
    folders = [app_root / "translations"] + sorted(app_root.glob("*/translations"))
    return [str(folder) for folder in folders if folder.is_dir()]


def init_app(app: Flask) -> None:
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(translation_directories())

    @app.context_processor
    def _language():
        lang = current_language()
        return {"current_language": lang, "is_english": lang.startswith("en")}
