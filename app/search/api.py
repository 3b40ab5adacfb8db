"""``GET /api/v1/search``."""

from __future__ import annotations

from flask import request
from flask_babel import get_locale
from flask_smorest import Blueprint

from app.accounts.auth import actor
from app.errors import Invalid
from app.search import schemas, services

blp = Blueprint(
    "search_api",
    __name__,
    url_prefix="/api/v1",
    description="Full-text search (Chinese and English)",
)


def filters_from(args: dict) -> dict:
    return {name: args[name] for name in services.FACET_VOCABULARIES if args.get(name)}


@blp.route("/search")
@blp.arguments(schemas.SearchArgsSchema, location="query")
@blp.response(200, schemas.SearchResultSchema)
def search(args):
    """Search the courses and resources the caller may see.

    Chinese is segmented with jieba, English stemmed; pinyin (``jingju``) and initials
    (``jj``) find Chinese titles.  Facet counts cover every match the caller may see.
    Operators and wildcards are not interpreted; pages past the end are empty.
    """
    unknown = sorted(set(request.args) - set(schemas.SearchArgsSchema().fields))
    if unknown:
        raise Invalid(
            "Unknown search parameter.",
            fields={
                name: [f"Unknown parameter; facets are {', '.join(services.FACET_VOCABULARIES)}."]
                for name in unknown
            },
        )
    return services.search(
        actor(),
        args["q"],
        filters=filters_from(args),
        sort=args["sort"],
        page=args["page"],
        per_page=args["per_page"],
        locale=str(get_locale() or ""),
        facets=tuple(args.get("facets") or services.SHOWN_FACETS),
        facet_words=args["facet_words"],
        chapter=args.get("chapter"),
    )
