from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.catalog.helpers import Api


@pytest.fixture
def api(client, token_for):
    return Api(client, token_for)


@pytest.fixture
def people(orgs, make_user):
    """One user per role and scope the authorisation rules distinguish.

    The content under test is authored by ``owner``, a teacher of ``orgs.school``
    (district ``orgs.district``)."""
    return SimpleNamespace(
        anon=None,
        student_same=make_user("student", school=orgs.school, password=None),
        student_other_school=make_user("student", school=orgs.other_school, password=None),
        student_other_district=make_user("student", school=orgs.review_school, password=None),
        owner=make_user("teacher", school=orgs.school, password=None),
        teacher_same_school=make_user("teacher", school=orgs.school, password=None),
        teacher_other_district=make_user("teacher", school=orgs.review_school, password=None),
        dadmin_own=make_user("district_admin", district=orgs.district, password=None),
        dadmin_other=make_user("district_admin", district=orgs.review_district, password=None),
        padmin=make_user("platform_admin", password=None),
    )
