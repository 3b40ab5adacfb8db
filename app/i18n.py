"""Language selection: ?lang= → the user's choice in the session → browser → zh_CN.

Translations live in each feature's ``translations/`` folder (so features do not edit
one shared catalogue); they are merged at start.
"""

from __future__ import annotations

import contextlib
import functools
import re
from pathlib import Path
from weakref import WeakKeyDictionary

from babel import Locale
from flask import Flask, current_app, request, session
from flask_babel import force_locale, get_locale, get_translations


class CatalogueLocale(Locale):
    """Babel parses ``zh_CN`` as ``zh_Hans_CN``, and gettext then never looks in the
    ``zh_CN`` catalogue folders; this locale keeps Babel's data but is named ``zh_CN``."""

    catalogue_name: str | None = None

    def __str__(self) -> str:
        return self.catalogue_name or super().__str__()


@functools.cache
def catalogue_locale(code: str) -> Locale:
    """The Locale of a supported code (``zh_CN``, ``en``) whose catalogue folders gettext
    finds; use it with ``force_locale`` rather than the string."""
    # One parsed Locale per supported code for the life of the process: parsing (and
    # Babel's locale-data lookups, two stat() calls) on every request showed in profiles.
    parsed = Locale.parse(code)
    locale = CatalogueLocale(parsed.language, parsed.territory, parsed.script, parsed.variant)
    locale.catalogue_name = code
    return locale


def select_locale() -> Locale:
    return catalogue_locale(_select_code())


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


def language_chosen() -> bool:
    """Whether the request names a language (``?lang=``, the session's choice or an
    Accept-Language header), rather than falling back to the default."""
    if not request:
        return False
    supported = current_app.config["LANGUAGES"]
    return (
        request.args.get("lang") in supported
        or session.get("lang") in supported
        or bool(request.headers.get("Accept-Language"))
    )


def current_language() -> str:
    return str(get_locale() or "zh_CN")


def translation_directories() -> list[str]:
    app_root = Path(__file__).resolve().parent
    folders = [app_root / "translations"] + sorted(app_root.glob("*/translations"))
    return [str(folder) for folder in folders if folder.is_dir()]


def in_both_languages(lines) -> str:
    """``lines`` in Chinese, then in English: the message of a command in a terminal,
    which has no reader's language to choose by.  A line is plain text, a function that
    translates (``lambda: gettext("…", count=n)``: ``gettext`` so that ``pybabel
    extract`` finds the text), or a tuple of those joined (a path beside a phrase)."""

    def render(part) -> str:
        if isinstance(part, tuple):
            return "".join(render(p) for p in part)
        return part() if callable(part) else str(part)

    blocks = []
    for code in ("zh_CN", "en"):
        with force_locale(catalogue_locale(code)):
            blocks.append("\n".join(render(line) for line in lines))
    return "\n".join(blocks)


def init_app(app: Flask) -> None:
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(translation_directories())

    @app.context_processor
    def _language():
        lang = current_language()
        return {"current_language": lang, "is_english": lang.startswith("en")}


# --- Messages services raise in English -------------------------------------------------
#
# Services raise errors with English text (``Invalid("Unknown grade 'g13'.")``); the
# catalogue holds them as ids, the variable parts as ``%(name)s`` placeholders
# ("Unknown grade '%(grade)s'.").  The page or JSON envelope shows them in the reader's
# language: an exact id first, else the first placeholder id whose shape matches, with
# the matched parts put back into its translation.  tests/test_error_messages.py finds
# every such message in the source and checks that the zh_CN catalogue has it.


def N_(message: str) -> str:
    """Mark a message for the catalogue (extraction finds ``N_("…")``); it is translated
    where it is shown, through :func:`translate_message`."""
    return message


_PLACEHOLDER = re.compile(r"%\((\w*)\)s")
_patterns_cache: WeakKeyDictionary = WeakKeyDictionary()


def _message_patterns(translations) -> list[tuple[re.Pattern, str, list[str]]]:
    cached = _patterns_cache.get(translations)
    if cached is not None:
        return cached
    catalog = getattr(translations, "_catalog", {})
    # A placeholder may hold a catalogue phrase ("greater than or equal to" in marshmallow's
    # "Must be {min_op} {min}…"); trying those first, longest first, splits such a message
    # where it was joined rather than at the first space.
    phrases = sorted(
        (
            m
            for m in catalog
            if isinstance(m, str) and "%" not in m and len(m) <= 40 and m[:1].islower()
        ),
        key=len,
        reverse=True,
    )
    value = "(" + "".join(re.escape(p) + "|" for p in phrases) + ".+?)"
    patterns = []
    for msgid in catalog:
        if not isinstance(msgid, str) or "%(" not in msgid:
            continue
        names = _PLACEHOLDER.findall(msgid)
        literal = _PLACEHOLDER.split(msgid)[::2]
        if not "".join(literal).strip():
            continue  # nothing but placeholders: would match anything
        regex = value.join(re.escape(part.replace("%%", "%")) for part in literal)
        patterns.append((re.compile(regex, re.DOTALL), msgid, names))
    # Longest literal text first: the most specific shape wins.
    patterns.sort(key=lambda entry: -len(_PLACEHOLDER.sub("", entry[1])))
    # NullTranslations of some versions cannot be weakly referenced: then no cache.
    with contextlib.suppress(TypeError):
        _patterns_cache[translations] = patterns
    return patterns


def translate_message(message) -> str:
    """A service's English message in the reader's language when the catalogue has it."""
    if not message:
        return ""
    message = str(message)
    translations = get_translations()
    translated = translations.ugettext(message)
    if translated != message or current_language().startswith("en"):
        return translated
    for regex, msgid, names in _message_patterns(translations):
        match = regex.fullmatch(message)
        if match is None:
            continue
        # A matched part may itself be catalogue text (marshmallow's "greater than").
        values = {
            name: translations.ugettext(value)
            for name, value in zip(names, match.groups(), strict=False)
        }
        text = translations.ugettext(msgid)
        try:
            return text % values
        except (KeyError, ValueError, TypeError):
            return message
    return message


def translate_fields(fields):
    """Field messages (a dict of lists or nested dicts, as marshmallow gives them)
    translated; the field names are left as they are (they name the input)."""
    if isinstance(fields, dict):
        return {key: translate_fields(value) for key, value in fields.items()}
    if isinstance(fields, list | tuple):
        return [translate_fields(value) for value in fields]
    if isinstance(fields, str):
        return translate_message(fields)
    return fields


def flat_fields(fields, prefix: str = "") -> list[tuple[str, list[str]]]:
    """``{"a": {"b": ["x"]}, "c": ["y"]}`` → ``[("a.b", ["x"]), ("c", ["y"])]`` for a page."""
    result: list[tuple[str, list[str]]] = []
    for name, value in (fields or {}).items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if isinstance(value, dict):
            result.extend(flat_fields(value, key))
        elif isinstance(value, list | tuple):
            texts = [translate_message(v) for v in value if not isinstance(v, dict | list)]
            for nested in value:
                if isinstance(nested, dict):
                    result.extend(flat_fields(nested, key))
            if texts:
                result.append((key, texts))
        else:
            result.append((key, [translate_message(value)]))
    return result
