"""Loading content and its versions, and listing the catalog (filters, pages, facets)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from blinker import Namespace
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload

from app.accounts.models import User
from app.catalog.models import (
    Course,
    Resource,
    ResourceGrade,
    State,
    Tag,
    Visibility,
)
from app.catalog.services.permissions import (
    ContentModel,
    beyond_region_condition,
    can_edit,
    can_view,
    require_user,
    visibility_condition,
    visibility_key,
)
from app.common import cache
from app.common.pagination import Page, paginate
from app.errors import Forbidden, Invalid, NotFound
from app.extensions import db

CONTENT_ID = re.compile(r"^[0-9A-Za-z-]{1,36}$")


def content_rows(model: ContentModel, content_id: str) -> list:
    """Every version of one content, oldest first ([] for an id that cannot exist)."""
    # Ids come straight from URLs: anything that is not a plain id (NUL bytes, 10 kB of
    # junk) is simply not found rather than sent to the database.
    if not isinstance(content_id, str) or not CONTENT_ID.match(content_id):
        return []
    return list(
        db.session.execute(
            select(model).filter_by(content_id=content_id).order_by(model.version)
        ).scalars()
    )


def published_row(rows: list):
    return next((row for row in rows if row.state in (State.PUBLISHED, State.ARCHIVED)), None)


def working_row(rows: list):
    """The row the owner edits: the open draft or review copy, else the newest row."""
    for row in reversed(rows):
        if row.state in (State.DRAFT, State.IN_REVIEW):
            return row
    return rows[-1] if rows else None


def readable_rows(user: User | None, rows: list) -> list:
    """The versions of one content ``user`` may read (all of them for an editor)."""
    if not rows:
        return []
    if can_edit(user, rows[-1]):
        return list(rows)
    current = next((row for row in rows if row.state == State.PUBLISHED), None)
    if current is None or not can_view(user, current):
        return []
    return [
        row
        for row in rows
        if row.state in (State.PUBLISHED, State.SUPERSEDED) and can_view(user, row)
    ]


def load_for_write(
    user: User | None, model: ContentModel, content_id: str, action: str
) -> tuple[User, list]:
    """All versions of a content ``user`` wants to change: 401 without a user, 404 when
    she cannot even read it, 403 when she can read but not edit it."""
    user = require_user(user)
    rows = content_rows(model, content_id)
    if not readable_rows(user, rows):
        raise NotFound(f"{model.__name__} not found.")
    if not can_edit(user, rows[-1]):
        raise Forbidden(
            f"Only the owner or her district admin can {action} this {model.__name__.lower()}."
        )
    return user, rows


def get_content(
    user: User | None, model: ContentModel, content_id: str, version: str | int | None = None
):
    """Load what ``user`` may see of one content.

    ``version`` None → the published row (or, for an editor with nothing published,
    her working draft); ``"latest"`` → the editor's working row; a number → that version.
    Anything the user may not see is reported as not found, so ids cannot be probed.
    """
    rows = content_rows(model, content_id)
    not_found = NotFound(f"{model.__name__} not found.")
    readable = readable_rows(user, rows)
    if not readable:
        raise not_found
    editor = can_edit(user, rows[-1])
    if version in (None, "", "published"):
        row = published_row(readable)
        if row is None and editor:
            row = working_row(readable)
    elif version == "latest":
        if not editor:
            raise not_found
        row = working_row(readable)
    else:
        try:
            number = int(version)
        except (TypeError, ValueError):
            raise Invalid(
                "Invalid version.", fields={"version": ["A number, 'latest' or 'published'."]}
            ) from None
        row = next((r for r in readable if r.version == number), None)
    if row is None:
        raise not_found
    return row


def list_versions(user: User | None, model: ContentModel, content_id: str) -> list:
    """Every version ``user`` may read, oldest first (editors see drafts too)."""
    visible = readable_rows(user, content_rows(model, content_id))
    if not visible:
        raise NotFound(f"{model.__name__} not found.")
    return visible


@dataclass
class CatalogFilters:
    kind: str | None = None
    subject: str | None = None
    grade: str | None = None
    district: int | None = None
    school: int | None = None
    language: str | None = None
    licence: str | None = None
    tag: str | None = None
    category: str | None = None
    edition: str | None = None
    q: str | None = None
    sort: str = "newest"
    # Only these content ids (a filter another feature resolved, e.g. the curriculum's
    # chapter); None: no such restriction.
    content_ids: frozenset[str] | None = None


@dataclass(frozen=True)
class ResourceFilter:
    """A filter another feature adds to the resource catalog, so the catalog needs no
    import of it (the curriculum registers "edition" and "chapter").

    ``content_ids(user, args) -> set[str] | None`` reads the query arguments and returns
    the resources to keep (None: the filter is not in use); ``render(args) -> str``
    gives its form fields (escaped HTML)."""

    names: tuple[str, ...]
    content_ids: Callable[..., set[str] | None]
    render: Callable[..., str]


def register_resource_filter(app, resource_filter: ResourceFilter) -> None:
    app.extensions.setdefault("catalog_resource_filters", []).append(resource_filter)


def resource_filters() -> list[ResourceFilter]:
    from flask import current_app

    return list(current_app.extensions.get("catalog_resource_filters", []))


def _apply_filters(statement, model: ContentModel, filters: CatalogFilters):
    if filters.content_ids is not None:
        statement = statement.where(model.content_id.in_(sorted(filters.content_ids) or [""]))
    if filters.kind:
        statement = statement.where(model.kind == filters.kind)
    if filters.subject:
        statement = statement.where(model.subject == filters.subject)
    if filters.grade:
        if model is Course:
            statement = statement.where(Course.grade == filters.grade)
        else:
            statement = statement.where(
                Resource.id.in_(
                    select(ResourceGrade.resource_id).where(ResourceGrade.grade == filters.grade)
                )
            )
    if filters.district:
        statement = statement.where(model.district_id == filters.district)
    if filters.school:
        statement = statement.where(model.school_id == filters.school)
    if filters.language:
        statement = statement.where(model.language == filters.language)
    if filters.licence:
        statement = statement.where(model.licence == filters.licence)
    if filters.category and model is Course:
        statement = statement.where(Course.category == filters.category)
    if filters.edition and model is Course:
        statement = statement.where(Course.edition == filters.edition)
    if filters.tag:
        tag_table = model.tags.property.secondary
        key = tag_table.c.course_id if model is Course else tag_table.c.resource_id
        statement = statement.where(
            model.id.in_(
                select(key)
                .join(Tag, Tag.id == tag_table.c.tag_id)
                .where(Tag.name == filters.tag.strip().lower())
            )
        )
    if filters.q:
        needle = (
            "%"
            + filters.q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            + "%"
        )
        statement = statement.where(
            or_(model.title.ilike(needle, escape="\\"), model.summary.ilike(needle, escape="\\"))
        )
    return statement


_SORTS = {
    "newest": lambda m: (m.published_at.desc(), m.id.desc()),
    "oldest": lambda m: (m.published_at.asc(), m.id.asc()),
    "title": lambda m: (m.title.asc(), m.id.asc()),
}


_MAX_FILTER_TEXT = 200
# The filters given as text (a page passes them from its query string).
TEXT_FILTERS = (
    "kind",
    "subject",
    "grade",
    "language",
    "licence",
    "tag",
    "category",
    "edition",
    "q",
)


_MAX_ID = 2**31 - 1


def check_filters(filters: CatalogFilters) -> None:
    """Reject filters no database should see (pages pass query strings unchecked)."""
    errors: dict = {}
    if filters.sort not in _SORTS:
        errors["sort"] = [f"One of {', '.join(_SORTS)}."]
    for name in TEXT_FILTERS:
        value = getattr(filters, name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > _MAX_FILTER_TEXT or "\x00" in value:
            errors[name] = ["Not a valid filter value."]
    for name in ("district", "school"):
        value = getattr(filters, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_ID
        ):
            errors[name] = ["Not a valid id."]
    if errors:
        raise Invalid("Invalid filters.", fields=errors)


def _list_options(model: ContentModel) -> list:
    """Load what list pages and API summaries show in a fixed number of queries
    (tags and grades are ``selectin`` on the model), never one query per row."""
    # selectin, not joined: a JOIN makes PostgreSQL join every row before OFFSET on deep
    # pages; three small IN (...) queries on the page's ids stay cheap (docs/catalog.md).
    # The author's roles are not needed to list her name.
    return [
        selectinload(model.author).lazyload(User.roles),
        selectinload(model.school),
        selectinload(model.district),
    ]


def list_published(
    user: User | None,
    model: ContentModel,
    filters: CatalogFilters,
    page: int = 1,
    per_page: int = 20,
) -> Page:
    """One page of the published content ``user`` may read, filtered and sorted."""
    statement, count, counter = _published_statements(user, model, filters, select(model))
    statement = statement.options(*_list_options(model))
    return paginate(statement, page, per_page, count_statement=count, count=counter)


def list_published_summaries(
    user: User | None,
    model: ContentModel,
    filters: CatalogFilters,
    page: int,
    per_page: int,
    locale: str,
    summarise: Callable[[object, str], dict],
) -> Page:
    """:func:`list_published` with ``summarise(row, locale)`` of each row as the items.

    The page query reads only the rows' ids; each row's summary is cached per row and
    language (one read for the page) until the catalog changes, and only the rows not
    cached yet are loaded with their author, school, district and tags.  A list page
    not cached yet is then mostly rows that other pages, filters or readers have
    already summarised (docs/catalog.md)."""
    statement, count, counter = _published_statements(user, model, filters, select(model.id))
    ids_page = paginate(statement, page, per_page, count_statement=count, count=counter)
    ids = list(ids_page.items)

    def load(positions: list[int]) -> list[dict]:
        wanted = [ids[position] for position in positions]
        rows = db.session.execute(
            select(model).where(model.id.in_(wanted)).options(*_list_options(model))
        ).scalars()
        by_id = {row.id: row for row in rows}
        # A row deleted between the two statements is left out (None is never cached);
        # its deletion bumps the generation, so this page is not read again.
        return [summarise(by_id[row_id], locale) if row_id in by_id else None for row_id in wanted]

    parts = [("summary", model.__tablename__, row_id, locale) for row_id in ids]
    items = cache.remember_many(CACHE_SCOPE, parts, load) if ids else []
    items = [item for item in items if item is not None]
    return Page(items=items, page=ids_page.page, per_page=ids_page.per_page, total=ids_page.total)


def _published_statements(user: User | None, model: ContentModel, filters: CatalogFilters, base):
    """The sorted page statement (``base`` with the visibility condition and filters),
    its COUNT, and the function that runs the COUNT through the cache."""
    check_filters(filters)
    condition = and_(model.state == State.PUBLISHED, visibility_condition(user, model))
    statement = _apply_filters(base.where(condition), model, filters)
    count = _count_statement(user, model, filters)
    # The visibility-filtered COUNT reads every visible row: cached per visibility and
    # filters until the catalog changes (app/catalog/receivers.py bumps the generation).
    parts = ("count", model.__tablename__, visibility_key(user), _filter_key(filters))

    def counter(stmt) -> int:
        return cache.remember(CACHE_SCOPE, parts, lambda: db.session.execute(stmt).scalar_one())

    return statement.order_by(*_SORTS[filters.sort](model)), count, counter


CACHE_SCOPE = "catalog"

# After commit: a listed row changed in place (its picture or length, set by the media
# feature's jobs on a published resource), so cached pages and row summaries showing it
# are stale (app/catalog/receivers.py bumps the generation).  Sender: the app; kwargs:
# ``content_id``.
listed_row_changed = Namespace().signal("catalog-listed-row-changed")


def _count_statement(user: User | None, model: ContentModel, filters: CatalogFilters):
    """The COUNT of the published rows of ``model`` that ``user`` may read under ``filters``.

    count(*), not count(id): the same number (id is the primary key), and PostgreSQL can
    answer it from ix_*_visible alone (an index-only scan, docs/catalog.md).  For a
    signed-in reader the OR of her visibility clauses gives the planner no index
    condition, so one COUNT was a sequential scan of the table (507 buffers on 11k
    courses); counted as the region-visible rows (index-only on ``visibility =
    'region'``, like an anonymous reader's count) plus the other rows she may read (her
    school's, district's, subscribed or own rows: a bitmap of those indexes) it reads
    a third of that (docs/catalog.md).  The two parts are disjoint (``visibility`` is
    never NULL), so the sum is the same number, in one statement.  SQLite has no arrays
    and no such planner problem at its sizes: one plain COUNT there."""
    published = model.state == State.PUBLISHED

    def counted(*conditions):
        statement = select(func.count()).select_from(model).where(published, *conditions)
        return _apply_filters(statement, model, filters)

    if (
        user is None
        or user.is_platform_admin
        # A district admin reads every row of her districts, whatever their visibility:
        # that arm is most of the table's pages, so splitting would not read fewer.
        or user.admin_district_ids()
        or db.engine.dialect.name != "postgresql"
    ):
        return counted(visibility_condition(user, model))
    region = model.visibility == Visibility.REGION
    others = beyond_region_condition(user, model)
    return select(counted(region).scalar_subquery() + counted(others).scalar_subquery())


def _filter_key(filters: CatalogFilters) -> tuple:
    return tuple(sorted((k, v) for k, v in vars(filters).items() if v is not None and k != "sort"))


def list_editable(
    user: User | None,
    model: ContentModel,
    page: int = 1,
    per_page: int = 20,
    state: str | None = None,
) -> Page:
    """The working row of each content ``user`` may edit (her own; her district's if admin)."""
    user = require_user(user)
    if state is not None and state not in {s.value for s in State}:
        raise Invalid("Unknown state.", fields={"state": ["Not a valid state."]})
    owned = [model.author_id == user.id]
    if user.admin_district_ids():
        owned.append(model.district_id.in_(user.admin_district_ids()))
    newest = (
        select(model.content_id, func.max(model.version).label("version"))
        .where(or_(*owned))
        .group_by(model.content_id)
        .subquery()
    )
    statement = select(model).join(
        newest, and_(model.content_id == newest.c.content_id, model.version == newest.c.version)
    )
    if state:
        statement = statement.where(model.state == state)
    statement = statement.order_by(model.updated_at.desc(), model.id.desc()).options(
        *_list_options(model)
    )
    return paginate(statement, page, per_page)


def list_review_queue(user: User | None, page: int = 1, per_page: int = 50) -> dict[str, Page]:
    """Content waiting for review in the districts ``user`` administers (all for a
    platform admin), oldest first."""
    user = require_user(user)
    districts = user.admin_district_ids()
    if not districts and not user.is_platform_admin:
        raise Forbidden("Only district admins review content.")
    result = {}
    for name, model in (("courses", Course), ("resources", Resource)):
        statement = select(model).where(model.state == State.IN_REVIEW)
        if not user.is_platform_admin:
            statement = statement.where(model.district_id.in_(districts))
        statement = statement.order_by(model.updated_at, model.id).options(*_list_options(model))
        result[name] = paginate(statement, page, per_page)
    return result


def resolve_resources(
    user: User | None, content_ids: list[str], drafts: bool = False
) -> dict[str, Resource]:
    """Published resources by content id, only those ``user`` may see.  With ``drafts``
    (an author previewing her course), resources she edits that are not published yet
    come as their working version, so her preview lists them rather than "not available"."""
    if not content_ids:
        return {}
    rows = db.session.execute(
        select(Resource).where(
            Resource.content_id.in_(set(content_ids)),
            Resource.state == State.PUBLISHED,
            visibility_condition(user, Resource),
        )
    ).scalars()
    found = {row.content_id: row for row in rows}
    if drafts and user is not None:
        for content_id in set(content_ids) - set(found):
            versions = content_rows(Resource, content_id)
            if versions and can_edit(user, versions[-1]):
                found[content_id] = working_row(versions)
    return found


def count_published(model: ContentModel) -> int:
    return db.session.execute(
        select(func.count(model.id)).where(model.state == State.PUBLISHED)
    ).scalar_one()


def facet_counts(
    user: User | None, model: ContentModel, filters: CatalogFilters, field: str
) -> dict[str, int]:
    """How many published rows ``user`` may see per value of ``field`` (e.g. category),
    under every other active filter; for the catalog's filter counts.  (Pages helper.)"""
    from dataclasses import replace

    column = getattr(model, field)
    condition = and_(model.state == State.PUBLISHED, visibility_condition(user, model))
    others = replace(filters, **{field: None}) if hasattr(filters, field) else filters
    statement = _apply_filters(
        select(column, func.count()).select_from(model).where(condition), model, others
    )

    def count() -> dict[str, int]:
        rows = db.session.execute(statement.group_by(column)).all()
        return {value: number for value, number in rows if value}

    # A GROUP BY over every visible row, the same for each page of one filter: cached
    # like the list counts, until the catalog changes.
    parts = ("facets", model.__tablename__, field, visibility_key(user), _filter_key(others))
    return cache.remember(CACHE_SCOPE, parts, count)


def get_working(user: User | None, model: ContentModel, content_id: str):
    """The version an editor works on (open draft or review copy, else the newest):
    404 for content ``user`` cannot read, 403 when she may read but not edit it."""
    versions = list_versions(user, model, content_id)
    if not can_edit(user, versions[-1]):
        raise Forbidden("Only the owner or her district admin can edit this.")
    return working_row(versions)


def resource_choices(user: User | None, q: str | None = None, limit: int = 20) -> list[tuple]:
    """Resources an author may put in a course section, for the editor's search picker:
    her own (any state, newest version) first, then published ones she may read, both
    matching ``q`` in the title or summary.  ``[(resource, own)]``, at most ``limit``."""
    user = require_user(user)
    limit = max(1, min(int(limit), 50))
    needle = (q or "").strip().lower()[:_MAX_FILTER_TEXT] or None
    own = [
        row
        for row in list_editable(user, Resource, 1, 100).items
        if needle is None
        or needle in (row.title or "").lower()
        or needle in (row.summary or "").lower()
    ]
    public = list_published(user, Resource, CatalogFilters(sort="title", q=needle), 1, limit).items
    seen = {row.content_id for row in own}
    chosen = [(row, True) for row in own[:limit]]
    chosen += [(row, False) for row in public if row.content_id not in seen]
    return chosen[:limit]
