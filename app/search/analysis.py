"""Text analysis for search: Chinese segmentation, English stemming, pinyin.

Every tokenizer here yields tokens whose ``startchar``/``endchar`` are offsets into the
ORIGINAL text, so highlights land on the right characters even when a word repeats.

- Chinese (:class:`ChineseTokenizer`): jieba *search* mode at index time (overlapping
  tokens ``七年 年级 七年级`` for recall) and *precise* mode at query time
  (:func:`query_words`).  Latin words inside Chinese text are only lowercased: the English
  stemmer never runs on this field.
- English (:func:`english_analyzer`): ASCII words, lowercased, stop words dropped, Porter
  stemmed.
- Pinyin (:class:`PinyinTokenizer`): every Chinese word becomes its toneless full pinyin
  (``jingju``) or its initials (``jj``), carrying the offsets of the Chinese word.

jieba runs on a private :class:`jieba.Tokenizer` loaded once per process with the user
dictionary ``content/search/userdict.txt`` (curriculum and course terms).
"""

from __future__ import annotations

import itertools
import logging
import re
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

from whoosh.analysis import (
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
    Token,
    Tokenizer,
)

log = logging.getLogger(__name__)

DICTIONARY_DIR = Path(__file__).resolve().parent.parent.parent / "content" / "search"

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
WORDISH = re.compile(r"[0-9A-Za-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
ASCII_WORD = re.compile(r"[A-Za-z0-9]+")

# Function words that carry no meaning on their own in a catalog search.
CHINESE_STOP = frozenset(
    [
        "的",
        "了",
        "和",
        "与",
        "及",
        "或",
        "在",
        "是",
        "之",
        "把",
        "被",
        "对",
        "也",
        "就",
        "都",
        "而",
        "并",
        "等",
        "个",
        "这",
        "那",
        "其",
    ]
)
ENGLISH_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "to",
        "was",
        "were",
        "will",
        "with",
    ]
)

_lock = threading.Lock()
_jieba = None


def user_dictionary_paths() -> list[Path]:
    return sorted(DICTIONARY_DIR.glob("userdict*.txt"))


def segmenter():
    """The process-wide jieba tokenizer with the curriculum dictionary loaded."""
    global _jieba
    if _jieba is not None:
        return _jieba
    with _lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.tmp_dir = tempfile.gettempdir()
            tokenizer.initialize()
            for path in user_dictionary_paths():
                tokenizer.load_userdict(str(path))
            _jieba = tokenizer
    return _jieba


@lru_cache(maxsize=1)
def dictionary_terms() -> tuple[str, ...]:
    """Terms of the user dictionary (for did-you-mean)."""
    terms = []
    for path in user_dictionary_paths():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                terms.append(line.split()[0])
    return tuple(terms)


def _han_blocks():
    import jieba

    # jieba's own block pattern: cut() splits every text with it and segments each
    # block on its own, so segmenting block by block gives exactly the same tokens.
    return jieba.re_han_default


@lru_cache(maxsize=50_000)
def _block_segments(block: str, mode: str) -> tuple[tuple[str, int, int], ...]:
    return tuple(segmenter().tokenize(block, mode=mode))


def _blocks(text: str):
    """``(offset, block)`` of ``text`` split as jieba splits it."""
    position = 0
    for block in _han_blocks().split(text):
        if block:
            yield position, block
            position += len(block)


@lru_cache(maxsize=512)
def segments(text: str, mode: str = "search") -> tuple[tuple[str, int, int], ...]:
    """jieba tokens ``(word, start, end)`` of ``text``, identical to
    ``segmenter().tokenize(text, mode=mode)``.

    Memoised per text (one document's title is segmented for several fields in a row)
    and per jieba block: titles and descriptions repeat blocks ("人教版", "七年级",
    "数学", set phrases), and jieba's Python DAG + HMM for a block costs far more than
    a dictionary hit (the index build's largest cost, docs/search.md)."""
    out = []
    for offset, block in _blocks(text):
        out.extend(
            (word, start + offset, end + offset)
            for word, start, end in _block_segments(block, mode)
        )
    return tuple(out)


def segments_containing(text: str, needles, mode: str = "search"):
    """The tokens of :func:`segments` that can equal one of ``needles`` (lowercase):
    only the jieba blocks containing a needle are segmented (highlighting)."""
    for offset, block in _blocks(text):
        lowered = block.lower()
        if any(needle in lowered for needle in needles):
            for word, start, end in _block_segments(block, mode):
                yield word, start + offset, end + offset


def is_cjk(text: str) -> bool:
    return bool(CJK.search(text))


def _keep(word: str) -> bool:
    if not WORDISH.search(word):
        return False
    return word not in CHINESE_STOP


keep_word = _keep  # what the Chinese tokenizer keeps (the highlighter asks too)


class _SegmentTokenizer(Tokenizer):
    """Turns ``(text, original word, start, end)`` from :meth:`words` into Whoosh tokens
    whose offsets point into the original string, so highlights land on the right
    characters."""

    def words(self, value: str):
        raise TypeError(f"{type(self).__name__} must define words()")

    def __call__(
        self,
        value,
        positions=False,
        chars=False,
        keeporiginal=False,
        removestops=True,
        start_pos=0,
        start_char=0,
        mode="",
        **kwargs,
    ):
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        position = start_pos
        for text, word, start, end in self.words(value):
            token.text = text
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = word
            if positions:
                token.pos = position
                position += 1
            if chars:
                token.startchar = start_char + start
                token.endchar = start_char + end
            yield token


class ChineseTokenizer(_SegmentTokenizer):
    """jieba tokens with true character offsets.  ``search_mode`` picks jieba's
    overlapping search mode (index time) or precise mode (query time)."""

    def __init__(self, search_mode: bool = True):
        self.search_mode = search_mode

    def __eq__(self, other):
        return type(self) is type(other) and self.search_mode == other.search_mode

    def words(self, value: str):
        for word, start, end in segments(value, "search" if self.search_mode else "default"):
            word = word.strip()
            if word and _keep(word):
                yield word.lower(), word, start, end


@lru_cache(maxsize=200_000)
def pinyin_of(word: str, initials: bool = False) -> str:
    from pypinyin import Style, lazy_pinyin

    if initials:
        return "".join(lazy_pinyin(word, style=Style.FIRST_LETTER, errors="ignore")).lower()
    return "".join(lazy_pinyin(word, errors="ignore")).lower()


def pinyin_vocabulary(index_terms) -> dict[str, tuple[str, int]]:
    """Pinyin → (Chinese word, document frequency) for "did you mean": the dictionary's
    words (frequency 0), then ``index_terms`` (word, frequency) of an index's Chinese
    titles; per sound the more frequent word wins, the first one seen on a tie.  Words of
    one character are left out (too many share a sound)."""
    vocabulary: dict[str, tuple[str, int]] = {}
    for word, freq in itertools.chain(((w, 0) for w in dictionary_terms()), index_terms):
        if len(word) < 2 or not is_cjk(word):
            continue
        sound = pinyin_of(word)
        if sound and (sound not in vocabulary or vocabulary[sound][1] < freq):
            vocabulary[sound] = (word, freq)
    return vocabulary


class PinyinTokenizer(_SegmentTokenizer):
    """One token per Chinese word (jieba search mode): its pinyin, or its initials, at the
    offsets of the Chinese word.  Non-Chinese words are skipped (other fields have them)."""

    def __init__(self, initials: bool = False):
        self.initials = initials

    def __eq__(self, other):
        return type(self) is type(other) and self.initials == other.initials

    def words(self, value: str):
        for word, start, end in segments(value, "search"):
            if not CJK.search(word) or word in CHINESE_STOP:
                continue
            if self.initials and len(word) < 2:
                continue  # a single initial letter matches everything
            text = pinyin_of(word, self.initials)
            if text:
                yield text, word, start, end


def chinese_analyzer():
    return ChineseTokenizer(search_mode=True)


@lru_cache(maxsize=1)
def english_analyzer():
    return (
        RegexTokenizer(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
        | LowercaseFilter()
        | StopFilter(stoplist=ENGLISH_STOP, minsize=1)
        | StemFilter(lang="en", cachesize=50000)
    )


def english_words_analyzer():
    """Unstemmed English words: the vocabulary English did-you-mean suggests from."""
    return (
        RegexTokenizer(r"[A-Za-z]{3,}")
        | LowercaseFilter()
        | StopFilter(stoplist=ENGLISH_STOP, minsize=3)
    )


def pinyin_analyzer():
    return PinyinTokenizer(initials=False)


def initials_analyzer():
    return PinyinTokenizer(initials=True)


@lru_cache(maxsize=50000)
def stem(word: str) -> str:
    from whoosh.lang.porter import stem as porter

    return porter(word.lower())


def query_words(text: str) -> list[str]:
    """Precise-mode segmentation of a query fragment, stop words dropped."""
    words = []
    for word in segmenter().lcut(text):
        word = word.strip().lower()
        if word and _keep(word) and word not in ENGLISH_STOP:
            words.append(word)
    return words


def warm_up() -> None:
    """Load jieba's dictionary now (about half a second) rather than on the first search."""
    segmenter()
    pinyin_of("书院")
