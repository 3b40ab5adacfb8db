"""search: indexes for filter-only searches (grade, kind, subject, edition)

Revision ID: search0003
Revises: search0002
Create Date: 2026-11-30 17:00:00

A search whose every word is a facet word ("四年级 数学 视频") has no tsquery: its
filters were answered by a sequential scan of ``search_documents`` (186 MB at 100,000
documents, 258 ms).  A GIN index on ``grade`` and btree indexes on ``kind``,
``subject`` and ``edition`` let PostgreSQL combine them (BitmapAnd): 42 ms (issue 14,
docs/search.md).
"""

from alembic import op

revision = "search0003"
down_revision = "search0002"
branch_labels = None
depends_on = None

_BTREE = ("kind", "subject", "edition")


def upgrade():
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_documents_grade", ["grade"], unique=False, postgresql_using="gin"
        )
        for name in _BTREE:
            batch_op.create_index(f"ix_search_documents_{name}", [name], unique=False)


def downgrade():
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        for name in _BTREE:
            batch_op.drop_index(f"ix_search_documents_{name}")
        batch_op.drop_index("ix_search_documents_grade")
