"""Query understanding: normalising what was typed, recognising facet words, turning
words into term groups, splitting unknown Chinese words and suggesting corrections."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from app.catalog import vocab
from app.search import analysis
from app.search.backend import SearchBackend, TermGroup
from app.search.highlight import MatchTerms

MAX_QUERY_CHARS = 200
MAX_WORDS = 12
_SPACE = re.compile(r"\s+")


# Extra words that name a facet value, beyond the vocabulary labels.
_FACET_SYNONYMS = {
    ("kind", "video"): ["videos", "视频课", "微课"],
    ("kind", "audio"): ["音频", "录音"],
    ("kind", "document"): ["documents", "doc", "文档", "讲义"],
    ("kind", "image"): ["images", "picture", "pictures", "图片"],
    ("kind", "exercise"): ["exercises", "练习题", "习题", "quiz"],
    ("kind", "interactive"): ["课件"],
    ("subject", "math"): ["math", "maths"],
    ("subject", "politics"): ["道法"],
    ("subject", "it"): ["信息技术"],
    ("subject", "pe"): ["体育"],
    ("grade", "g7"): ["初一"],
    ("grade", "g8"): ["初二"],
    ("grade", "g9"): ["初三"],
    ("grade", "g10"): ["高一年级"],
    ("grade", "g11"): ["高二年级"],
    ("grade", "g12"): ["高三年级"],
}

_FACET_WORD_VOCABS = (
    ("kind", vocab.RESOURCE_KINDS),
    ("subject", vocab.SUBJECTS),
    ("grade", vocab.GRADES),
    ("edition", vocab.EDITIONS),
)


def _facet_lexicon() -> dict[str, tuple[str, str]]:
    lexicon: dict[str, tuple[str, str]] = {}
    for facet, table in _FACET_WORD_VOCABS:
        for code, (zh, en) in table.items():
            lexicon.setdefault(zh.lower(), (facet, code))
            lexicon.setdefault(en.lower(), (facet, code))
    for (facet, code), words in _FACET_SYNONYMS.items():
        for word in words:
            lexicon.setdefault(word.lower(), (facet, code))
    # "Sports"/"Music" style category words stay text: they also describe resources.
    return lexicon


FACET_LEXICON = _facet_lexicon()
_LEXICON_MAX_TOKENS = 5
_VOWELS = set("aeiouv")


def normalise_query(q: str | None) -> str:
    q = unicodedata.normalize("NFKC", q or "")
    q = q[: MAX_QUERY_CHARS * 4]  # cheap first cut before any real work
    # Only words survive: quotes, operators, wildcards and brackets become spaces, so no
    # input can form a query-syntax construct or an expanding wildcard.
    q = re.sub(r"[^\w\s'\-\u3400-\u9fff]", " ", q)
    q = q.replace("_", " ")
    q = _SPACE.sub(" ", q).strip()
    return q[:MAX_QUERY_CHARS]


def _tokens(text: str) -> list[str]:
    return [
        t
        for t in (w.strip() for w in analysis.segmenter().lcut(text))
        if t and analysis.WORDISH.search(t)
    ]


def _join(tokens: list[str]) -> str:
    out = ""
    for token in tokens:
        if out and not (analysis.is_cjk(out[-1]) and analysis.is_cjk(token[0])):
            out += " "
        out += token
    return out.lower()


@dataclass
class ParsedQuery:
    text: str
    words: list[str]
    facet_words: list[tuple[str, str, str]]  # (facet, code, word as typed)

    @property
    def filters(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for facet, code, _ in self.facet_words:
            result.setdefault(facet, [])
            if code not in result[facet]:
                result[facet].append(code)
        return result


def parse_query(q: str | None, facet_words: bool = True) -> ParsedQuery:
    text = normalise_query(q)
    tokens = _tokens(text)
    words: list[str] = []
    found: list[tuple[str, str, str]] = []
    i = 0
    while i < len(tokens):
        matched = False
        if facet_words:
            for n in range(min(_LEXICON_MAX_TOKENS, len(tokens) - i), 0, -1):
                phrase = _join(tokens[i : i + n])
                hit = FACET_LEXICON.get(phrase)
                if hit:
                    found.append((hit[0], hit[1], phrase))
                    i += n
                    matched = True
                    break
        if not matched:
            word = tokens[i].lower()
            if (
                word not in analysis.CHINESE_STOP
                and word not in analysis.ENGLISH_STOP
                and word not in words
            ):
                words.append(word)
            i += 1
    return ParsedQuery(text=text, words=words[:MAX_WORDS], facet_words=found)


def _looks_like_initials(word: str) -> bool:
    return word.isascii() and word.isalpha() and 2 <= len(word) <= 6 and not (set(word) & _VOWELS)


def term_group(word: str) -> TermGroup:
    if analysis.is_cjk(word):
        return TermGroup(word, [("title_zh", word, 1.0), ("body_zh", word, 1.0)])
    stemmed = analysis.stem(word) if word.isascii() else word
    alternatives = [("title_en", stemmed, 1.0), ("body_en", stemmed, 1.0), ("title_zh", word, 0.5)]
    if word.isascii() and word.isalpha():
        alternatives.append(("py", word, 1.0))
        if _looks_like_initials(word):
            alternatives.append(("pyi", word, 1.0))
    return TermGroup(word, alternatives)


def frequency_keys(words: list[str]) -> list[tuple[str, str]]:
    """Every ``(field, text)`` whose document frequency query understanding,
    did-you-mean, highlighting and ranking will ask about for ``words``."""
    keys = []
    for word in words:
        keys.extend((f, t) for f, t, _ in term_group(word).alternatives)
        if word.isascii() and word.isalpha():
            keys.extend((("py", word), ("pyi", word)))
    return keys


def match_terms(words: list[str], backend: SearchBackend | None = None) -> MatchTerms:
    """What to mark in the results.  Pinyin is only looked for when the word is indexed
    as pinyin (so "tea" does not make every Chinese word a pinyin candidate)."""
    terms = MatchTerms()
    for word in words:
        if analysis.is_cjk(word):
            terms.zh.add(word)
        else:
            terms.zh.add(word)
            if word.isascii():
                terms.en.add(analysis.stem(word))
            if word.isascii() and word.isalpha():
                if backend is None or backend.doc_frequency("py", word):
                    terms.py.add(word)
                if _looks_like_initials(word) and (
                    backend is None or backend.doc_frequency("pyi", word)
                ):
                    terms.pyi.add(word)
    return terms


def _word_known(backend: SearchBackend, group: TermGroup) -> bool:
    return any(backend.doc_frequency(f, text) for f, text, _ in group.alternatives)


def expand_unknown_words(backend: SearchBackend, parsed: ParsedQuery) -> ParsedQuery:
    """A long Chinese query word the index does not know (分数加法: the text says
    分数的加法) is replaced by its dictionary sub-words (分数, 加法)."""
    words: list[str] = []
    for word in parsed.words:
        if len(word) >= 3 and analysis.is_cjk(word) and not _word_known(backend, term_group(word)):
            parts = [
                p for p in analysis.segmenter().cut_for_search(word) if p != word and len(p) >= 2
            ]
            # keep a non-overlapping cover, longest first
            chosen: list[tuple[int, str]] = []
            taken = [False] * len(word)
            for part in sorted(dict.fromkeys(parts), key=len, reverse=True):
                start = word.find(part)
                while start >= 0 and any(taken[start : start + len(part)]):
                    start = word.find(part, start + 1)
                if start >= 0:
                    chosen.append((start, part))
                    for i in range(start, start + len(part)):
                        taken[i] = True
            if chosen:
                for _, part in sorted(chosen):
                    if part not in words:
                        words.append(part)
                continue
        if word not in words:
            words.append(word)
    return ParsedQuery(text=parsed.text, words=words[:MAX_WORDS], facet_words=parsed.facet_words)


def suggest(backend: SearchBackend, parsed: ParsedQuery) -> str | None:
    """A corrected query when some word matches nothing: Chinese words by their pinyin
    against the index's title words and the curriculum term list, English (and pinyin)
    words by edit distance over the index vocabulary."""
    unknown = [w for w in parsed.words if not _word_known(backend, term_group(w))]
    if not unknown:
        return None
    replacements: dict[str, str] = {}
    vocabulary = None
    text = parsed.text
    # Chinese: the whole run of Chinese characters first (京居 -> 京剧), then its words.
    for run in analysis.CJK_RUN.findall(text):
        if all(_word_known(backend, term_group(w)) for w in analysis.query_words(run)):
            continue
        vocabulary = vocabulary if vocabulary is not None else backend.chinese_vocabulary()
        candidate = vocabulary.get(analysis.pinyin_of(run))
        if candidate and candidate[0] != run:
            replacements[run] = candidate[0]
            continue
        for word in analysis.query_words(run):
            if (
                analysis.is_cjk(word)
                and not _word_known(backend, term_group(word))
                and len(word) > 1
            ):
                candidate = vocabulary.get(analysis.pinyin_of(word))
                if candidate and candidate[0] != word:
                    replacements[word] = candidate[0]
    for word in unknown:
        if analysis.is_cjk(word) or not word.isascii() or len(word) < 3:
            continue
        better = backend.suggest_english(word)
        if better and better != word:
            replacements[word] = better
            continue
        vocabulary = vocabulary if vocabulary is not None else backend.chinese_vocabulary()
        hit = vocabulary.get(word)
        if hit:
            replacements[word] = hit[0]
    if not replacements:
        return None
    corrected = text
    for wrong, right in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
        corrected = re.sub(re.escape(wrong), right, corrected, flags=re.IGNORECASE)
    return corrected if corrected != text else None
