"""List endpoints run a fixed number of SQL statements, whatever the page size (no N+1)."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from app.catalog.models import Course, Resource
from app.extensions import db
from tests.catalog.helpers import make_content


@contextmanager
def count_statements(app):
    with app.app_context():
        engine = db.engine
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_list_queries_do_not_grow_with_the_page(app, api, orgs, make_user):
    schools = [orgs.school, orgs.other_school, orgs.review_school]
    authors = [make_user("teacher", school=schools[i % 3], password=None) for i in range(3)]
    reader = make_user("student", school=orgs.school, password=None)
    api.get("/api/v1/me", reader)  # the token's first use is recorded: keep it out of the count

    statements_log = []

    def statements_for(path):
        with count_statements(app) as statements:
            response = api.get(path, reader)
        assert response.status_code == 200
        statements_log[:] = statements
        return len(statements), len(response.json["items"])

    for i in range(2):
        make_content(authors[i], Course, "published", title=f"课程 {i}", tags=[f"t{i}", "共同"])
        make_content(
            authors[i], Resource, "published", title=f"资源 {i}", tags=[f"t{i}"], grades=["g7"]
        )
    small = {
        path: statements_for(f"/api/v1/{path}?per_page=100") for path in ("courses", "resources")
    }
    for i in range(2, 5):
        author = authors[i % len(authors)]
        make_content(author, Course, "published", title=f"课程 {i}", tags=[f"t{i}", "共同"])
        make_content(
            author, Resource, "published", title=f"资源 {i}", tags=[f"t{i}"], grades=["g7", "g8"]
        )
    for path in ("courses", "resources"):
        count, items = statements_for(f"/api/v1/{path}?per_page=100")
        assert items == 5
        assert count == small[path][0], (path, small[path], count)
        assert count <= 12, "\n".join(s[:150] for s in statements_log)
    # The same holds for an editor's own list.
    api.get("/api/v1/me", authors[0])
    with count_statements(app) as statements:
        assert len(api.get("/api/v1/me/courses?per_page=100", authors[0]).json["items"]) == 2
    assert len(statements) <= 12, statements
