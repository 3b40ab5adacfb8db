"""Helpers for the LTI tests."""

from __future__ import annotations

from app.catalog.models import Resource
from tests.catalog.helpers import make_content


def published_resource(author, **extra) -> str:
    data = {"title": "分数练习", "kind": "exercise", "visibility": "region"}
    data.update(extra)
    return make_content(author, Resource, **data)


def refused(response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:600])
    assert f'data-error-code="{code}"' in response.text, response.text[:1500]
