"""one class calendar per subject and term

Revision ID: curr0002
Revises: lti0001
Create Date: 2026-11-30 06:40:00

A class could end up with two calendars for the same subject and term (a teacher's own
class calendar, then an override of the district's), and the override look-up failed on
the second one.  Duplicates are resolved first: the newest calendar of each group stays
(latest update, then highest id), calendars copied from a removed one now point at the
one kept, and the others go with their weeks, entries and versions.
"""

import sqlalchemy as sa
from alembic import op

revision = "curr0002"
down_revision = "sharing0001"
branch_labels = None
depends_on = None

calendars = sa.table(
    "teaching_calendars",
    sa.column("id", sa.Integer),
    sa.column("class_id", sa.Integer),
    sa.column("subject", sa.String),
    sa.column("term", sa.String),
    sa.column("updated_at", sa.DateTime),
    sa.column("based_on_id", sa.Integer),
)
CHILD_TABLES = (
    "teaching_calendar_entries",
    "teaching_calendar_weeks",
    "teaching_calendar_versions",
)


def _duplicates(connection) -> dict[int, list[int]]:
    """Kept calendar id -> the ids of its duplicates that go."""
    rows = connection.execute(
        sa.select(calendars.c.id, calendars.c.class_id, calendars.c.subject, calendars.c.term)
        .where(calendars.c.class_id.is_not(None))
        .order_by(
            calendars.c.class_id,
            calendars.c.subject,
            calendars.c.term,
            calendars.c.updated_at.desc(),
            calendars.c.id.desc(),
        )
    ).all()
    groups: dict[tuple, list[int]] = {}
    for calendar_id, class_id, subject, term in rows:
        groups.setdefault((class_id, subject, term), []).append(calendar_id)
    return {ids[0]: ids[1:] for ids in groups.values() if len(ids) > 1}


def upgrade():
    connection = op.get_bind()
    for kept, gone in _duplicates(connection).items():
        connection.execute(
            calendars.update().where(calendars.c.based_on_id.in_(gone)).values(based_on_id=kept)
        )
        # Children are deleted explicitly: SQLite enforces ON DELETE CASCADE only when the
        # connection turned foreign keys on, which a migration cannot count on.
        for child in CHILD_TABLES:
            table = sa.table(child, sa.column("calendar_id", sa.Integer))
            connection.execute(table.delete().where(table.c.calendar_id.in_(gone)))
        connection.execute(calendars.delete().where(calendars.c.id.in_(gone)))
    # An index rather than a table constraint: SQLite would rebuild the table for a
    # constraint, and dropping the old copy with foreign keys on would fire the ON DELETE
    # actions of every calendar's weeks, entries, versions and copies.
    op.create_index(
        "uq_teaching_calendars_class_id_subject_term",
        "teaching_calendars",
        ["class_id", "subject", "term"],
        unique=True,
    )


def downgrade():
    op.drop_index("uq_teaching_calendars_class_id_subject_term", table_name="teaching_calendars")
