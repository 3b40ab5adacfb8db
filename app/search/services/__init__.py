"""Search services: turning catalog rows into documents, queries into results.

One module per sub-domain:

- :mod:`.documents` — the document of a published course or resource (the curriculum
  words come through :func:`~.documents.alignment_terms`);
- :mod:`.indexing` — :func:`index_content` / :func:`remove_content` keep one item
  current (signals, jobs), :func:`reindex` rebuilds and swaps, :func:`check_index`
  compares index and database (missing / stale / extra);
- :mod:`.permissions` — :func:`scope_for`, who may see what;
- :mod:`.queries` — query understanding (facet words, term groups, did-you-mean);
- :mod:`.facets` — facet names, labels and filter checks;
- :mod:`.searching` — :func:`search`, what pages, the API and the LTI deep-linking
  picker call.

Visibility is part of every query (see :func:`scope_for`), never a filter over a page of
results, so totals, facet counts and pages are right for each reader.
"""

from app.search.services.documents import (
    alignment_terms,
    chapter_choices,
    count_documents,
    document_for,
    iter_documents,
    plain_text,
)
from app.search.services.facets import (
    FACET_VOCABULARIES,
    SHOWN_FACETS,
    FacetValue,
    check_filters,
    district_labels,
    facet_label,
)
from app.search.services.indexing import (
    JOB_WRITE_WAIT,
    REQUEST_WRITE_WAIT,
    CheckReport,
    check_index,
    get_backend,
    index_content,
    index_content_job,
    reindex,
    remove_content,
)
from app.search.services.permissions import scope_for
from app.search.services.queries import (
    MAX_QUERY_CHARS,
    MAX_WORDS,
    ParsedQuery,
    expand_unknown_words,
    match_terms,
    normalise_query,
    parse_query,
    suggest,
    term_group,
)
from app.search.services.searching import (
    MAX_PAGE,
    MAX_PER_PAGE,
    SORT_ALIASES,
    SORTS,
    SearchHit,
    SearchResult,
    search,
)

__all__ = [
    "chapter_choices",
    "FACET_VOCABULARIES",
    "JOB_WRITE_WAIT",
    "MAX_PAGE",
    "MAX_PER_PAGE",
    "MAX_QUERY_CHARS",
    "MAX_WORDS",
    "REQUEST_WRITE_WAIT",
    "SHOWN_FACETS",
    "SORTS",
    "SORT_ALIASES",
    "CheckReport",
    "FacetValue",
    "ParsedQuery",
    "SearchHit",
    "SearchResult",
    "alignment_terms",
    "check_filters",
    "check_index",
    "count_documents",
    "district_labels",
    "document_for",
    "expand_unknown_words",
    "facet_label",
    "get_backend",
    "index_content",
    "index_content_job",
    "iter_documents",
    "match_terms",
    "normalise_query",
    "parse_query",
    "plain_text",
    "reindex",
    "remove_content",
    "scope_for",
    "search",
    "suggest",
    "term_group",
]
