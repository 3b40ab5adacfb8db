"""Language selection: ?lang= → the user's choice in the session → browser → zh_CN.

Translations live in each feature's ``translations/`` folder (so features do not edit
one shared catalogue); they are merged at start.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, request, session
from flask_babel import get_locale


def select_locale() -> str:
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
