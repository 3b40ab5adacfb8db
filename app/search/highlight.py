"""Highlighting in the original text.

The same tokenizers that fill the index run over the stored original text with
character offsets; every token that matches a query term gives a span, overlapping
spans are merged so the longest matching word is marked whole (``七年级``, not ``年级``),
and pinyin matches mark the Chinese word they were made from.  The output escapes
everything except our own ``<mark>`` tags.

Long texts are cut to a window around the first place a query term can occur before
anything is tokenised, so highlighting costs the same for a title and for a long
description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from app.search import analysis


@dataclass
class MatchTerms:
    zh: set[str] = field(default_factory=set)  # lowercase jieba words / latin words as written
    en: set[str] = field(default_factory=set)  # English stems
    py: set[str] = field(default_factory=set)  # full pinyin
    pyi: set[str] = field(default_factory=set)  # pinyin initials

    def __bool__(self) -> bool:
        return bool(self.zh or self.en or self.py or self.pyi)

    def first_position(self, text: str) -> int | None:
        """Where a match may start (a cheap over-estimate), or None when none can."""
        lowered = text.lower()
        positions = [lowered.find(term) for term in self.zh]
        positions += [lowered.find(stem[:4]) for stem in self.en]
        positions = [p for p in positions if p >= 0]
        if (self.py or self.pyi) and analysis.is_cjk(text):
            first_cjk = analysis.CJK.search(text)
            positions.append(first_cjk.start() if first_cjk else 0)
        return min(positions) if positions else None


_PY = analysis.PinyinTokenizer(initials=False)
_PYI = analysis.PinyinTokenizer(initials=True)
_LATIN = re.compile(r"[A-Za-z]")


def match_spans(text: str, terms: MatchTerms, offset: int = 0) -> list[tuple[int, int]]:
    """Matched ``(start, end)`` character spans of ``text`` (plus ``offset``), merged."""
    if not text or not terms:
        return []
    lowered = text.lower()
    spans = []
    if terms.zh and any(term in lowered for term in terms.zh):
        # The Chinese tokenizer's tokens (search mode, stripped, stop words dropped,
        # lowercased), but only of the jieba blocks where a term occurs: a token equal
        # to a term lies in a block containing it, and jieba segments blocks separately.
        spans += [
            (start, end)
            for word, start, end in analysis.segments_containing(text, terms.zh)
            if (stripped := word.strip())
            and analysis.keep_word(stripped)
            and stripped.lower() in terms.zh
        ]
    if terms.en and _LATIN.search(text):
        analyzer = analysis.english_analyzer()
        spans += [
            (t.startchar, t.endchar) for t in analyzer(text, chars=True) if t.text in terms.en
        ]
    if (terms.py or terms.pyi) and analysis.is_cjk(text):
        if terms.py:
            spans += [(t.startchar, t.endchar) for t in _PY(text, chars=True) if t.text in terms.py]
        if terms.pyi:
            spans += [
                (t.startchar, t.endchar) for t in _PYI(text, chars=True) if t.text in terms.pyi
            ]
    spans.sort()
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s + offset, e + offset) for s, e in merged]


def highlight(text: str, terms: MatchTerms, max_chars: int | None = None) -> Markup:
    """``text`` escaped, matches wrapped in ``<mark>``; cut to a window of ``max_chars``
    around the first match when longer."""
    text = text or ""
    start, end = 0, len(text)
    if max_chars and len(text) > max_chars:
        first = terms.first_position(text) if terms else None
        first = first or 0
        start = max(0, min(first - max_chars // 4, len(text) - max_chars))
        end = start + max_chars
    spans = match_spans(text[start:end], terms, offset=start) if terms else []
    # Plain strings joined once: every piece of text goes through ``escape``, only our
    # own tags are added unescaped (Markup's own ``+``/``join`` escaped each piece
    # again: a third of the highlighting time in the 100k profile, docs/search.md).
    out = ["…" if start > 0 else ""]
    cursor = start
    for s, e in spans:
        out.append(str(escape(text[cursor:s])))
        out.append("<mark>" + str(escape(text[s:e])) + "</mark>")
        cursor = e
    out.append(str(escape(text[cursor:end])))
    if end < len(text):
        out.append("…")
    return Markup("".join(out))  # noqa: S704  (every piece of text escaped above)


def has_match(text: str, terms: MatchTerms) -> bool:
    if not text or not terms or terms.first_position(text) is None:
        return False
    window = text
    if len(text) > 400:
        first = terms.first_position(text) or 0
        window = text[max(0, first - 50) : first + 350]
    return bool(match_spans(window, terms))
