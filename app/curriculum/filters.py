"""The curriculum's filters of the resource catalog and of search: a textbook edition
and a chapter (or section, or lesson).  Both keep the published resources aligned to
that part of the textbook, through knowledge points and equivalent lessons of other
editions too.  Registered with the catalog (``ResourceFilter``) so that the catalog does
not import this feature; search calls :func:`filter_content_ids` (search → curriculum
is an allowed arrow)."""

from __future__ import annotations

from flask import render_template

from app.catalog import vocab
from app.catalog.services import ResourceFilter
from app.curriculum.services import browse, nodes
from app.errors import NotFound
from app.i18n import current_language

MAX_ID = 2**31 - 1


def parse_chapter(value) -> int | None:
    try:
        number = int(str(value or "").strip())
    except ValueError:
        return None
    return number if 0 < number <= MAX_ID else None


def parse_edition(value) -> str | None:
    value = str(value or "").strip()
    return value if value in vocab.EDITIONS else None


def filter_content_ids(user, edition: str | None, chapter: int | None) -> set[str] | None:
    """The resources an edition and/or chapter filter keeps (None: neither is set).  An
    unknown chapter keeps nothing (a stale bookmark shows an empty list, not an error)."""
    kept = None
    if chapter is not None:
        try:
            kept = browse.chapter_content_ids(user, chapter)
        except NotFound:
            kept = set()
    if edition is not None:
        ids = browse.edition_content_ids(user, edition)
        kept = ids if kept is None else kept & ids
    return kept


def _content_ids(user, args) -> set[str] | None:
    return filter_content_ids(
        user, parse_edition(args.get("edition")), parse_chapter(args.get("chapter"))
    )


def chapter_options(edition: str | None) -> list[tuple[int, str]]:
    """(node id, label) of every chapter a filter may offer, labelled with its volume."""
    english = current_language().startswith("en")
    volumes = {v.identifier: v for v in nodes.list_volumes()}
    out = []
    for unit in browse.chapters_of(edition=edition):
        volume = volumes.get(unit.volume_identifier)
        prefix = " ".join(
            p
            for p in (
                vocab.label("edition", unit.edition, current_language()),
                volume.display_title(current_language()) if volume else "",
            )
            if p
        )
        title = unit.title_en if english and unit.title_en else unit.title
        out.append((unit.id, f"{prefix} · {title}" if prefix else title))
    return out


def render_fields(args) -> str:
    """The edition and chapter selects of the catalog's and search's filter forms."""
    edition, chapter = parse_edition(args.get("edition")), parse_chapter(args.get("chapter"))
    editions = [code for code in vocab.EDITIONS if nodes.list_volumes(edition=code)]
    if not editions:
        return ""
    return render_template(
        "curriculum/_catalog_filters.html",
        editions=editions,
        edition=edition,
        chapters=chapter_options(edition),
        chapter=chapter,
    )


RESOURCE_FILTER = ResourceFilter(
    names=("edition", "chapter"), content_ids=_content_ids, render=render_fields
)
