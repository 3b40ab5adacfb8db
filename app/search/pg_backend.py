"""PostgreSQL implementation of :class:`app.search.backend.SearchBackend`.

Documents live in ``search_documents`` (:mod:`app.search.models`) and are written in
the caller's database session, never committed here: a publish and its search document
commit or roll back together, so search cannot drift from the catalog on this backend
(see :mod:`app.search.receivers`).

- Tokens: the Whoosh schema's own analysers (jieba search mode, English stemmer,
  pinyin, initials) segment each field in Python; ``array_to_tsvector`` stores exactly
  those tokens as lexemes (no PostgreSQL parser or dictionary touches them).
- Matching: one ``@@`` per (field, term) alternative on GIN indexes; visibility and
  facet filters are plain SQL conditions on the same rows.
- Ranking: Whoosh's BM25F (B=0.75, K1=1.2, field boosts title 3, pinyin 2, initials
  1.5, idf ``log(N/(df+1))+1``, Whoosh's one-byte field lengths) computed in SQL from
  the per-document weights (``tf``) and the vocabulary table's statistics, so the same
  query ranks the same items first on both backends.
- Modules: writing is here; rows and their vocabulary contribution in
  :mod:`app.search.pg_rows`, the search statement in :mod:`app.search.pg_query`, term
  statistics, did-you-mean and the pinyin vocabulary in :mod:`app.search.pg_terms`.
- Did-you-mean: ``pg_trgm`` finds candidate words (``%``), then Whoosh's rule applies
  (edit distance ≤ 2, same first letter, most frequent first).
- Concurrency: MVCC; the vocabulary counters are updated in key order, so concurrent
  publishes sharing words wait for each other's commit instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import bindparam, text

from app.search.backend import SearchBackend
from app.search.pg_query import Querying
from app.search.pg_rows import (  # noqa: F401  (FIELD_CODES, field_tokens: public names)
    _INSERT,
    FIELD_CODES,
    _batches,
    _Delta,
    _prepared,
    _stored_delta,
    field_tokens,
)
from app.search.pg_terms import TermStatistics


class PostgresBackend(Querying, TermStatistics, SearchBackend):
    """Search in the application's PostgreSQL database, inside the caller's session.

    Writing is here; the search statement is :class:`app.search.pg_query.Querying`, the
    term statistics, did-you-mean and vocabulary :class:`app.search.pg_terms.TermStatistics`,
    the rows themselves :mod:`app.search.pg_rows`."""

    transactional = True

    def __init__(self, session_factory: Callable):
        self._session = session_factory
        self._vocabulary: tuple | None = None  # (state marker, pinyin vocabulary)

    def describe(self) -> str:
        return "PostgreSQL table search_documents"

    # --- writing ------------------------------------------------------------------------

    def _execute(self, statement, params=None):
        return self._session().execute(statement, params or {})

    def _next_seq(self) -> int:
        return int(
            self._execute(text("SELECT coalesce(max(seq), 0) FROM search_documents")).scalar_one()
        )

    def _remove(self, doc_ids: list[str], delta: _Delta) -> None:
        rows = self._execute(
            text("DELETE FROM search_documents WHERE id = ANY(:ids) RETURNING tf").bindparams(
                bindparam("ids")
            ),
            {"ids": list(doc_ids)},
        ).all()
        for (tf,) in rows:
            delta.add(_stored_delta(tf), -1)

    def _apply(self, delta: _Delta) -> None:
        self._forget_terms()
        changes = [
            {"field": f, "term": t, "df": int(df), "freq": float(freq)}
            for (f, t), (df, freq) in sorted(delta.values.items())
            if df or freq
        ]
        if not changes:
            return
        for start in range(0, len(changes), 5000):
            chunk = changes[start : start + 5000]
            self._execute(
                text(
                    "INSERT INTO search_terms (field, term, df, freq)"
                    " SELECT * FROM unnest(CAST(:fields AS text[]), CAST(:terms AS text[]),"
                    " CAST(:dfs AS int[]), CAST(:freqs AS float8[]))"
                    " ON CONFLICT (field, term) DO UPDATE"
                    " SET df = search_terms.df + EXCLUDED.df,"
                    " freq = search_terms.freq + EXCLUDED.freq"
                ),
                {
                    "fields": [c["field"] for c in chunk],
                    "terms": [c["term"] for c in chunk],
                    "dfs": [c["df"] for c in chunk],
                    "freqs": [c["freq"] for c in chunk],
                },
            )
        self._execute(text("DELETE FROM search_terms WHERE df <= 0"))

    def _write(self, documents: list[dict], delta: _Delta) -> None:
        seq = self._next_seq()
        rows = []
        for offset, doc in enumerate(documents, start=1):
            row, contribution = _prepared((doc, seq + offset))
            delta.values_add(contribution)
            rows.append(row)
        self._insert(rows)

    def _insert(self, rows: list[dict]) -> None:
        if rows:
            self._execute(_INSERT, rows)

    def upsert(self, documents: list[dict], timeout: float | None = None) -> None:
        # ``timeout`` is Whoosh's lock wait; row locks here wait like any other write.
        if not documents:
            return
        latest = {doc["id"]: doc for doc in documents}
        delta = _Delta()
        self._remove(list(latest), delta)
        self._write(list(latest.values()), delta)
        self._apply(delta)
        self._session().flush()

    def delete(self, doc_ids: list[str], timeout: float | None = None) -> None:
        if not doc_ids:
            return
        delta = _Delta()
        self._remove(list(doc_ids), delta)
        self._apply(delta)

    def rebuild(
        self,
        documents: Iterable[dict],
        progress: Callable[[int], None] | None = None,
        procs: int = 1,
        **_,
    ) -> int:
        """Replace every document in the caller's transaction: readers see the old set
        until it commits, then the new one (MVCC).

        The analysers (jieba, pinyin, stemming: pure Python) are nearly all the cost, so
        with ``procs`` > 1 they run in that many forked processes while this one
        writes multi-row INSERTs of 500 rows."""
        self.clear()
        count, delta = 0, _Delta()
        pool = None
        if procs > 1:
            import multiprocessing

            pool = multiprocessing.get_context("fork").Pool(procs)
        try:
            # The documents are read here, in this thread (they come from the database
            # session of the application context); the workers only analyse.  While
            # they analyse one batch, this thread reads the next.
            pending = None
            for batch in _batches(documents, 500):
                if pool is None:
                    count += self._store(list(map(_prepared, batch)), delta, progress)
                    continue
                submitted = pool.map_async(_prepared, batch, chunksize=32)
                if pending is not None:
                    count += self._store(pending.get(), delta, progress)
                pending = submitted
            if pending is not None:
                count += self._store(pending.get(), delta, progress)
        finally:
            if pool is not None:
                pool.terminate()
        self._apply(delta)
        return count

    def _store(self, prepared: list, delta: _Delta, progress) -> int:
        rows = []
        for row, contribution in prepared:
            rows.append(row)
            delta.values_add(contribution)
        self._insert(rows)
        if progress:
            progress(len(rows))
        return len(rows)

    def clear(self) -> None:
        self._forget_terms()
        self._execute(text("DELETE FROM search_documents"))
        self._execute(text("DELETE FROM search_terms"))

    def fingerprints(self) -> dict[str, str]:
        rows = self._execute(text("SELECT id, fingerprint FROM search_documents")).all()
        return {doc_id: fp for doc_id, fp in rows}

    def count(self) -> int:
        return int(self._execute(text("SELECT count(*) FROM search_documents")).scalar_one())

    def size_bytes(self) -> int:
        return int(
            self._execute(
                text(
                    "SELECT pg_total_relation_size('search_documents')"
                    " + pg_total_relation_size('search_terms')"
                )
            ).scalar_one()
        )
