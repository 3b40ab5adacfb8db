"""Plain helpers of the search tests."""

from __future__ import annotations

from app.accounts.models import User
from app.catalog import services as catalog
from app.catalog.models import Course, Resource, State
from app.common.events import commit
from app.extensions import db


def publish(author: User, model=Resource, **data) -> str:
    """Create and publish content through the catalog services (signals included);
    returns its content id."""
    author = db.session.get(User, author.id)
    if model is Course:
        data.setdefault("kind", "extended")
        if data["kind"] == "extended":
            data.setdefault("category", "other")
    else:
        data.setdefault("kind", "document")
        if data["kind"] == "link":
            data.setdefault("url", "https://example.org/")
    data.setdefault("visibility", "region")
    obj = catalog.create_content(author, model, data)
    content_id = obj.content_id
    row = catalog.submit_content(author, model, content_id)
    assert row.state == State.PUBLISHED, row.state
    commit()
    return content_id
