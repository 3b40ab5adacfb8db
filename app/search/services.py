"""Search: turning catalog rows into documents, queries into results.

Public entry points:

- :func:`search` — what pages, the API and the LTI deep-linking picker call.
- :func:`index_content` / :func:`remove_content` — keep one item current (signals, jobs).
- :func:`reindex` — rebuild everything into a new index and swap it in.
- :func:`check_index` — compare index and database (missing / stale / extra).

Visibility is part of every query (see :func:`scope_for`), never a filter over a page of
results, so totals, facet counts and pages are right for each reader.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC

from flask import current_app
from markupsafe import Markup
from sqlalchemy import select

from app import sharing
from app.catalog import vocab
from app.catalog.models import Course, Resource, State
from app.errors import Invalid
from app.extensions import db
from app.search import analysis
from app.search.backend import BackendQuery, IndexBusy, Scope, SearchBackend, TermGroup
from app.search.highlight import MatchTerms, highlight

MAX_QUERY_CHARS = 200
MAX_WORDS = 12
MAX_PAGE = 500
MAX_PER_PAGE = 100
SORTS = ("relevance", "newest", "popular")
SORT_ALIASES = {"most_used": "popular", "usage": "popular", "recent": "newest"}

# facet -> vocabulary whose codes are its values (None: free values, e.g. district ids)
FACET_VOCABULARIES = {
    "type": None,
    "subject": "subject",
    "grade": "grade",
    "edition": "edition",
    "kind": None,  # resource and course kinds
    "district": None,
    "language": "language",
    "licence": "licence",
    "category": "category",
}
SHOWN_FACETS = ("type", "kind", "subject", "grade", "edition", "district", "language", "licence")


# --- backend --------------------------------------------------------------------------


def get_backend(app=None) -> SearchBackend:
    app = app or current_app._get_current_object()
    backend = app.extensions.get("search_backend")
    if backend is None:
        from app.search.whoosh_backend import WhooshBackend

        backend = app.extensions["search_backend"] = WhooshBackend(app.config["SEARCH_INDEX_DIR"])
    return backend


# --- documents ------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def plain_text(markup: str | None) -> str:
    if not markup:
        return ""
    text = _TAG.sub(" ", markup.replace("<br", "\n<br").replace("</p>", "</p>\n"))
    return _SPACE.sub(" ", html.unescape(text)).strip()


def _alignment_terms(content_id: str) -> list[str]:
    """Lesson and knowledge-point titles aligned to a resource (curriculum feature, when
    installed)."""
    try:
        from app.curriculum.services import alignments_for_resource
    except ImportError:
        return []
    try:
        alignments = alignments_for_resource(content_id) or []
    except Exception:  # the curriculum feature must never break indexing
        current_app.logger.exception("alignments_for_resource failed for %s", content_id)
        return []
    terms = []
    for alignment in alignments:
        if isinstance(alignment, str):
            terms.append(alignment)
            continue
        get = (
            alignment.get
            if isinstance(alignment, dict)
            else (lambda k, a=alignment: getattr(a, k, None))
        )
        for key in (
            "title",
            "full_statement",
            "human_coding_scheme",
            "lesson_title",
            "knowledge_point_title",
            "title_en",
            "label",
            "unit",
            "volume",
        ):
            value = get(key)
            if isinstance(value, str) and value.strip():
                terms.append(value.strip())
    return list(dict.fromkeys(terms))[:50]


def _epoch(moment) -> int:
    if moment is None:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def document_for(obj: Course | Resource) -> dict:
    """The search document of a published course or resource."""
    from app.search.whoosh_backend import fingerprint

    is_course = isinstance(obj, Course)
    en = (obj.translations or {}).get("en", {}) or {}
    body_parts = [plain_text(obj.description_html), plain_text(en.get("description_html"))]
    if is_course:
        for section in obj.sections:
            body_parts.append(section.title or "")
            body_parts.append(section.summary or "")
            body_parts.extend(item.title or "" for item in section.items)
        grades = [obj.grade] if obj.grade else []
        terms = []
    else:
        grades = list(obj.grades)
        terms = _alignment_terms(obj.content_id)
    doc = {
        "id": f"{'course' if is_course else 'resource'}:{obj.content_id}",
        "type": "course" if is_course else "resource",
        "content_id": obj.content_id,
        "version": obj.version,
        "kind": obj.kind,
        "subject": obj.subject or "",
        "grade": grades,
        "edition": (obj.edition or "") if is_course else "",
        "category": (obj.category or "") if is_course else "",
        "language": obj.language or "",
        "licence": obj.licence or "",
        "district": str(obj.district_id),
        "school": str(obj.school_id or ""),
        "visibility": str(
            obj.visibility.value if hasattr(obj.visibility, "value") else obj.visibility
        ),
        "author": obj.author.public_id if obj.author else "",
        "published": _epoch(obj.published_at),
        "usage": int(getattr(obj, "usage_count", 0) or 0),
        "title": obj.title,
        "title_en": en.get("title") or "",
        "summary": obj.summary or "",
        "summary_en": en.get("summary") or "",
        "body": " ".join(p for p in body_parts if p)[:5000],
        "tags": [tag.name for tag in obj.tags],
        "terms": terms,
        "url": f"/{'courses' if is_course else 'resources'}/{obj.content_id}",
    }
    doc["fingerprint"] = fingerprint(doc)
    return doc


def _published_row(model, content_id: str):
    return db.session.execute(
        select(model).where(model.content_id == content_id, model.state == State.PUBLISHED)
    ).scalar_one_or_none()


def _model(kind: str):
    if kind not in ("course", "resource"):
        raise ValueError(f"unknown content type {kind!r}")
    return Course if kind == "course" else Resource


# A request waits this long for the index lock; then the update moves to a background job.
REQUEST_WRITE_WAIT = 5.0
JOB_WRITE_WAIT = 120.0


def index_content(
    kind: str, content_id: str, wait: float | None = None, retry_later: bool = True
) -> str:
    """Bring one item's document in line with the database: index its published version,
    or remove it when nothing is published.  Returns "indexed", "removed" or "queued"
    (the index stayed locked by another writer for ``wait`` seconds, so a background job
    retries with a longer wait)."""
    row = _published_row(_model(kind), content_id)
    backend = get_backend()
    try:
        if row is None:
            backend.delete([f"{kind}:{content_id}"], timeout=wait)
            return "removed"
        backend.upsert([document_for(row)], timeout=wait)
        return "indexed"
    except IndexBusy:
        if not retry_later:
            raise
        from app.jobs import enqueue

        enqueue("app.search.services:index_content_job", kind, content_id)
        return "queued"


def index_content_job(kind: str, content_id: str) -> str:
    """Background retry of :func:`index_content` (waits longer, does not re-queue; if it
    still fails, ``flask search check --repair`` picks the item up)."""
    return index_content(kind, content_id, wait=JOB_WRITE_WAIT, retry_later=False)


def remove_content(kind: str, content_id: str) -> None:
    _model(kind)
    get_backend().delete([f"{kind}:{content_id}"])


def iter_documents(batch: int = 200) -> Iterator[dict]:
    """Every published course and resource as a document, streamed in batches."""
    for model in (Resource, Course):
        last_id = 0
        while True:
            rows = (
                db.session.execute(
                    select(model)
                    .where(model.state == State.PUBLISHED, model.id > last_id)
                    .order_by(model.id)
                    .limit(batch)
                )
                .scalars()
                .all()
            )
            if not rows:
                break
            for row in rows:
                yield document_for(row)
            last_id = rows[-1].id
            db.session.expunge_all()


def count_documents() -> int:
    from sqlalchemy import func

    return sum(
        db.session.execute(select(func.count(m.id)).where(m.state == State.PUBLISHED)).scalar_one()
        for m in (Resource, Course)
    )


@dataclass
class CheckReport:
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    indexed: int = 0
    published: int = 0
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale or self.extra)


def check_index(repair: bool = False, progress: Callable[[int], None] | None = None) -> CheckReport:
    """Compare the index with the database; with ``repair``, fix every difference."""
    backend = get_backend()
    indexed = backend.fingerprints()
    report = CheckReport(indexed=len(indexed))
    fresh: list[dict] = []
    seen = set()
    for doc in iter_documents():
        report.published += 1
        seen.add(doc["id"])
        have = indexed.get(doc["id"])
        if have is None:
            report.missing.append(doc["id"])
            fresh.append(doc)
        elif have != doc["fingerprint"]:
            report.stale.append(doc["id"])
            fresh.append(doc)
        if progress:
            progress(1)
    report.extra = sorted(set(indexed) - seen)
    if repair and not report.ok:
        for start in range(0, len(fresh), 500):
            backend.upsert(fresh[start : start + 500])
        backend.delete(report.extra)
        report.repaired = True
    return report


def reindex(progress: Callable[[int], None] | None = None, procs: int = 1) -> int:
    """Rebuild the whole index into a new folder, swap it in, then catch up with changes
    made while it was building.  Returns the number of documents."""
    backend = get_backend()
    count = backend.rebuild(iter_documents(), progress=progress, procs=procs)
    check_index(repair=True)
    return count


# --- who may see what -----------------------------------------------------------------


def scope_for(user) -> Scope:
    """Mirror of :func:`app.catalog.services.visibility_condition` for the index."""
    if user is not None and user.is_platform_admin:
        return Scope(everything=True)
    if user is None:
        return Scope()
    return Scope(
        school_ids=frozenset(str(i) for i in user.member_school_ids()),
        district_ids=frozenset(str(i) for i in user.member_district_ids()),
        admin_district_ids=frozenset(str(i) for i in user.admin_district_ids()),
        author=user.public_id,
        # SHARING HOOK (app/sharing): items received by subscription.
        subscribed_content_ids=frozenset(
            sharing.subscribed_content_ids(user.member_district_ids())
        ),
    )


# --- query understanding ----------------------------------------------------------------

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


# --- the result object ------------------------------------------------------------------


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
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool


@dataclass
class SearchResult:
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

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def district_labels(ids, locale: str | None) -> dict[str, str]:
    """Names of the given districts in one query."""
    from app.accounts.models import District

    wanted = [int(i) for i in ids if str(i).isdigit()]
    if not wanted:
        return {}
    english = (locale or "").startswith("en")
    rows = db.session.execute(select(District).where(District.id.in_(wanted))).scalars()
    return {
        str(d.id): ((getattr(d, "name_en", None) or d.name) if english else d.name) for d in rows
    }


def facet_label(facet: str, value: str, locale: str | None, districts: dict | None = None) -> str:
    english = (locale or "").startswith("en")
    if facet == "kind":
        entry = vocab.RESOURCE_KINDS.get(value) or vocab.COURSE_KINDS.get(value)
        return (entry[1] if english else entry[0]) if entry else value
    if facet == "type":
        return {"course": ("课程", "Courses"), "resource": ("资源", "Resources")}.get(
            value, (value, value)
        )[1 if english else 0]
    if facet == "district" and districts is not None:
        return districts.get(value, value)
    if facet == "district":
        from app.accounts.models import District

        try:
            district = db.session.get(District, int(value))
        except (TypeError, ValueError):
            district = None
        if district is None:
            return value
        return (getattr(district, "name_en", None) or district.name) if english else district.name
    vocabulary = FACET_VOCABULARIES.get(facet)
    return vocab.label(vocabulary, value, locale) if vocabulary else value


def _check_filters(filters: dict | None) -> dict[str, list[str]]:
    cleaned: dict[str, list[str]] = {}
    errors: dict[str, list[str]] = {}
    for name, values in (filters or {}).items():
        if name not in FACET_VOCABULARIES:
            errors[name] = [f"Unknown facet. Known: {', '.join(FACET_VOCABULARIES)}."]
            continue
        if values in (None, "", []):
            continue
        values = [values] if isinstance(values, str | int) else list(values)
        values = [str(v) for v in values if str(v) != ""][:20]
        vocabulary = FACET_VOCABULARIES[name]
        if vocabulary:
            bad = [v for v in values if v not in vocab.VOCABULARIES[vocabulary]]
        elif name == "kind":
            bad = [
                v for v in values if v not in vocab.RESOURCE_KINDS and v not in vocab.COURSE_KINDS
            ]
        elif name == "type":
            bad = [v for v in values if v not in ("course", "resource")]
        else:
            bad = [v for v in values if not v.isdigit()]
        if bad:
            errors[name] = [f"Unknown value {bad[0]!r}."]
            continue
        if values:
            cleaned[name] = values
    if errors:
        raise Invalid("Unknown search filter.", fields=errors)
    return cleaned


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
) -> SearchResult:
    """Search courses and resources ``user`` may see.

    ``q`` free text (Chinese, English, pinyin, initials; any length — cut to
    ``MAX_QUERY_CHARS``; operators and wildcards are ignored).  ``filters`` maps facet
    name (``type kind subject grade edition district language licence category``) to a
    code or list of codes; an unknown facet or value raises :class:`app.errors.Invalid`.
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
    given = _check_filters(filters)
    backend = get_backend()
    scope = scope_for(user)
    parsed = expand_unknown_words(backend, parse_query(q, facet_words=facet_words))

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
