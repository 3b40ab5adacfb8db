"""Migrations: one head, and upgrading an empty database gives exactly the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade

from app.config import PROJECT_ROOT
from app.extensions import db
from tests.conftest import create_postgres_database, make_app


def test_single_head():
    script = ScriptDirectory(str(PROJECT_ROOT / "migrations"))
    assert len(script.get_heads()) == 1, script.get_heads()


def test_every_revision_is_named():
    script = ScriptDirectory(str(PROJECT_ROOT / "migrations"))
    for revision in script.walk_revisions():
        assert (revision.doc or "").strip(), f"revision {revision.revision} has no message"


def _diff_after_upgrade(url: str, instance: str) -> list:
    application = make_app(url, instance)
    with application.app_context():
        upgrade(directory=str(PROJECT_ROOT / "migrations"))
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        db.engine.dispose()
    return diff


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_upgrade_from_empty_matches_models(backend_name, tmp_path):
    if backend_name == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'migrated.db'}", (lambda: None)
    else:
        url, drop = create_postgres_database()
    try:
        diff = _diff_after_upgrade(url, str(tmp_path))
    finally:
        drop()
    assert diff == [], diff
