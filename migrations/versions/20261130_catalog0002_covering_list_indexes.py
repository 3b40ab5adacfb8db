"""catalog: covering list indexes (visibility, filters) for the 100k catalog

Revision ID: catalog0002
Revises: curr0003
Create Date: 2026-11-30 23:30:00

At 10,000 courses / 100,000 resources the list statements visited the table's rows:
a deep page (OFFSET up to 980) walked ``ix_*_published_order`` and fetched every row
to test its visibility and filters (1,700 buffers for page 50 of the courses, 87 ms for
a licence-filtered page 50 of the resources), and the visibility-filtered COUNT read
the whole table (5,218 buffers, ~160 ms on resources).  Both list indexes now carry the
columns those statements test, so PostgreSQL answers them with index-only scans
(issue 14, docs/catalog.md "100k resources").  Each new index extends the one it
replaces (same leading columns), so nothing that used the old one loses its index.
"""

from alembic import op

revision = "catalog0002"
down_revision = "curr0003"
branch_labels = None
depends_on = None

_LISTED = [
    "visibility",
    "district_id",
    "school_id",
    "author_id",
    "kind",
    "language",
    "licence",
    "subject",
]
_EXTRA = {"courses": ["grade", "category"], "resources": []}


def upgrade():
    for table, extra in _EXTRA.items():
        listed = [*_LISTED, *extra, "content_id"]
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_listing")
            batch_op.drop_index(f"ix_{table}_published_order")
            batch_op.create_index(f"ix_{table}_visible", ["state", *listed], unique=False)
            batch_op.create_index(
                f"ix_{table}_published_page",
                ["state", "published_at", "id", *listed],
                unique=False,
            )


def downgrade():
    for table in _EXTRA:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_published_page")
            batch_op.drop_index(f"ix_{table}_visible")
            batch_op.create_index(
                f"ix_{table}_published_order", ["state", "published_at", "id"], unique=False
            )
            batch_op.create_index(
                f"ix_{table}_listing", ["state", "visibility", "district_id"], unique=False
            )
