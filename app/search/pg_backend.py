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
- Did-you-mean: ``pg_trgm`` finds candidate words (``%``), then Whoosh's rule applies
  (edit distance ≤ 2, same first letter, most frequent first).
- Concurrency: MVCC; the vocabulary counters are updated in key order, so concurrent
  publishes sharing words wait for each other's commit instead of deadlocking.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session, scoped_session
from whoosh.util.numeric import byte_to_length, length_to_byte

from app.search import analysis
from app.search.backend import FACETS, BackendHit, BackendQuery, BackendResults, SearchBackend
from app.search.models import TEXT_FIELDS
from app.search.whoosh_backend import MAX_COLLECT, make_schema, to_whoosh

B, K1 = 0.75, 1.2
FIELD_BOOSTS = {"title_zh": 3.0, "title_en": 3.0, "py": 2.0, "pyi": 1.5}
LENGTH = "#length"  # search_terms rows holding per-field totals: df = documents, freq = tokens
MAX_LEXEME_BYTES = 2000  # PostgreSQL's limit is 2047 (the field prefix below included)
_FACET_COLUMNS = {f: f for f in FACETS}
_TERM_CACHE = "search_term_cache"  # session.info key, see PostgresBackend._term_cache
# One combined tsvector, ``lexemes``, holds every matchable field's tokens behind a
# fixed-length field prefix ("a:七年级" is title_zh's 七年级), under ONE GIN index: a whole
# query is one ``@@`` of one tsquery ((alternatives | ...) & ...), which the planner
# estimates from the column's statistics and answers from one index.  With one column
# per field the OR/AND of seven ``@@`` looked like one row and ran as a sequential scan
# detoasting every tsvector (issue 14: 90-160 ms at 20k for "how plants grow").
FIELD_CODES = {
    "title_zh": "a",
    "body_zh": "b",
    "title_en": "c",
    "body_en": "d",
    "py": "e",
    "pyi": "f",
}


@lru_cache(maxsize=1)
def _analysers() -> dict:
    schema = make_schema()
    return {name: schema[name].analyzer for name in TEXT_FIELDS}


def field_tokens(doc: dict) -> dict[str, list[str]]:
    """The tokens each Whoosh text field would index for ``doc``, in order."""
    spread = to_whoosh(doc)
    tokens = {}
    for name, analyser in _analysers().items():
        tokens[name] = [
            t.text
            for t in analyser(spread[name], mode="index")
            if t.text and len(t.text.encode("utf-8")) <= MAX_LEXEME_BYTES
        ]
    return tokens


def _quantised(length: int) -> int:
    # Whoosh stores a document's field length in one byte; rank with the same value.
    return byte_to_length(length_to_byte(length))


def _row(doc: dict, seq: int) -> tuple[dict, _Delta]:
    """The table row of ``doc`` and its contribution to the vocabulary."""
    spread = to_whoosh(doc)
    tokens = field_tokens(doc)
    tf, lengths, df, freq = {}, {}, Counter(), {}
    for name, words in tokens.items():
        counts = Counter(words)
        boost = FIELD_BOOSTS.get(name, 1.0)
        tf[name] = {w: n * boost for w, n in counts.items()}
        lengths[name] = _quantised(len(words))
        for w, weight in tf[name].items():
            df[(name, w)] = 1
            freq[(name, w)] = weight
        df[(LENGTH, name)] = 1
        freq[(LENGTH, name)] = len(words)
    fields = dict(doc)
    fields.update(
        district=spread["district"],
        school=spread["school"],
        published=spread["published"],
        usage=spread["usage"],
        grade=list(doc.get("grade") or []),
        tags=list(doc.get("tags") or []),
        terms=list(doc.get("terms") or []),
        title_en=doc.get("title_en", ""),
    )
    row = {
        "id": doc["id"],
        "seq": seq,
        **{f: spread[f] for f in FACETS if f != "grade"},
        "school": spread["school"],
        "visibility": spread["visibility"],
        "author": spread["author"],
        "grade": list(doc.get("grade") or []),
        "published": spread["published"],
        "usage": spread["usage"],
        "fingerprint": doc.get("fingerprint", ""),
        "fields": fields,
        "tf": tf,
        "lengths": lengths,
        **{name: sorted(set(words)) for name, words in tokens.items()},
        "lexemes": sorted(
            {f"{code}:{w}" for name, code in FIELD_CODES.items() for w in tokens[name]}
        ),
    }
    return row, _Delta(df, freq)


def _batches(documents: Iterable[dict], size: int):
    """``(document, seq)`` pairs in lists of ``size``; seq counts from 1."""
    batch = []
    for seq, doc in enumerate(documents, start=1):
        batch.append((doc, seq))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _prepared(numbered: tuple[dict, int]) -> tuple[dict, dict]:
    """The INSERT parameters of one document and its vocabulary contribution (plain
    data, so a worker process can make them)."""
    import json

    doc, seq = numbered
    row, contribution = _row(doc, seq)
    row.update(
        fields=json.dumps(row["fields"], ensure_ascii=False),
        tf=json.dumps(row["tf"], ensure_ascii=False),
        lengths=json.dumps(row["lengths"]),
    )
    return row, contribution.values


class _Delta:
    """Changes to ``search_terms``: (field, term) -> (df, freq)."""

    def __init__(self, df: Counter | None = None, freq: dict | None = None):
        self.values: dict[tuple[str, str], list[float]] = {}
        for key, n in (df or {}).items():
            self.values[key] = [n, (freq or {}).get(key, 0.0)]

    def add(self, other: _Delta, sign: int = 1) -> None:
        self.values_add(other.values, sign)

    def values_add(self, values: dict, sign: int = 1) -> None:
        for key, (df, freq) in values.items():
            mine = self.values.setdefault(key, [0, 0.0])
            mine[0] += sign * df
            mine[1] += sign * freq


def _stored_delta(tf: dict) -> _Delta:
    """What an indexed row contributed to the vocabulary (to take it back)."""
    df, freq = Counter(), {}
    for name, weights in tf.items():
        boost = FIELD_BOOSTS.get(name, 1.0)
        for w, weight in weights.items():
            df[(name, w)] += 1
            freq[(name, w)] = weight
        df[(LENGTH, name)] += 1
        freq[(LENGTH, name)] = round(sum(weights.values()) / boost)
    return _Delta(df, freq)


def _tsquery(term: str) -> str:
    """A one-lexeme tsquery literal, taken verbatim (no parser, no dictionary)."""
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


_INSERT = text(
    "INSERT INTO search_documents (id, seq, type, kind, subject, grade, edition, category,"
    " language, licence, district, school, visibility, author, published, usage,"
    " fingerprint, fields, tf, lengths, lexemes, "
    + ", ".join(TEXT_FIELDS)
    + ") VALUES (:id, :seq, :type, :kind, :subject, :grade, :edition, :category,"
    " :language, :licence, :district, :school, :visibility, :author, :published, :usage,"
    " :fingerprint, CAST(:fields AS jsonb), CAST(:tf AS jsonb), CAST(:lengths AS jsonb),"
    " array_to_tsvector(CAST(:lexemes AS text[])), "
    + ", ".join(f"array_to_tsvector(CAST(:{f} AS text[]))" for f in TEXT_FIELDS)
    + ")"
)


class PostgresBackend(SearchBackend):
    """Search in the application's PostgreSQL database, inside the caller's session."""

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

    # --- reading ------------------------------------------------------------------------

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

    def _where(self, q: BackendQuery, params: dict) -> list[str]:
        scope = q.scope
        where = []
        if not scope.everything:
            visible = ["d.visibility = 'region'"]
            if scope.school_ids:
                params["sc_school"] = sorted(scope.school_ids)
                visible.append("(d.visibility = 'school' AND d.school = ANY(:sc_school))")
            if scope.district_ids:
                params["sc_district"] = sorted(scope.district_ids)
                visible.append("(d.visibility = 'district' AND d.district = ANY(:sc_district))")
            if scope.admin_district_ids:
                params["sc_admin"] = sorted(scope.admin_district_ids)
                visible.append("d.district = ANY(:sc_admin)")
            if scope.author:
                params["sc_author"] = scope.author
                visible.append("d.author = :sc_author")
            if scope.subscribed_content_ids:
                # Items the districts receive by subscription (app/sharing); private ones
                # excluded, as in the catalog's rule.
                # Documents are keyed "<type>:<content_id>", so the primary key answers.
                params["sc_subscribed"] = sorted(
                    f"{kind}:{content_id}"
                    for content_id in scope.subscribed_content_ids
                    for kind in ("course", "resource")
                )
                visible.append("(d.id = ANY(:sc_subscribed) AND d.visibility <> 'private')")
            where.append("(" + " OR ".join(visible) + ")")
        if q.ids is not None:
            params["only_ids"] = sorted(q.ids)
            where.append("d.id = ANY(:only_ids)")
        for n, (facet, accepted) in enumerate(sorted(q.filters.items())):
            if facet not in _FACET_COLUMNS:
                raise ValueError(f"unknown facet {facet!r}")
            params[f"flt{n}"] = [str(v) for v in accepted]
            if facet == "grade":
                where.append(f"d.grade && CAST(:flt{n} AS text[])")
            else:
                where.append(f"d.{facet} = ANY(:flt{n})")
        groups = []
        for group in q.groups:
            matches = []
            for name, term, _ in group.alternatives:
                if name not in FIELD_CODES:
                    raise ValueError(f"unknown field {name!r}")
                matches.append(_tsquery(f"{FIELD_CODES[name]}:{term}"))
            groups.append("(" + " | ".join(matches) + ")")
        if groups:
            params["match"] = (" | " if q.relaxed else " & ").join(groups)
            where.append("d.lexemes @@ CAST(:match AS tsquery)")
        return where

    def _score(self, q: BackendQuery, params: dict) -> str:
        """Whoosh's BM25F over the alternatives, reading the weights of ``w.tf`` (the
        row's ``tf`` decompressed once, see :meth:`search`)."""
        wanted = {(name, term) for g in q.groups for name, term, _ in g.alternatives}
        df, average, docs = self._statistics(wanted)
        parts = []
        for g, group in enumerate(q.groups):
            for a, (name, term, boost) in enumerate(group.alternatives):
                idf = math.log(max(docs, 1) / (df.get((name, term), 0) + 1)) + 1
                params[f"t{g}_{a}"] = term
                params[f"c{g}_{a}"] = boost * idf * (K1 + 1)
                params[f"n{g}_{a}"] = K1 * B / average.get(name, 1)
                weight = f"coalesce(CAST(w.tf -> '{name}' ->> :t{g}_{a} AS float8), 0)"
                parts.append(
                    f"(:c{g}_{a} * {weight} / nullif({weight} + {K1 * (1 - B)}"
                    f" + :n{g}_{a} * CAST(w.lengths ->> '{name}' AS float8), 0))"
                )
        return "coalesce(" + " + ".join(f"coalesce({p}, 0)" for p in parts) + ", 0)"

    def search(self, q: BackendQuery) -> BackendResults:
        """Count, facet counts and the page in ONE statement: the visible matches are
        read once (one GIN look-up of ``lexemes``) into a materialised CTE with their
        facet columns and sort key, the facets are ``GROUP BY``s over it, and only the
        page's rows fetch their stored fields."""
        params: dict = {}
        where = self._where(q, params)
        condition = " AND ".join(where) or "TRUE"
        for facet in q.facets:
            if facet not in _FACET_COLUMNS:
                raise ValueError(f"unknown facet {facet!r}")
        wanted = q.offset + q.limit
        scored = bool(q.groups) and q.sort == "relevance"
        lateral = ""
        if scored:
            key = self._score(q, params)
            order = "m.key DESC, m.seq"
            # ``tf`` is stored compressed: every ``->`` on the column would decompress it
            # again (two per alternative); OFFSET 0 keeps this sub-select from being
            # inlined, so each matching row decompresses it once.
            lateral = (
                " CROSS JOIN LATERAL (SELECT d.tf || '{}'::jsonb AS tf,"
                " d.lengths AS lengths OFFSET 0) w"
            )
        elif q.sort == "popular":
            key, order = "d.usage", "m.key DESC, m.seq"
        else:
            key, order = "d.published", "m.key DESC, m.seq"
        columns = sorted({"grade", *q.facets})
        parts = ["SELECT 0 AS part, '' AS facet, '' AS value, count(*) AS n FROM m"]
        for facet in q.facets:
            if facet == "grade":
                parts.append(
                    "SELECT 1, 'grade', g, count(*) FROM m CROSS JOIN LATERAL unnest(m.grade) g"
                    " WHERE g <> '' GROUP BY g"
                )
            else:
                parts.append(
                    f"SELECT 1, '{facet}', m.{facet}, count(*) FROM m WHERE m.{facet} <> ''"
                    f" GROUP BY m.{facet}"
                )
        # Whoosh never ranks more than MAX_COLLECT hits for one page; neither do we.
        params.update(offset=q.offset, limit=q.limit if wanted <= MAX_COLLECT else 0)
        statement = (
            "WITH m AS MATERIALIZED (SELECT d.id, d.seq, "
            + ", ".join(f"d.{c}" for c in columns)
            + f", {key} AS key FROM search_documents d{lateral} WHERE {condition}),"
            f" p AS (SELECT m.id, m.seq, m.key FROM m ORDER BY {order}"
            " OFFSET :offset LIMIT :limit)"
            " SELECT part, facet, value, n, NULL::jsonb AS fields, NULL::float8 AS key,"
            " NULL::bigint AS seq FROM ("
            + " UNION ALL ".join(parts)
            + ") f UNION ALL SELECT 2, '', '', 0, d.fields, CAST(p.key AS float8), p.seq"
            " FROM p JOIN search_documents d ON d.id = p.id"
        )
        if q.groups:
            # The planner prices a sequential scan as cheap as the GIN index even when
            # thousands of rows match, because it does not count decompressing each
            # row's ``lexemes`` (out of line, TOASTed): 215 ms instead of 11 ms for
            # 1,549 matches of 20,000 (EXPLAIN ANALYZE in docs/search.md).  The matches
            # always come from the index; the setting is put back right after.
            previous = self._execute(
                text(
                    "SELECT current_setting('enable_seqscan'),"
                    " set_config('enable_seqscan', 'off', true)"
                )
            ).first()[0]
            # (on an error the transaction is aborted, and its rollback restores it)
            rows = self._execute(text(statement), params).all()
            self._execute(
                text("SELECT set_config('enable_seqscan', :previous, true)"),
                {"previous": previous},
            )
        else:
            rows = self._execute(text(statement), params).all()
        total = 0
        facets: dict[str, dict[str, int]] = {f: {} for f in q.facets}
        page = []
        for part, facet, value, n, fields, sort_key, seq in rows:
            if part == 0:
                total = int(n)
            elif part == 1:
                facets[facet][value] = int(n)
            else:
                page.append((-(sort_key or 0), seq, fields, sort_key))
        page.sort(key=lambda row: (row[0], row[1]))
        hits = [
            BackendHit(fields=dict(fields), score=sort_key if scored else None)
            for _, _, fields, sort_key in page
        ]
        return BackendResults(hits=hits, total=total, facets=facets)

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
