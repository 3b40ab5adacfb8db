"""postgresql search backend: search_documents and search_terms (pg_trgm)

Revision ID: search0001
Revises: lti0001
Create Date: 2026-11-30 07:45:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "search0001"
down_revision = "portraits0001"
branch_labels = None
depends_on = None

TEXT_FIELDS = ("title_zh", "body_zh", "title_en", "body_en", "py", "pyi", "words_en")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
_VECTOR = sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql")
_GRADES = sa.JSON().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "search_documents",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("grade", _GRADES, nullable=False),
        sa.Column("edition", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("language", sa.String(length=20), nullable=False),
        sa.Column("licence", sa.String(length=40), nullable=False),
        sa.Column("district", sa.String(length=20), nullable=False),
        sa.Column("school", sa.String(length=20), nullable=False),
        sa.Column("visibility", sa.String(length=20), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("published", sa.BigInteger(), nullable=False),
        sa.Column("usage", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("fields", _JSON, nullable=False),
        sa.Column("tf", _JSON, nullable=False),
        sa.Column("lengths", _JSON, nullable=False),
        *(sa.Column(name, _VECTOR, nullable=True) for name in TEXT_FIELDS),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        for name in TEXT_FIELDS:
            batch_op.create_index(
                f"ix_search_documents_{name}", [name], unique=False, postgresql_using="gin"
            )
        batch_op.create_index("ix_search_documents_published", ["published"], unique=False)
    op.create_table(
        "search_terms",
        sa.Column("field", sa.String(length=20), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("df", sa.Integer(), nullable=False),
        sa.Column("freq", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("field", "term"),
    )


def downgrade():
    op.drop_table("search_terms")
    op.drop_table("search_documents")
