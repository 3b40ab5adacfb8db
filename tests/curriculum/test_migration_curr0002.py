"""curr0002 resolves the duplicate class calendars a database may already hold before it
adds the unique constraint (keep the newest, re-point copies, drop the rest)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from flask_migrate import upgrade
from sqlalchemy import column, insert, select
from sqlalchemy import table as sa_table

from app.accounts.models import District, Region, School
from app.config import PROJECT_ROOT
from app.curriculum.models import (
    CalendarVersion,
    CalendarWeek,
    Framework,
    Node,
    SchoolClass,
    TeachingCalendar,
)
from app.extensions import db
from tests.conftest import create_postgres_database, make_app

MIGRATIONS = str(PROJECT_ROOT / "migrations")


def _calendar(class_id, term, updated_at, **extra) -> dict:
    return {
        "title": f"{term} {updated_at:%d}",
        "district_id": 1,
        "school_id": 1,
        "class_id": class_id,
        "term": term,
        "subject": "math",
        "edition": "pep",
        "volume_id": 1,
        "term_start": date(2026, 9, 1),
        "term_end": date(2027, 1, 22),
        "lessons_per_week": 5,
        "holidays": [],
        "current_version": 1,
        "created_at": updated_at,
        "updated_at": updated_at,
        "based_on_id": None,  # every row names the same columns (one executemany)
        **extra,
    }


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_duplicates_are_resolved_before_the_constraint(backend_name, tmp_path):
    if backend_name == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'migrated.db'}", (lambda: None)
    else:
        url, drop = create_postgres_database()
    application = make_app(url, str(tmp_path))
    try:
        with application.app_context():
            upgrade(directory=MIGRATIONS, revision="lti0001")
            now = datetime(2026, 11, 1)
            rows = [
                (
                    Region,
                    {"id": 1, "code": "r", "name": "市", "created_at": now, "updated_at": now},
                ),
                (
                    District,
                    {
                        "id": 1,
                        "region_id": 1,
                        "code": "d",
                        "name": "区",
                        "created_at": now,
                        "updated_at": now,
                        "requires_review": False,
                    },
                ),
                (
                    School,
                    {
                        "id": 1,
                        "district_id": 1,
                        "code": "s",
                        "name": "校",
                        "created_at": now,
                        "updated_at": now,
                    },
                ),
                (
                    SchoolClass,
                    {"id": 1, "school_id": 1, "name": "一班", "created_at": now, "updated_at": now},
                ),
                (
                    Framework,
                    {
                        "id": 1,
                        "identifier": "f",
                        "title": "数学",
                        "creator": "",
                        "raw": {},
                        "extras": {},
                        "created_at": now,
                        "updated_at": now,
                    },
                ),
                (
                    Node,
                    {
                        "id": 1,
                        "framework_id": 1,
                        "identifier": "v",
                        "seq": 0,
                        "level": "volume",
                        "title": "上册",
                        "position": 0,
                        "depth": 0,
                        "raw": {},
                    },
                ),
            ]
            for model, values in rows:
                db.session.execute(insert(model.__table__).values(values))
            table = TeachingCalendar.__table__
            db.session.execute(
                insert(table),
                [
                    _calendar(None, "T1", datetime(2026, 9, 1), id=1),  # the district's
                    _calendar(1, "T1", datetime(2026, 9, 2), id=2, based_on_id=1),
                    _calendar(1, "T1", datetime(2026, 9, 9), id=3),  # newest: kept
                    _calendar(1, "T1", datetime(2026, 9, 5), id=4),
                    _calendar(1, "T2", datetime(2026, 9, 3), id=5),  # another term: kept
                    _calendar(None, "T1", datetime(2026, 9, 4), id=6, based_on_id=4),
                ],
            )
            # The weeks table as it was at that revision (later ones add columns).
            weeks_then = sa_table(
                "teaching_calendar_weeks",
                column("calendar_id"),
                column("week"),
                column("starts_on"),
                column("ends_on"),
            )
            db.session.execute(
                insert(weeks_then),
                [
                    {
                        "calendar_id": i,
                        "week": 1,
                        "starts_on": date(2026, 9, 1),
                        "ends_on": date(2026, 9, 6),
                    }
                    for i in (2, 3, 4)
                ],
            )
            db.session.execute(
                insert(CalendarVersion.__table__),
                [{"calendar_id": i, "version": 1, "data": {}, "created_at": now} for i in (2, 3)],
            )
            db.session.commit()

            upgrade(directory=MIGRATIONS)

            kept = db.session.execute(
                select(table.c.id, table.c.based_on_id).order_by(table.c.id)
            ).all()
            assert [tuple(r) for r in kept] == [(1, None), (3, None), (5, None), (6, 3)]
            weeks = db.session.execute(select(CalendarWeek.__table__.c.calendar_id)).scalars()
            assert sorted(weeks) == [3]
            versions = db.session.execute(select(CalendarVersion.__table__.c.calendar_id))
            assert sorted(versions.scalars()) == [3]
            db.session.remove()
            db.engine.dispose()
    finally:
        drop()
