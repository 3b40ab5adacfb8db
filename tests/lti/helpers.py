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


def registration_link(district_id: int, school_id: int | None = None) -> str:
    """A committed one-time registration link; returns its token."""
    from app.common.events import commit
    from app.lti.services import dynamic

    made = dynamic.create_registration_link(
        None, district_id=district_id, school_id=school_id, system=True
    )
    commit()
    return made.token
