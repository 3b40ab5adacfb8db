"""The search backend interface.

Callers (services, CLI, tests) talk to :class:`SearchBackend` with plain data: documents
are dicts (see :data:`DOCUMENT_FIELDS`), queries are :class:`BackendQuery`.  Two
implementations, chosen by ``SEARCH_BACKEND``: Whoosh (:mod:`app.search.whoosh_backend`,
a folder on one host) and PostgreSQL (:mod:`app.search.pg_backend`, tables in the
application database, written in the caller's transaction); another engine only has to
implement this class.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# Every document handed to ``upsert``/``rebuild`` has these keys.
DOCUMENT_FIELDS = {
    "id": "'course:<content_id>' or 'resource:<content_id>' (unique key)",
    "type": "course | resource",
    "content_id": "stable content id",
    "version": "published version number",
    "kind": "resource or course kind code",
    "subject": "subject code or ''",
    "grade": "list of grade codes (a resource may have several)",
    "edition": "edition code or ''",
    "category": "extended-course category code or ''",
    "language": "language code",
    "licence": "licence code",
    "district": "district id (string)",
    "school": "school id (string) or ''",
    "visibility": "private | school | district | region",
    "author": "author's public id",
    "published": "publication time, milliseconds since the epoch",
    "usage": "usage count",
    "title": "title as written (stored for display)",
    "title_en": "English title or ''",
    "summary": "summary as written",
    "summary_en": "English summary or ''",
    "body": "plain text of the description, section titles and aligned lessons",
    "tags": "list of tag names",
    "terms": "curriculum terms (lesson / knowledge point titles) aligned to the item",
    "url": "where the item lives (path)",
    "fingerprint": "hash of the indexed content, to find stale documents",
}

FACETS = (
    "type",
    "subject",
    "grade",
    "edition",
    "kind",
    "district",
    "language",
    "licence",
    "category",
)


@dataclass
class Scope:
    """Who is searching, reduced to what visibility needs (mirrors
    :func:`app.catalog.services.visibility_condition`)."""

    everything: bool = False
    school_ids: frozenset[str] = frozenset()
    district_ids: frozenset[str] = frozenset()
    admin_district_ids: frozenset[str] = frozenset()
    author: str | None = None
    # SHARING HOOK (app/sharing): content the user's districts receive by subscription.
    subscribed_content_ids: frozenset[str] = frozenset()

    def key(self) -> tuple:
        return (
            self.everything,
            tuple(sorted(self.school_ids)),
            tuple(sorted(self.district_ids)),
            tuple(sorted(self.admin_district_ids)),
            self.author,
            tuple(sorted(self.subscribed_content_ids)),
        )


@dataclass
class TermGroup:
    """One query word: a document matches it when any alternative matches.

    ``alternatives`` are ``(field, indexed text, boost)``; fields are ``title_zh``,
    ``body_zh``, ``title_en``, ``body_en``, ``py`` (full pinyin), ``pyi`` (initials).
    """

    word: str
    alternatives: list[tuple[str, str, float]]


@dataclass
class BackendQuery:
    groups: list[TermGroup] = field(default_factory=list)
    # False: every group must match (AND); True: any (OR), used as a fallback.
    relaxed: bool = False
    # facet -> accepted values (OR within a facet, AND across facets)
    filters: dict[str, list[str]] = field(default_factory=dict)
    scope: Scope = field(default_factory=Scope)
    sort: str = "relevance"  # relevance | newest | popular
    offset: int = 0
    limit: int = 20
    facets: tuple[str, ...] = ()
    # Only these documents ("resource:<content_id>"...): a filter resolved outside the
    # index, such as the curriculum's chapter.  None: no such restriction.
    ids: frozenset[str] | None = None


@dataclass
class BackendHit:
    fields: dict
    score: float | None


@dataclass
class BackendResults:
    hits: list[BackendHit]
    total: int
    facets: dict[str, dict[str, int]]


class IndexBusy(Exception):
    """Another writer kept the index locked for too long; try again later."""


class SearchBackend(abc.ABC):
    """What the search feature needs from an engine."""

    # True: writes go through the caller's database session and commit with it, so the
    # signal receivers index inside the publishing transaction (see app.search.receivers).
    transactional = False

    def describe(self) -> str:
        """Where the index lives, for messages."""
        return type(self).__name__

    @abc.abstractmethod
    def upsert(self, documents: list[dict], timeout: float | None = None) -> None:
        """Add or replace documents.  Raises :class:`IndexBusy` when another writer holds
        the index for longer than ``timeout`` seconds (backend default when None)."""
        ...

    @abc.abstractmethod
    def delete(self, doc_ids: list[str], timeout: float | None = None) -> None: ...

    @abc.abstractmethod
    def search(self, query: BackendQuery) -> BackendResults: ...

    @abc.abstractmethod
    def rebuild(
        self, documents: Iterable[dict], progress: Callable[[int], None] | None = None
    ) -> int:
        """Build a complete new index from ``documents`` and swap it in atomically."""
        ...

    @abc.abstractmethod
    def fingerprints(self) -> dict[str, str]:
        """doc id -> fingerprint of every indexed document."""
        ...

    @abc.abstractmethod
    def doc_frequency(self, field_name: str, text: str) -> int: ...

    def prefetch_frequencies(self, keys: Iterable[tuple[str, str]]) -> None:
        """Hint: :meth:`doc_frequency` will soon be asked for these ``(field, text)``
        pairs.  A backend with round trips (PostgreSQL) reads them all at once."""
        return None

    @abc.abstractmethod
    def suggest_english(self, word: str) -> str | None:
        """The closest word of the index vocabulary (edit distance), or None."""
        ...

    @abc.abstractmethod
    def chinese_vocabulary(self) -> dict[str, tuple[str, int]]:
        """pinyin -> (most frequent Chinese title word with that pinyin, its frequency)."""
        ...

    @abc.abstractmethod
    def count(self) -> int: ...

    @abc.abstractmethod
    def size_bytes(self) -> int: ...

    @abc.abstractmethod
    def clear(self) -> None: ...
