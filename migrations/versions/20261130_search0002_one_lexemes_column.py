"""search: one combined lexemes tsvector under one GIN index

Revision ID: search0002
Revises: xapi0002
Create Date: 2026-11-30 10:00:00

Queries matched seven per-field tsvectors with an OR/AND of seven ``@@``; the planner
estimated one row and scanned the whole table, decompressing every tsvector (issue 14).
``lexemes`` holds every matchable field's tokens behind a one-letter field prefix
(``a:`` title_zh, ``b:`` body_zh, ``c:`` title_en, ``d:`` body_en, ``e:`` pinyin, ``f:``
initials; see app.search.pg_backend.FIELD_CODES), filled here from the per-field
columns; a whole query is one ``@@`` on one GIN index.  The per-field GIN indexes go
(nothing queries them; they tripled the cost of every indexed document).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "search0002"
down_revision = "xapi0002"
branch_labels = None
depends_on = None

TEXT_FIELDS = ("title_zh", "body_zh", "title_en", "body_en", "py", "pyi", "words_en")
FIELD_CODES = {
    "title_zh": "a",
    "body_zh": "b",
    "title_en": "c",
    "body_en": "d",
    "py": "e",
    "pyi": "f",
}
_VECTOR = sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql")


def upgrade():
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lexemes", _VECTOR, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        parts = " || ".join(
            f"ARRAY(SELECT '{code}:' || x FROM unnest(tsvector_to_array("
            f"coalesce({name}, ''::tsvector))) x)"
            for name, code in FIELD_CODES.items()
        )
        op.execute(f"UPDATE search_documents SET lexemes = array_to_tsvector({parts})")
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        for name in TEXT_FIELDS:
            batch_op.drop_index(f"ix_search_documents_{name}")
        batch_op.create_index(
            "ix_search_documents_lexemes", ["lexemes"], unique=False, postgresql_using="gin"
        )


def downgrade():
    with op.batch_alter_table("search_documents", schema=None) as batch_op:
        batch_op.drop_index("ix_search_documents_lexemes")
        for name in TEXT_FIELDS:
            batch_op.create_index(
                f"ix_search_documents_{name}", [name], unique=False, postgresql_using="gin"
            )
        batch_op.drop_column("lexemes")
