"""sharing: usage reported by federated subscribers; subscription request delivery time

Revision ID: sharing0002
Revises: search0001
Create Date: 2026-11-30 09:45:00

"""

import sqlalchemy as sa
from alembic import op

revision = "sharing0002"
down_revision = "search0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sharing_remote_usage",
        sa.Column("remote_subscriber_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("content_id", sa.String(length=36), nullable=False),
        sa.Column("launches", sa.Integer(), nullable=False),
        sa.Column("completions", sa.Integer(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.Column("score_count", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["remote_subscriber_id"],
            ["sharing_remote_subscribers.id"],
            name=op.f("fk_sharing_remote_usage_remote_subscriber_id_sharing_remote_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "remote_subscriber_id", "day", "content_id", name=op.f("pk_sharing_remote_usage")
        ),
    )
    with op.batch_alter_table("sharing_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remote_requested_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("sharing_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("remote_requested_at")
    op.drop_table("sharing_remote_usage")
