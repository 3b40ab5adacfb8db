"""Production password hashing.  The suite hashes at a cheap cost (``tests/conftest.py``,
``_cheap_password_hashes``); this file checks, with that patch undone, that what Shuyuan
stores in production is a scrypt hash at werkzeug's strength and that an unknown email
is checked against a dummy hash of the same cost."""

from __future__ import annotations

from werkzeug.security import check_password_hash

from app.accounts import services
from tests.conftest import PRODUCTION_DUMMY_HASH, PRODUCTION_PASSWORD_HASH, TEST_PASSWORD_METHOD


def _method(stored: str) -> str:
    return stored.split("$", 1)[0]


def test_the_suite_hashes_cheaply_but_checks_the_normal_way(make_user):
    user = make_user("teacher")
    assert _method(user.password_hash) == TEST_PASSWORD_METHOD
    assert check_password_hash(user.password_hash, "password123")
    assert not check_password_hash(user.password_hash, "password124")
    assert _method(services._DUMMY_HASH) == TEST_PASSWORD_METHOD


def test_production_stores_scrypt_at_full_strength(ctx, orgs, monkeypatch):
    monkeypatch.setattr(services, "generate_password_hash", PRODUCTION_PASSWORD_HASH)
    monkeypatch.setattr(services, "_DUMMY_HASH", PRODUCTION_DUMMY_HASH)
    user = services.create_user("real@example.test", "Real", "password123", school=orgs.school)
    assert _method(user.password_hash) == "scrypt:32768:8:1"
    assert services.authenticate("real@example.test", "password123").id == user.id
    # The timing equaliser costs what a real check costs.
    assert _method(PRODUCTION_DUMMY_HASH) == _method(user.password_hash)
