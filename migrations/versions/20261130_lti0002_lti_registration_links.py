"""lti one-time dynamic registration links

Revision ID: lti0002
Revises: lti0001
Create Date: 2026-11-30 07:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "lti0002"
down_revision = "lti0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "lti_registration_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("deployment_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_lti_registration_links_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["lti_deployments.id"],
            name=op.f("fk_lti_registration_links_deployment_id_lti_deployments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["district_id"],
            ["districts.id"],
            name=op.f("fk_lti_registration_links_district_id_districts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["schools.id"],
            name=op.f("fk_lti_registration_links_school_id_schools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_registration_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_lti_registration_links_token_hash")),
    )
    with op.batch_alter_table("lti_registration_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lti_registration_links_deployment_id"), ["deployment_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_lti_registration_links_district_id"), ["district_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("lti_registration_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lti_registration_links_district_id"))
        batch_op.drop_index(batch_op.f("ix_lti_registration_links_deployment_id"))
    op.drop_table("lti_registration_links")
