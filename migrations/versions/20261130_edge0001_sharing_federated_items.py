"""sharing: federated items materialised as local catalog rows (edge nodes)

Revision ID: edge0001
Revises: currui0001
Create Date: 2026-11-30 10:00:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "edge0001"
down_revision = "currui0001"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade():
    op.create_table(
        "sharing_federated_items",
        sa.Column("content_id", sa.String(length=36), nullable=False),
        sa.Column("item_type", sa.String(length=10), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("publisher", sa.String(length=200), nullable=False),
        sa.Column("catalog_title", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("media", _JSON, nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["sharing_subscriptions.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("content_id"),
    )
    op.create_index(
        "ix_sharing_federated_items_subscription_id",
        "sharing_federated_items",
        ["subscription_id"],
    )


def downgrade():
    op.drop_index(
        "ix_sharing_federated_items_subscription_id", table_name="sharing_federated_items"
    )
    op.drop_table("sharing_federated_items")
