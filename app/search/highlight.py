"""Highlighting in the original text.

The same tokenizers that fill the index run over the stored original text with
character offsets; every token that matches a query term gives a span, overlapping
spans are merged so the longest matching word is marked whole (``七年级``, not ``年级``),
and pinyin matches mark the Chinese word they were made from.  The output escapes
everything except our own ``<mark>`` tags.
"""

from __future__ import annotations

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


_ZH = analysis.ChineseTokenizer(search_mode=True)
_PY = analysis.PinyinTokenizer(initials=False)
_PYI = analysis.PinyinTokenizer(initials=True)


def match_spans(text: str, terms: MatchTerms) -> list[tuple[int, int]]:
    if not text or not terms:
        return []
    spans = []
    if terms.zh:
        spans += [(t.startchar, t.endchar) for t in _ZH(text, chars=True) if t.text in terms.zh]
    if terms.en:
        spans += [
            (t.startchar, t.endchar)
            for t in analysis.english_analyzer()(text, chars=True)
            if t.text in terms.en
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
    return [(s, e) for s, e in merged]


def highlight(text: str, terms: MatchTerms, max_chars: int | None = None) -> Markup:
    """``text`` escaped, matches wrapped in ``<mark>``; cut to a window of ``max_chars``
    around the first match when longer."""
    text = text or ""
    spans = match_spans(text, terms)
    start, end = 0, len(text)
    if max_chars and len(text) > max_chars:
        first = spans[0][0] if spans else 0
        start = max(0, min(first - max_chars // 4, len(text) - max_chars))
        end = start + max_chars
    out = [Markup("…") if start > 0 else Markup("")]
    cursor = start
    for s, e in spans:
        if e <= start or s >= end:
            continue
        s, e = max(s, start), min(e, end)
        out.append(escape(text[cursor:s]))
        out.append(Markup("<mark>") + escape(text[s:e]) + Markup("</mark>"))
        cursor = e
    out.append(escape(text[cursor:end]))
    if end < len(text):
        out.append(Markup("…"))
    return Markup("").join(out)
