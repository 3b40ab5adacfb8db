"""A command that loads many rows ends with ANALYZE of the tables it filled, on
PostgreSQL: until autovacuum's first round a new table has no statistics, and the xAPI id
look-up before each insert then scanned every statement of the district
(app/common/statistics.py, docs/operations.md)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, text

from app.accounts.models import Region
from app.common import statistics
from app.extensions import db
from tests.conftest import create_postgres_database, make_app

# The commands that load many rows (app/*/cli.py); a new one belongs here.
BULK_COMMANDS = [
    ("content", "load"),
    ("curriculum", "import"),
    ("sharing", "import"),
    ("sharing", "sync"),
    ("sharing", "mirror"),
    ("portraits", "rebuild"),
    ("portraits", "ingest"),
    ("portraits", "simulate"),
    ("search", "reindex"),
    ("search", "check"),
    ("lti", "sync-roster"),
]


def _analyzed_tables(connection) -> set[str]:
    return set(
        connection.execute(
            text("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")
        ).scalars()
    )


@pytest.mark.parametrize(("group", "name"), BULK_COMMANDS)
def test_bulk_commands_analyze_what_they_filled(app, group, name):
    command = app.cli.get_command(None, group).get_command(None, name)
    assert getattr(command.callback, "analyzes_after", False), f"flask {group} {name}"


def test_inserts_and_copies_are_counted_and_only_big_ones_analyzed(app, ctx, backend):
    with statistics.analyzed() as counted:
        db.session.execute(
            insert(Region), [{"code": f"r{i}", "name": f"区域 {i}"} for i in range(120)]
        )
        db.session.add(Region(code="one", name="一个"))
        db.session.flush()
        statistics.written("xapi_statements", 3)  # a COPY reports itself
        with statistics.analyzed() as inner:  # a nested block counts into the outer one
            statistics.written("xapi_statements", 1)
        assert inner is counted
        db.session.commit()
    assert counted["regions"] == 121
    assert counted["xapi_statements"] == 4
    # Outside a block nothing is counted.
    statistics.written("xapi_statements", 1000)
    assert counted["xapi_statements"] == 4
    if backend == "sqlite":
        assert statistics.analyze(counted) == []
    else:
        # 4 rows in a never-analyzed table are below autovacuum's threshold (50).
        assert statistics.analyze(counted) == ["regions"]


def test_content_load_analyzes_the_tables_it_filled_on_postgresql(backend, tmp_path):
    """On a fresh database (no ANALYZE has run, as on a new server): after the load the
    tables it filled by INSERT (resources, the portraits) and by COPY (the simulated
    term's xAPI statements and their relations) have planner statistics."""
    if backend != "postgresql":
        pytest.skip("ANALYZE is PostgreSQL's; SQLite has nothing to run")
    url, drop = create_postgres_database()
    try:
        application = make_app(url, str(tmp_path))
        with application.app_context():
            db.create_all()
            with db.engine.connect() as connection:
                assert _analyzed_tables(connection) == set()
        result = application.test_cli_runner().invoke(args=["content", "load"])
        assert result.exit_code == 0, result.output
        with application.app_context(), db.engine.connect() as connection:
            analyzed = _analyzed_tables(connection)
            assert {
                "xapi_statements",
                "xapi_statement_relations",
                "resources",
                "portraits_observations",
            } <= analyzed, analyzed
            tuples = dict(
                connection.execute(
                    text(
                        "SELECT relname, reltuples FROM pg_class"
                        " WHERE relname IN ('xapi_statements', 'districts')"
                    )
                ).all()
            )
            assert tuples["xapi_statements"] > 0
            assert "districts" not in analyzed  # a handful of rows: not sampled for them
            db.session.remove()
            db.engine.dispose()
    finally:
        drop()
