"""Whoosh implementation of :class:`app.search.backend.SearchBackend`.

Layout of ``SEARCH_INDEX_DIR``::

    CURRENT          name of the live generation folder (replaced atomically)
    gen-<stamp>/     a complete Whoosh index

A rebuild writes a new ``gen-*`` folder and then replaces ``CURRENT`` with
``os.replace`` (atomic on POSIX), so readers switch from one complete index to the next
and never see a half-built one.

Concurrency: Whoosh allows one writer per index (a file lock, shared by every process on
the machine).  Writers wait for the lock up to ``WRITE_TIMEOUT`` seconds, retrying;
readers never take the lock and keep reading the segments they opened until they refresh.
Each thread keeps its own searcher and refreshes it before every query (a cheap check of
the index's table of contents).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from whoosh import fields, index, query
from whoosh.codec.whoosh3 import W3PerDocReader
from whoosh.sorting import FieldFacet

from app.search import analysis
from app.search.backend import (
    FACETS,
    BackendHit,
    BackendQuery,
    BackendResults,
    IndexBusy,
    SearchBackend,
)

log = logging.getLogger(__name__)

WRITE_TIMEOUT = 30.0
MAX_COLLECT = 10_000  # never rank more than this many hits for one page


def _cached_column_reader(self, fieldname, column):
    # Whoosh 2.7.4 (the last release) remembers the column readers it found but not the
    # columns it did not: writing a segment asks for the length of every posting, and for
    # each posting of an unscored field (the ID and KEYWORD facet fields) that meant a
    # path join and a stat() of a file that does not exist — 40 % of an index build in
    # the profile (docs/search.md).  A readable segment's columns never change, so the
    # answer "no such column" is remembered too.
    readers = self._readers
    if fieldname not in readers:
        exists = self.has_column(fieldname)
        readers[fieldname] = self.column_reader(fieldname, column) if exists else None
    return readers[fieldname]


W3PerDocReader._cached_reader = _cached_column_reader


def make_schema() -> fields.Schema:
    zh = analysis.chinese_analyzer()
    en = analysis.english_analyzer()
    return fields.Schema(
        id=fields.ID(stored=True, unique=True),
        type=fields.ID(stored=True),
        content_id=fields.ID(stored=True),
        version=fields.STORED,
        kind=fields.ID(stored=True),
        subject=fields.ID(stored=True),
        grade=fields.KEYWORD(stored=True, commas=True, scorable=False),
        edition=fields.ID(stored=True),
        category=fields.ID(stored=True),
        language=fields.ID(stored=True),
        licence=fields.ID(stored=True),
        district=fields.ID(stored=True),
        school=fields.ID(stored=True),
        visibility=fields.ID(stored=True),
        author=fields.ID(stored=True),
        published=fields.NUMERIC(bits=64, stored=True, sortable=True),
        usage=fields.NUMERIC(bits=64, stored=True, sortable=True),
        title_zh=fields.TEXT(analyzer=zh, field_boost=3.0, phrase=False),
        body_zh=fields.TEXT(analyzer=zh, phrase=False),
        title_en=fields.TEXT(analyzer=en, field_boost=3.0, phrase=False),
        body_en=fields.TEXT(analyzer=en, phrase=False),
        py=fields.TEXT(analyzer=analysis.pinyin_analyzer(), field_boost=2.0, phrase=False),
        pyi=fields.TEXT(analyzer=analysis.initials_analyzer(), field_boost=1.5, phrase=False),
        words_en=fields.TEXT(analyzer=analysis.english_words_analyzer(), phrase=False),
        title=fields.STORED,
        title_en_text=fields.STORED,
        summary=fields.STORED,
        summary_en=fields.STORED,
        body=fields.STORED,
        tags=fields.STORED,
        terms=fields.STORED,
        url=fields.STORED,
        fingerprint=fields.STORED,
    )


def to_whoosh(doc: dict) -> dict:
    """Spread one backend document over the Whoosh fields."""
    title_all = " ".join(filter(None, [doc["title"], doc.get("title_en", "")]))
    extra = " ".join(doc.get("tags") or []) + " " + " ".join(doc.get("terms") or [])
    body_all = "\n".join(
        filter(
            None, [doc.get("summary", ""), doc.get("summary_en", ""), doc.get("body", ""), extra]
        )
    )
    pinyin_text = title_all + " " + extra
    return {
        "id": doc["id"],
        "type": doc["type"],
        "content_id": doc["content_id"],
        "version": doc.get("version"),
        "kind": doc.get("kind") or "",
        "subject": doc.get("subject") or "",
        "grade": ",".join(doc.get("grade") or []),
        "edition": doc.get("edition") or "",
        "category": doc.get("category") or "",
        "language": doc.get("language") or "",
        "licence": doc.get("licence") or "",
        "district": str(doc.get("district") or ""),
        "school": str(doc.get("school") or ""),
        "visibility": doc.get("visibility") or "",
        "author": doc.get("author") or "",
        "published": int(doc.get("published") or 0),
        "usage": int(doc.get("usage") or 0),
        "title_zh": title_all,
        "body_zh": body_all,
        "title_en": title_all,
        "body_en": body_all,
        "py": pinyin_text,
        "pyi": pinyin_text,
        "words_en": title_all + "\n" + body_all,
        "title": doc["title"],
        "title_en_text": doc.get("title_en", ""),
        "summary": doc.get("summary", ""),
        "summary_en": doc.get("summary_en", ""),
        "body": doc.get("body", ""),
        "tags": list(doc.get("tags") or []),
        "terms": list(doc.get("terms") or []),
        "url": doc.get("url", ""),
        "fingerprint": doc.get("fingerprint", ""),
    }


def from_whoosh(stored: dict) -> dict:
    doc = dict(stored)
    doc["title_en"] = doc.pop("title_en_text", "")
    doc["grade"] = [g for g in (doc.get("grade") or "").split(",") if g]
    return doc


class WhooshBackend(SearchBackend):
    def __init__(self, directory: str | os.PathLike, write_timeout: float = WRITE_TIMEOUT):
        self.root = Path(directory)
        self.write_timeout = write_timeout
        self._local = threading.local()
        self._cache_lock = threading.Lock()
        # caches keyed by the searcher's reader generation
        self._facet_cache: dict = {}
        self._scope_cache: dict = {}
        self._vocab_cache: dict = {}

    def describe(self) -> str:
        return str(self.root)

    # --- index location -----------------------------------------------------------------

    def _current_name(self) -> str | None:
        try:
            return (self.root / "CURRENT").read_text().strip() or None
        except FileNotFoundError:
            return None

    def _set_current(self, name: str) -> None:
        tmp = self.root / f"CURRENT.{os.getpid()}.{threading.get_ident()}"
        tmp.write_text(name)
        os.replace(tmp, self.root / "CURRENT")

    def _open(self) -> tuple[str, index.Index]:
        name = self._current_name()
        if name is None or not index.exists_in(self.root / name):
            self.root.mkdir(parents=True, exist_ok=True)
            lock = self._root_lock()
            with lock:
                name = self._current_name()
                if name is None or not index.exists_in(self.root / name):
                    name = self._new_generation()
                    self._set_current(name)
        return name, index.open_dir(str(self.root / name))

    def _root_lock(self):
        import fcntl

        class _Lock:
            def __init__(self, path):
                self.path = path

            def __enter__(self):
                self.fd = os.open(self.path, os.O_CREAT | os.O_WRONLY)
                fcntl.flock(self.fd, fcntl.LOCK_EX)

            def __exit__(self, *exc):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)

        return _Lock(self.root / ".root.lock")

    def _new_generation(self) -> str:
        name = (
            f"gen-{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}-{int(time.time() * 1000) % 100000}"
        )
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        index.create_in(str(path), make_schema())
        return name

    # --- reading ------------------------------------------------------------------------

    def _searcher(self):
        local = self._local
        name = self._current_name()
        searcher = getattr(local, "searcher", None)
        if searcher is None or name != getattr(local, "name", None):
            if searcher is not None:
                searcher.close()
            local.name, ix = self._open()
            local.searcher = ix.searcher()
        else:
            fresh = searcher.refresh()
            if fresh is not searcher:
                local.searcher = fresh
        return local.searcher

    def _generation_key(self, searcher) -> tuple:
        # Every commit makes a new TOC generation, so (folder, generation) names one state.
        return (self._local.name, searcher.reader().generation())

    def _facet_postings(self, searcher, facet: str) -> dict[str, frozenset]:
        key = (self._generation_key(searcher), facet)
        cached = self._facet_cache.get(key)
        if cached is not None:
            return cached
        reader = searcher.reader()
        values = {}
        if facet in reader.indexed_field_names():
            for term in reader.lexicon(facet):
                text = term.decode("utf-8") if isinstance(term, bytes) else term
                if not text:
                    continue
                ids = frozenset(reader.postings(facet, term).all_ids())
                if ids:
                    values[text] = ids
        with self._cache_lock:
            if len(self._facet_cache) > 64:
                self._facet_cache.clear()
            self._facet_cache[key] = values
        return values

    def _docs_for(self, searcher, q) -> set[int]:
        return set(searcher.docs_for_query(q))

    def _scope_docs(self, searcher, scope) -> set[int] | None:
        if scope.everything:
            return None
        key = (self._generation_key(searcher), scope.key())
        cached = self._scope_cache.get(key)
        if cached is not None:
            return cached
        clauses = [query.Term("visibility", "region")]
        if scope.school_ids:
            clauses.append(
                query.And(
                    [
                        query.Term("visibility", "school"),
                        query.Or([query.Term("school", s) for s in scope.school_ids]),
                    ]
                )
            )
        if scope.district_ids:
            clauses.append(
                query.And(
                    [
                        query.Term("visibility", "district"),
                        query.Or([query.Term("district", d) for d in scope.district_ids]),
                    ]
                )
            )
        if scope.admin_district_ids:
            clauses.append(query.Or([query.Term("district", d) for d in scope.admin_district_ids]))
        if scope.author:
            clauses.append(query.Term("author", scope.author))
        # SHARING HOOK (app/sharing): items the districts receive by subscription
        # (private ones excluded, as in the catalog's rule).
        if scope.subscribed_content_ids:
            clauses.append(
                query.And(
                    [
                        query.Or(
                            [query.Term("content_id", c) for c in scope.subscribed_content_ids]
                        ),
                        query.Not(query.Term("visibility", "private")),
                    ]
                )
            )
        docs = self._docs_for(searcher, query.Or(clauses))
        with self._cache_lock:
            if len(self._scope_cache) > 256:
                self._scope_cache.clear()
            self._scope_cache[key] = docs
        return docs

    def _allowed(self, searcher, q: BackendQuery) -> set[int] | None:
        allowed = self._scope_docs(searcher, q.scope)
        if q.ids is not None:
            wanted = (
                self._docs_for(searcher, query.Or([query.Term("id", i) for i in sorted(q.ids)]))
                if q.ids
                else set()
            )
            allowed = wanted if allowed is None else (allowed & wanted)
        for facet, accepted in q.filters.items():
            postings = self._facet_postings(searcher, facet)
            matching: set[int] = set()
            for value in accepted:
                matching |= postings.get(value, frozenset())
            allowed = matching if allowed is None else (allowed & matching)
        return allowed

    @staticmethod
    def _text_query(q: BackendQuery):
        if not q.groups:
            return query.Every()
        parts = []
        for group in q.groups:
            alternatives = [
                query.Term(f, text, boost=boost) for f, text, boost in group.alternatives
            ]
            parts.append(alternatives[0] if len(alternatives) == 1 else query.Or(alternatives))
        if len(parts) == 1:
            return parts[0]
        return query.Or(parts) if q.relaxed else query.And(parts)

    def search(self, q: BackendQuery) -> BackendResults:
        searcher = self._searcher()
        allowed = self._allowed(searcher, q)
        text_query = self._text_query(q)
        if allowed is not None and not allowed:
            return BackendResults(hits=[], total=0, facets={f: {} for f in q.facets})
        browsing = isinstance(text_query, query.Every)
        sortedby, scored = None, True
        if q.sort == "newest" or (q.sort == "relevance" and browsing):
            sortedby, scored = FieldFacet("published", reverse=True), False
        elif q.sort == "popular":
            sortedby, scored = FieldFacet("usage", reverse=True), False
        wanted = q.offset + q.limit
        results = None
        if browsing:
            matched = allowed if allowed is not None else set(searcher.reader().all_doc_ids())
        else:
            # One pass over the postings: every visible match is collected (its docnum
            # for the count and facets, its score or sort key for the page).
            results = searcher.search(
                text_query,
                filter=allowed,
                limit=None if scored else wanted,
                sortedby=sortedby,
                scored=scored,
                terms=False,
            )
            matched = results.docs()
        total = len(matched)
        facets = {}
        for facet in q.facets:
            counts = {}
            for value, ids in self._facet_postings(searcher, facet).items():
                n = len(matched & ids) if len(matched) < len(ids) else len(ids & matched)
                if n:
                    counts[value] = n
            facets[facet] = counts
        hits: list[BackendHit] = []
        if total and q.offset < total and wanted <= MAX_COLLECT:
            if results is None:
                results = searcher.search(
                    text_query,
                    filter=matched,
                    limit=wanted,
                    sortedby=sortedby,
                    scored=scored,
                    terms=False,
                )
            for hit in results[q.offset : wanted]:
                score = hit.score if scored else None
                hits.append(BackendHit(fields=from_whoosh(hit.fields()), score=score))
        return BackendResults(hits=hits, total=total, facets=facets)

    def doc_frequency(self, field_name: str, text: str) -> int:
        return self._searcher().doc_frequency(field_name, text)

    def suggest_english(self, word: str) -> str | None:
        searcher = self._searcher()
        suggestions = searcher.corrector("words_en").suggest(
            word.lower(), limit=1, maxdist=2, prefix=1
        )
        return suggestions[0] if suggestions else None

    def chinese_vocabulary(self) -> dict[str, tuple[str, int]]:
        searcher = self._searcher()
        key = self._generation_key(searcher)
        cached = self._vocab_cache.get(key)
        if cached is not None:
            return cached
        reader = searcher.reader()
        vocabulary = analysis.pinyin_vocabulary(
            (term.decode("utf-8") if isinstance(term, bytes) else term, info.doc_frequency())
            for term, info in reader.iter_field("title_zh")
        )
        with self._cache_lock:
            self._vocab_cache.clear()
            self._vocab_cache[key] = vocabulary
        return vocabulary

    def fingerprints(self) -> dict[str, str]:
        searcher = self._searcher()
        return {
            fields_["id"]: fields_.get("fingerprint", "")
            for fields_ in searcher.all_stored_fields()
        }

    def count(self) -> int:
        return self._searcher().doc_count()

    def size_bytes(self) -> int:
        name = self._current_name()
        if not name:
            return 0
        return sum(p.stat().st_size for p in (self.root / name).iterdir() if p.is_file())

    # --- writing ------------------------------------------------------------------------

    def _writer(self, ix, timeout: float | None = None):
        # Waits for another process's writer, retrying every 0.25 s; readers are unaffected.
        # Raises whoosh.index.LockError when the lock stays taken for ``timeout`` seconds.
        try:
            return ix.writer(timeout=self.write_timeout if timeout is None else timeout, delay=0.25)
        except index.LockError:
            raise IndexBusy("The search index is locked by another writer.") from None

    def upsert(self, documents: list[dict], timeout: float | None = None) -> None:
        if not documents:
            return
        _, ix = self._open()
        writer = self._writer(ix, timeout)
        try:
            for doc in documents:
                writer.update_document(**to_whoosh(doc))
        except BaseException:
            writer.cancel()
            raise
        writer.commit()

    def delete(self, doc_ids: list[str], timeout: float | None = None) -> None:
        if not doc_ids:
            return
        _, ix = self._open()
        writer = self._writer(ix, timeout)
        try:
            for doc_id in doc_ids:
                writer.delete_by_term("id", doc_id)
        except BaseException:
            writer.cancel()
            raise
        writer.commit()

    def rebuild(
        self,
        documents: Iterable[dict],
        progress: Callable[[int], None] | None = None,
        procs: int = 1,
        limitmb: int = 128,
    ) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        name = self._new_generation()
        ix = index.open_dir(str(self.root / name))
        options = {"limitmb": limitmb}
        if procs > 1:
            options.update(procs=procs, multisegment=True)
        writer = ix.writer(**options)
        count = 0
        try:
            for doc in documents:
                writer.add_document(**to_whoosh(doc))
                count += 1
                if progress:
                    progress(1)
            writer.commit()
        except BaseException:
            writer.cancel()
            shutil.rmtree(self.root / name, ignore_errors=True)
            raise
        with self._root_lock():
            old = self._current_name()
            self._set_current(name)
        if old and old != name:
            # Open readers keep their file handles; new ones follow CURRENT.
            shutil.rmtree(self.root / old, ignore_errors=True)
        return count

    def clear(self) -> None:
        self.rebuild([])


def fingerprint(doc: dict) -> str:
    payload = repr(sorted((k, v) for k, v in doc.items() if k not in ("fingerprint",)))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


__all__ = ["WhooshBackend", "fingerprint", "FACETS"]
