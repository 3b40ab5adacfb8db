"""Plain helpers shared by the catalog, accounts and plugin tests (not fixtures)."""

from __future__ import annotations

from sqlalchemy import select

from app.accounts.models import User
from app.catalog import services
from app.catalog.models import Course, Resource, State
from app.common.events import commit
from app.extensions import db

MODELS = {"courses": Course, "resources": Resource}


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is ``status`` with the one JSON error envelope; returns its body."""
    assert response.status_code == status, (
        response.status_code,
        response.get_data(as_text=True)[:800],
    )
    assert response.is_json, response.get_data(as_text=True)[:300]
    error = response.json["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def content_data(model, **extra) -> dict:
    if model is Course:
        data = {
            "title": "京剧入门",
            "kind": "extended",
            "category": "opera",
            "visibility": "region",
            "summary": "唱念做打",
        }
    else:
        data = {
            "title": "茶艺视频",
            "kind": "video",
            "visibility": "region",
            "url": "https://example.org/v",
        }
    data.update(extra)
    return data


def fresh(user: User) -> User:
    """The same user loaded in the current session."""
    return db.session.get(User, user.id)


def make_content(
    author: User, model=Course, state: str = "published", reviewer: User | None = None, **extra
) -> str:
    """Create content through the services, bring it to ``state``, commit; returns its content_id.

    The author's district review policy is switched for the submission as the wanted
    state needs it, unless a ``reviewer`` is given to approve the submission.
    """
    author = fresh(author)
    obj = services.create_content(author, model, content_data(model, **extra))
    content_id = obj.content_id
    if state == "draft":
        commit()
        return content_id
    district = obj.district
    # Submit with the review policy the wanted state needs, then put the policy back.
    policy = district.requires_review
    if state == "in_review":
        district.requires_review = True
    elif reviewer is None:
        district.requires_review = False
    row = services.submit_content(author, model, content_id)
    district.requires_review = policy
    if state == "in_review":
        assert row.state == State.IN_REVIEW
        commit()
        return content_id
    if row.state == State.IN_REVIEW:
        services.approve_content(fresh(reviewer), model, content_id)
    if state == "archived":
        services.archive_content(author, model, content_id)
    commit()
    return content_id


def rows_of(model, content_id: str) -> list:
    db.session.expire_all()
    return list(
        db.session.execute(
            select(model).filter_by(content_id=content_id).order_by(model.version)
        ).scalars()
    )


def snapshot(model, content_id: str) -> list[dict]:
    """Every column of every version, to prove a rejected request changed nothing."""
    return [
        {c.key: getattr(row, c.key) for c in model.__mapper__.column_attrs}
        | {"tags": sorted(t.name for t in row.tags)}
        for row in rows_of(model, content_id)
    ]


class Api:
    """Calls the JSON API as a user (through a bearer token) or anonymously."""

    def __init__(self, client, token_for):
        self.client = client
        self.token_for = token_for
        self.tokens: dict[int, dict] = {}

    def headers(self, user) -> dict:
        if user is None:
            return {}
        if user.id not in self.tokens:
            self.tokens[user.id] = self.token_for(user)
        return dict(self.tokens[user.id])

    def __call__(self, method: str, path: str, user=None, **kwargs):
        headers = self.headers(user)
        headers.update(kwargs.pop("headers", {}))
        # A fresh app context per request, as in production: otherwise the request
        # reuses the test's context, its database session and its ``g`` (where
        # Flask-Login caches the user of the first request).
        with self.client.application.app_context():
            return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path, user=None, **kw):
        return self("GET", path, user, **kw)

    def post(self, path, user=None, **kw):
        return self("POST", path, user, **kw)

    def patch(self, path, user=None, **kw):
        return self("PATCH", path, user, **kw)

    def delete(self, path, user=None, **kw):
        return self("DELETE", path, user, **kw)
