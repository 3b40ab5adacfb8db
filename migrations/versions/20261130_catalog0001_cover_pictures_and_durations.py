"""catalog cover pictures and media durations

Revision ID: catalog0001
Revises: sharing0002
Create Date: 2026-11-30 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "catalog0001"
down_revision = "sharing0002"
branch_labels = None
depends_on = None


def upgrade():
    for table in ("courses", "resources"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("cover_id", sa.String(length=36), nullable=True))
            batch.add_column(sa.Column("cover_source", sa.String(length=10), nullable=True))
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("duration_seconds", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("duration_seconds")
    for table in ("resources", "courses"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("cover_source")
            batch.drop_column("cover_id")
