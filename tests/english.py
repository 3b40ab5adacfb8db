"""A heuristic detector of English prose in a page or message meant to be Chinese.

Chinese pages legitimately contain Latin letters: brand names (Shuyuan, xAPI, LTI),
codes and identifiers (statementId, application/json, CFPackage, 7a1c…), e-mail
addresses, URLs, the "English" language switch.  Prose is what must not be there:
two or more plain English words in a row ("Not found", "The file is empty"), or one
of the small words English sentences cannot do without ("the", "must", "not").

:func:`english_in` returns the offending fragments (empty when the text reads as
Chinese).  Extend ``ALLOWED`` for a new brand name, never for a sentence.
"""

from __future__ import annotations

import re

# Names and codes that stay as they are in a Chinese page.
ALLOWED = {
    "Shuyuan",
    "English",
    "xAPI",
    "LTI",
    "LMS",
    "LRS",
    "API",
    "APIs",
    "JSON",
    "IRI",
    "UUID",
    "ETag",
    "HTTP",
    "HTTPS",
    "Basic",
    "JWS",
    "PDF",
    "H5P",
    "CASE",
    "CFPackage",
    "OAuth",
    "Moodle",
    "Canvas",
    "Kolibri",
    "Swagger",
    "OpenAPI",
    "OAI",
    "PMH",
    "MinIO",
    "Bearer",
    "Token",
    "ID",
    "URL",
    "SHA",
    "CSV",
    "zip",
    "Statement",
    "SubStatement",
    "StatementRef",
    "Activity",
    "Agent",
    "Group",
    "About",
    "Agents",
    "Content",
    "Type",
}

# Words without which an English sentence can hardly be written.
SENTENCE_WORDS = {
    "the",
    "is",
    "are",
    "was",
    "must",
    "not",
    "please",
    "only",
    "this",
    "that",
    "with",
    "your",
    "you",
    "found",
    "invalid",
    "error",
    "required",
    "missing",
    "unknown",
    "and",
    "of",
    "to",
    "for",
    "cannot",
    "try",
    "again",
}

# Tokens that are code, not words: anything with a digit, _ . / : @ = [ ] { } # - or
# an inner capital (camelCase), and ALL-CAPS abbreviations.
_TOKEN = re.compile(r"[^\s,;!?()\"'<>\u0080-\uffff]+")
_CODE = re.compile(r"[\d_./:@=\[\]{}#\-\\*+%&|~^$]|[a-z][A-Z]|^[A-Z0-9]{2,}$")
_WORD = re.compile(r"^[A-Za-z]+$")


def english_in(text: str) -> list[str]:
    """Fragments of English prose in ``text`` (an empty list when there are none)."""
    found: list[str] = []
    run: list[str] = []
    previous_end = None
    for match in _TOKEN.finditer(text or ""):
        token = match.group().strip(".")
        plain = (
            token
            and not _CODE.search(token)
            and _WORD.match(token)
            and token not in ALLOWED
            and len(token) > 1
        )
        gap = text[previous_end : match.start()] if previous_end is not None else ""
        previous_end = match.end()
        if plain and run and gap.strip() == "":
            run.append(token)
            continue
        if len(run) >= 2 or (run and run[0].lower() in SENTENCE_WORDS):
            found.append(" ".join(run))
        run = [token] if plain else []
    if len(run) >= 2 or (run and run[0].lower() in SENTENCE_WORDS):
        found.append(" ".join(run))
    return found


def visible_text_of_html(html: str) -> str:
    """The text a reader sees: tags, scripts, styles and attribute values dropped."""
    html = re.sub(r"(?is)<(script|style|template)\b.*?</\1>", " ", html)
    html = re.sub(r"(?s)<!--.*?-->", " ", html)
    html = re.sub(r"(?s)<[^>]+>", " ", html)
    import html as html_module

    return html_module.unescape(html)
