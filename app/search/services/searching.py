"""The search entry point: validates the request, runs it with its fallbacks (facet
words as text, the did-you-mean correction, any-word matching) and builds the result."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from app.common.pagination import PageNumbers
from app.errors import Invalid
from app.search.backend import BackendQuery
from app.search.highlight import MatchTerms, highlight
from app.search.services.documents import chapter_content_ids
from app.search.services.facets import (
    FACET_VOCABULARIES,
    SHOWN_FACETS,
    FacetValue,
    check_filters,
    district_labels,
    facet_label,
)
from app.search.services.indexing import get_backend
from app.search.services.permissions import scope_for
from app.search.services.queries import (
    ParsedQuery,
    expand_unknown_words,
    frequency_keys,
    match_terms,
    parse_query,
    suggest,
    term_group,
)

MAX_PAGE = 500
MAX_PER_PAGE = 100
SORTS = ("relevance", "newest", "popular")
SORT_ALIASES = {"most_used": "popular", "usage": "popular", "recent": "newest"}


@dataclass
class SearchHit:
    """One result.  ``title_html``/``snippet_html`` are safe HTML (escaped text and
    ``<mark>`` around matches in the original wording)."""

    type: str  # "course" | "resource"
    content_id: str
    version: int | None
    title: str
    title_en: str
    summary: str
    title_html: Markup
    snippet_html: Markup
    kind: str
    subject: str
    grades: list[str]
    edition: str
    category: str
    language: str
    licence: str
    district_id: int | None
    url: str
    published_at: int
    usage_count: int
    tags: list[str]
    score: float | None


@dataclass
class SearchResult(PageNumbers):
    """What :func:`search` returns.

    ``items`` is one page of :class:`SearchHit`; ``total`` counts every visible match;
    ``facets`` maps facet name → values with counts (over all matches, not the page);
    ``filters`` are the filters applied (given + recognised from query words, listed in
    ``facet_words``); ``did_you_mean`` is a corrected query, and ``corrected`` says the
    results are already those of the correction (the query itself found nothing);
    ``relaxed`` says not every word matched (any-word fallback).
    """

    query: str
    items: list[SearchHit]
    total: int
    page: int
    per_page: int
    sort: str
    facets: dict[str, list[FacetValue]]
    filters: dict[str, list[str]]
    facet_words: list[dict]
    did_you_mean: str | None = None
    corrected: bool = False
    relaxed: bool = False


def _hit(fields: dict, score, terms: MatchTerms, locale: str | None) -> SearchHit:
    english = (locale or "").startswith("en")
    title = fields.get("title") or ""
    title_en = fields.get("title_en") or ""
    display_title = title_en if english and title_en else title
    summary = (
        fields.get("summary_en") if english and fields.get("summary_en") else fields.get("summary")
    ) or ""
    snippet_html = highlight(summary, terms, max_chars=160)
    if terms and "<mark>" not in snippet_html:
        extra = " ".join((fields.get("tags") or []) + (fields.get("terms") or []))
        other_title = title if english else title_en
        for candidate in (other_title, fields.get("body") or "", extra):
            if candidate and terms.first_position(candidate) is not None:
                candidate_html = highlight(candidate, terms, max_chars=160)
                if "<mark>" in candidate_html:
                    snippet_html = candidate_html
                    break
    district = fields.get("district")
    return SearchHit(
        type=fields.get("type", ""),
        content_id=fields.get("content_id", ""),
        version=fields.get("version"),
        title=display_title,
        title_en=title_en,
        summary=summary,
        title_html=highlight(display_title, terms),
        snippet_html=snippet_html,
        kind=fields.get("kind", ""),
        subject=fields.get("subject", ""),
        grades=fields.get("grade") or [],
        edition=fields.get("edition", ""),
        category=fields.get("category", ""),
        language=fields.get("language", ""),
        licence=fields.get("licence", ""),
        district_id=int(district) if district and str(district).isdigit() else None,
        url=fields.get("url", ""),
        published_at=int(fields.get("published") or 0),
        usage_count=int(fields.get("usage") or 0),
        tags=list(fields.get("tags") or []),
        score=score,
    )


def search(
    user,
    q: str | None,
    filters: dict | None = None,
    sort: str = "relevance",
    page: int = 1,
    per_page: int = 20,
    locale: str | None = None,
    facets: tuple[str, ...] = SHOWN_FACETS,
    facet_words: bool = True,
    chapter: int | None = None,
) -> SearchResult:
    """Search courses and resources ``user`` may see.

    ``q`` free text (Chinese, English, pinyin, initials; any length — cut to
    ``MAX_QUERY_CHARS``; operators and wildcards are ignored).  ``filters`` maps facet
    name (``type kind subject grade edition district language licence category``) to a
    code or list of codes; an unknown facet or value raises :class:`app.errors.Invalid`.
    ``chapter`` (a curriculum node id: chapter, section or lesson) keeps the resources
    aligned to that part of the textbook (an unknown one keeps nothing).
    ``sort`` is ``relevance`` | ``newest`` | ``popular`` (most used).  Words of ``q``
    naming a facet value ("视频", "video", "七年级", "数学") become filters unless
    ``facet_words`` is False.  Pages beyond the last are empty.
    """
    sort = SORT_ALIASES.get(sort or "relevance", sort or "relevance")
    errors = {}
    if sort not in SORTS:
        errors["sort"] = [f"One of {', '.join(SORTS)}."]
    if not isinstance(page, int) or page < 1 or page > MAX_PAGE:
        errors["page"] = [f"Must be between 1 and {MAX_PAGE}."]
    if not isinstance(per_page, int) or per_page < 1 or per_page > MAX_PER_PAGE:
        errors["per_page"] = [f"Must be between 1 and {MAX_PER_PAGE}."]
    unknown_facets = [f for f in facets if f not in FACET_VOCABULARIES]
    if unknown_facets:
        errors["facets"] = [f"Unknown facet {unknown_facets[0]!r}."]
    if errors:
        raise Invalid("Invalid search request.", fields=errors)
    given = check_filters(filters)
    only_ids = None
    if chapter is not None:
        if not isinstance(chapter, int) or not 0 < chapter <= 2**31 - 1:
            raise Invalid("Invalid search request.", fields={"chapter": ["Not a valid id."]})
        only_ids = frozenset(f"resource:{cid}" for cid in chapter_content_ids(user, chapter))
    backend = get_backend()
    scope = scope_for(user)
    first = parse_query(q, facet_words=facet_words)
    # one round trip for every frequency the steps below look up (PostgreSQL)
    backend.prefetch_frequencies(
        frequency_keys(first.words + parse_query(q, facet_words=False).words)
    )
    parsed = expand_unknown_words(backend, first)

    def run(parsed_query: ParsedQuery, use_facet_words: bool, relaxed: bool = False):
        merged = {k: list(v) for k, v in given.items()}
        if use_facet_words:
            for facet, values in parsed_query.filters.items():
                if facet not in merged:
                    merged[facet] = values
        request = BackendQuery(
            groups=[term_group(w) for w in parsed_query.words],
            relaxed=relaxed,
            filters=merged,
            scope=scope,
            sort=sort,
            offset=(page - 1) * per_page,
            limit=per_page,
            facets=tuple(facets),
            ids=only_ids,
        )
        return backend.search(request), merged

    results, applied = run(parsed, True)
    used = parsed
    relaxed = corrected = False
    did_you_mean = None
    if results.total == 0 and parsed.facet_words:
        # The facet word may have been meant as text ("音乐" in a course title).
        as_text = parse_query(q, facet_words=False)
        if as_text.words:
            retry, retry_applied = run(as_text, False)
            if retry.total:
                results, applied, used = retry, retry_applied, as_text
    if parsed.words:
        did_you_mean = suggest(backend, used)
    if results.total == 0 and did_you_mean:
        fixed = expand_unknown_words(backend, parse_query(did_you_mean, facet_words=facet_words))
        retry, retry_applied = run(fixed, True)
        if retry.total:
            results, applied, used, corrected = retry, retry_applied, fixed, True
    if results.total == 0 and len(used.words) > 1:
        retry, retry_applied = run(used, True, relaxed=True)
        if retry.total:
            results, applied, relaxed = retry, retry_applied, True
    terms = match_terms(used.words, backend)
    items = [_hit(h.fields, h.score, terms, locale) for h in results.hits]
    facet_values = {}
    districts = (
        district_labels(results.facets.get("district", {}), locale) if "district" in facets else {}
    )
    for name in facets:
        counts = results.facets.get(name, {})
        selected = set(applied.get(name, []))
        values = [
            FacetValue(
                value=v,
                label=facet_label(name, v, locale, districts),
                count=n,
                selected=v in selected,
            )
            for v, n in counts.items()
        ]
        values.sort(key=lambda fv: (-fv.count, fv.label))
        facet_values[name] = values
    return SearchResult(
        query=parsed.text,
        items=items,
        total=results.total,
        page=page,
        per_page=per_page,
        sort=sort,
        facets=facet_values,
        filters=applied,
        facet_words=[
            {"facet": f, "value": c, "word": w} for f, c, w in used.facet_words if f in applied
        ],
        did_you_mean=did_you_mean,
        corrected=corrected,
        relaxed=relaxed,
    )
