"""xapi: partial index for statements whose object is an agent or group

The ``agent`` filter of a statements query matches the actor, or the object when the
object is an Agent or Group (xAPI 2.0 section 2.1.3).  The second branch probed the general
object index, whose entries are almost all activities; this partial index holds only the
agent objects, so that branch is a scan of a small index (issue 14).

Revision ID: xapi0002
Revises: edge0001
Create Date: 2026-11-30 10:15:00

"""

import sqlalchemy as sa
from alembic import op

revision = "xapi0002"
down_revision = "edge0001"
branch_labels = None
depends_on = None

WHERE = "object_type IN ('Agent', 'Group')"


def upgrade():
    with op.batch_alter_table("xapi_statements", schema=None) as batch_op:
        batch_op.create_index(
            "ix_xapi_statements_agent_object",
            ["district_id", "object_hash", "stored", "id"],
            unique=False,
            postgresql_where=sa.text(WHERE),
            sqlite_where=sa.text(WHERE),
        )


def downgrade():
    with op.batch_alter_table("xapi_statements", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_xapi_statements_agent_object",
            postgresql_where=sa.text(WHERE),
            sqlite_where=sa.text(WHERE),
        )
