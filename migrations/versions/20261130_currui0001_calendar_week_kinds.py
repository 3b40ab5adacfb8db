"""curriculum: a kind for each calendar week (teaching, review, exam)

Revision ID: currui0001
Revises: catalog0001
Create Date: 2026-11-30 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "currui0001"
down_revision = "catalog0001"
branch_labels = None
depends_on = None


def upgrade():
    # Existing weeks are teaching weeks (the server default fills them).
    with op.batch_alter_table("teaching_calendar_weeks") as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum(
                    "teaching", "review", "exam", name="weekkind", native_enum=False, length=20
                ),
                nullable=False,
                server_default="teaching",
            )
        )


def downgrade():
    with op.batch_alter_table("teaching_calendar_weeks") as batch_op:
        batch_op.drop_column("kind")
