"""The catalog's list indexes cover what its list statements read, and the lists they
serve stay exact: same rows, order and totals for each kind of reader and filter."""

from __future__ import annotations

from sqlalchemy import Column, select
from sqlalchemy.sql import visitors

from app.catalog import services
from app.catalog.models import Course, Resource
from app.catalog.services.permissions import can_view
from app.catalog.services.queries import _published_statements
from app.extensions import db
from tests.catalog.helpers import fresh, make_content

_FACETS = {Course: ("kind", "category", "subject"), Resource: ("kind", "subject")}


def _columns(statement, table) -> set[str]:
    """The columns of ``table`` that ``statement`` reads (its subqueries included)."""
    return {
        element.name
        for element in visitors.iterate(statement)
        if isinstance(element, Column) and element.table is table
    }


def _index(model, name: str) -> list[str]:
    index = next(i for i in model.__table__.indexes if i.name == name)
    return [column.name for column in index.columns]


def test_list_indexes_cover_every_column_the_list_statements_read(app, orgs, make_user):
    """Every column the visibility condition, the filters and the order read is in both
    list indexes, so PostgreSQL can answer the page query and the COUNT with index-only
    scans (docs/catalog.md, "100k resources").  A new filter column must be added there
    (and to a migration), or its lists visit the table's rows again."""
    teacher = make_user("teacher", school=orgs.school, password=None)
    filters = services.CatalogFilters(
        kind="video",
        subject="math",
        grade="g7",
        district=orgs.district.id,
        school=orgs.school.id,
        language="en",
        licence="CC0-1.0",
        tag="微课",
    )
    with app.test_request_context():
        reader = fresh(teacher)
        for model in (Course, Resource):
            table = model.__table__.name
            page_index = _index(model, f"ix_{table}_published_page")
            visible_index = _index(model, f"ix_{table}_visible")
            assert page_index[:3] == ["state", "published_at", "id"]
            assert visible_index[:2] == ["state", "visibility"]
            for user in (None, reader):
                page, count, _counter = _published_statements(
                    user, model, filters, select(model.id)
                )
                read = _columns(page, model.__table__) | _columns(count, model.__table__)
                read |= set(_FACETS[model])
                assert "content_id" in read or user is None
                assert read <= set(page_index), sorted(read - set(page_index))
                assert read - {"published_at", "id"} <= set(visible_index), sorted(
                    read - set(visible_index)
                )


def test_lists_match_what_each_reader_may_see(app, api, orgs, make_user):
    """Totals, rows and their order, per reader and filter, equal what the visibility
    rules and the filter give row by row (the COUNT is ``count(*)`` and the page query
    walks the covering index: neither may change an answer)."""
    authors = [
        make_user("teacher", school=orgs.school, password=None),
        make_user("teacher", school=orgs.other_school, password=None),
        make_user("teacher", school=orgs.review_school, password=None),
    ]
    shapes = [
        ("region", "zh", "CC-BY-4.0"),
        ("school", "en", "CC0-1.0"),
        ("district", "zh", "CC0-1.0"),
        ("private", "en", "CC-BY-4.0"),
        ("region", "en", "CC0-1.0"),
    ]
    for n in range(10):
        visibility, language, licence = shapes[n % len(shapes)]
        for model in (Course, Resource):
            make_content(
                authors[n % 3],
                model,
                "published",
                title=f"第{n}",
                visibility=visibility,
                language=language,
                licence=licence,
                tags=["共同"] if n % 2 else [],
            )
    make_content(authors[0], Course, "draft", title="草稿")
    readers = [
        None,
        make_user("student", school=orgs.school, password=None),
        make_user("student", school=orgs.review_school, password=None),
        authors[0],
        make_user("district_admin", district=orgs.district, password=None),
    ]
    filters = [{}, {"language": "en"}, {"licence": "CC0-1.0"}, {"tag": "共同"}]
    for model, path in ((Course, "courses"), (Resource, "resources")):
        for reader in readers:
            with app.app_context():
                user = fresh(reader) if reader is not None else None
                rows = db.session.execute(
                    select(model)
                    .where(model.state == "published")
                    .order_by(model.published_at.desc(), model.id.desc())
                ).scalars()
                visible = [
                    (row.content_id, row.language, row.licence, {t.name for t in row.tags})
                    for row in rows
                    if can_view(user, row)
                ]
            for wanted in filters:
                expected = [
                    content_id
                    for content_id, language, licence, tags in visible
                    if wanted.get("language", language) == language
                    and wanted.get("licence", licence) == licence
                    and ("tag" not in wanted or wanted["tag"] in tags)
                ]
                query = "&".join(f"{k}={v}" for k, v in wanted.items())
                listed, total = [], None
                for page in (1, 2, 3):
                    body = api.get(f"/api/v1/{path}?per_page=3&page={page}&{query}", reader).json
                    total = body["total"]
                    listed += [item["id"] for item in body["items"]]
                assert total == len(expected), (path, wanted, reader)
                assert listed == expected[:9], (path, wanted, reader)
