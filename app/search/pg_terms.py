"""Term statistics of the PostgreSQL search backend, read from ``search_terms``:
document and collection frequencies (one round trip per search, cached for the
transaction), did-you-mean candidates (``pg_trgm``) and the pinyin vocabulary.

:class:`TermStatistics` is a part of :class:`app.search.pg_backend.PostgresBackend`
(it uses the backend's ``_execute`` and ``_session``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session, scoped_session

from app.search import analysis
from app.search.models import TEXT_FIELDS
from app.search.pg_rows import LENGTH

_TERM_CACHE = "search_term_cache"  # session.info key, see TermStatistics._term_cache


class TermStatistics:
    """Frequencies, did-you-mean and vocabulary (a part of ``PostgresBackend``)."""

    _vocabulary: tuple | None = None  # (state marker, pinyin vocabulary)

    def _term_cache(self) -> dict:
        """(field, term) -> (df, freq) read in this transaction (misses as (0, 0)).

        Query understanding, did-you-mean, highlighting and ranking all ask for the
        same few frequencies; one round trip (:meth:`prefetch_frequencies`) answers them
        for the whole search.  Scoped to the transaction (a new one reads afresh) and
        dropped by this backend's own writes."""
        session = self._real_session()
        transaction = session.get_transaction()
        cached = session.info.get(_TERM_CACHE)
        if cached is None or cached[0] is not transaction or transaction is None:
            cached = (transaction, {})
            if transaction is not None:
                session.info[_TERM_CACHE] = cached
        return cached[1]

    def _real_session(self) -> Session:
        session = self._session()
        return session() if isinstance(session, scoped_session) else session

    def _forget_terms(self) -> None:
        self._real_session().info.pop(_TERM_CACHE, None)

    def prefetch_frequencies(self, keys: Iterable[tuple[str, str]]) -> None:
        self._frequencies(keys)

    def _frequencies(self, keys: Iterable[tuple[str, str]]) -> dict:
        wanted = set(keys) | {(LENGTH, f) for f in TEXT_FIELDS}
        cache = self._term_cache()
        missing = sorted(k for k in wanted if k not in cache)
        if missing:
            rows = self._execute(
                text(
                    # one primary-key look-up per wanted key (an IN over the whole table
                    # made the planner scan it)
                    "SELECT s.field, s.term, s.df, s.freq"
                    " FROM unnest(CAST(:f AS varchar[]), CAST(:t AS text[])) AS k(field, term)"
                    " CROSS JOIN LATERAL (SELECT * FROM search_terms t"
                    " WHERE t.field = k.field AND t.term = k.term) s"
                ),
                {"f": [k[0] for k in missing], "t": [k[1] for k in missing]},
            ).all()
            # the cache belongs to the transaction the statement ran in
            cache = self._term_cache()
            for key in missing:
                cache[key] = (0, 0.0)
            for f, t, d, fr in rows:
                cache[(f, t)] = (int(d), float(fr))
        return cache

    def _statistics(self, alternatives: set[tuple[str, str]]) -> tuple[dict, dict, int]:
        stats = self._frequencies(alternatives)
        df = {key: stats[key][0] for key in alternatives if stats[key][0]}
        totals = {f: stats[(LENGTH, f)] for f in TEXT_FIELDS if stats[(LENGTH, f)][0]}
        docs = max((d for d, _ in totals.values()), default=0)
        average = {name: (fr / docs if docs else 0) or 1 for name, (_, fr) in totals.items()}
        return df, average, docs

    def doc_frequency(self, field_name: str, text_: str) -> int:
        return self._frequencies([(field_name, text_)])[(field_name, text_)][0]

    def suggest_english(self, word: str) -> str | None:
        word = word.lower()
        if not word:
            return None
        # Candidates: same first letter (a range of the primary key), length within two,
        # the 500 most similar by pg_trgm (a trigram threshold alone misses swapped
        # letters: "soalr" shares only two trigrams with "solar").
        first = word[0]
        rows = self._execute(
            text(
                "SELECT term, freq FROM search_terms WHERE field = 'words_en'"
                " AND term >= :lo AND term < :hi"
                " AND char_length(term) BETWEEN :short AND :long"
                " ORDER BY similarity(term, :w) DESC, term LIMIT 500"
            ),
            {
                "w": word,
                "lo": first,
                "hi": chr(ord(first) + 1),
                "short": len(word) - 2,
                "long": len(word) + 2,
            },
        ).all()
        # Whoosh's corrector: within two edits, same first letter, most frequent first.
        candidates = [
            (-(2 + 0.5 / (freq or 1)), term)
            for term, freq in rows
            if _edit_distance(word, term) <= 2
        ]
        if not candidates:
            return None
        return sorted(candidates, key=lambda c: (-c[0], c[1]))[0][1]

    def chinese_vocabulary(self) -> dict[str, tuple[str, int]]:
        # Rebuilt only when the title words or their counts change: a digest computed in
        # SQL is much cheaper than the pinyin of every word in Python.
        key = self._execute(
            text(
                "SELECT md5(coalesce(string_agg(term || ':' || df, ',' ORDER BY term), ''))"
                " FROM search_terms WHERE field = 'title_zh'"
            )
        ).scalar_one()
        cached = self._vocabulary
        if cached is not None and cached[0] == key:
            return cached[1]
        vocabulary = self._read_vocabulary()
        self._vocabulary = (key, vocabulary)
        return vocabulary

    def _read_vocabulary(self) -> dict[str, tuple[str, int]]:
        rows = self._execute(
            text(
                "SELECT term, df FROM search_terms WHERE field = 'title_zh'"
                " AND char_length(term) >= 2 ORDER BY term"
            )
        ).all()
        return analysis.pinyin_vocabulary((term, int(df)) for term, df in rows)


def _edit_distance(a: str, b: str) -> int:
    if abs(len(a) - len(b)) > 2:
        return 3
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
