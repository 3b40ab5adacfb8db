"""The search results page: ``/search?q=...``.  Thin: parse, call the service, render."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for
from flask_babel import get_locale

from app.accounts.auth import actor
from app.errors import Invalid
from app.search import services

bp = Blueprint("search", __name__)


def _args() -> tuple[str, dict, str, int]:
    filters = {}
    for name in services.FACET_VOCABULARIES:
        values = [v for v in request.args.getlist(name) if v]
        if values:
            filters[name] = values
    try:
        page = int(request.args.get("page", 1))
    except ValueError:
        raise Invalid("Invalid page.", fields={"page": ["A number."]}) from None
    return request.args.get("q", ""), filters, request.args.get("sort") or "relevance", page


def _chapter() -> int | None:
    """The chapter filter (a curriculum node id); junk in a bookmarked URL is ignored."""
    try:
        value = int(request.args.get("chapter", ""))
    except ValueError:
        return None
    return value if 0 < value <= 2**31 - 1 else None


def _url(q: str, filters: dict, sort: str, page: int = 1) -> str:
    args = {name: values for name, values in filters.items() if values}
    if _chapter() is not None:
        args["chapter"] = _chapter()
    if q:
        args["q"] = q
    if sort != "relevance":
        args["sort"] = sort
    if page > 1:
        args["page"] = page
    return url_for("search.results", **args)


@bp.route("/search")
def results():
    q, filters, sort, page = _args()
    result = services.search(
        actor(),
        q,
        filters=filters,
        sort=sort,
        page=page,
        per_page=20,
        locale=str(get_locale() or ""),
        chapter=_chapter(),
    )
    applied = result.filters
    # Words turned into filters disappear from the query in the links we build.
    facet_word_text = {w["word"] for w in result.facet_words}
    remaining = (
        " ".join(w for w in result.query.split() if w.lower() not in facet_word_text)
        if facet_word_text
        else result.query
    )

    def toggle(facet: str, value: str) -> str:
        chosen = {k: list(v) for k, v in applied.items()}
        values = chosen.setdefault(facet, [])
        if value in values:
            values.remove(value)
        else:
            values.append(value)
        return _url(remaining, chosen, result.sort)

    def page_url(number: int) -> str:
        return _url(
            result.query if not facet_word_text else remaining, applied, result.sort, number
        )

    def sort_url(name: str) -> str:
        return _url(result.query if not facet_word_text else remaining, applied, name)

    return render_template(
        "search/results.html",
        result=result,
        toggle=toggle,
        page_url=page_url,
        sort_url=sort_url,
        suggestion_url=_url(result.did_you_mean or "", filters, result.sort),
        facet_names=services.SHOWN_FACETS,
        chapter=_chapter(),
        chapters=services.chapter_choices((applied.get("edition") or [None])[0]),
    )
