"""Tables of the PostgreSQL search backend (:mod:`app.search.pg_backend`).

``search_documents`` holds one row per indexed course or resource: the facet columns
(visibility and filters run in SQL), the stored fields the results show, and one
``tsvector`` per analysed field built from the exact token list of our analysers
(:func:`app.search.pg_rows.field_tokens`), so a lexeme is always one token of the
Whoosh field of the same name.  ``tf`` and ``lengths`` keep per-document term weights
and field lengths for the BM25F ranking.  ``search_terms`` is the vocabulary: document
and collection frequency of every (field, term), plus per-field totals (field
``#length``) — idf, average field lengths, did-you-mean (``pg_trgm`` similarity) and
the pinyin vocabulary come from it.

The tables exist on SQLite too (the models are the same on both databases), but only the
PostgreSQL backend uses them: there the text columns are ``TSVECTOR`` and the JSON
columns ``JSONB``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.extensions import db

TEXT_FIELDS = ("title_zh", "body_zh", "title_en", "body_en", "py", "pyi", "words_en")

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_VECTOR = sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql")
_GRADES = sa.JSON().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")


class SearchDocument(db.Model):
    __tablename__ = "search_documents"

    id = db.Column(db.String(200), primary_key=True)
    # insertion order (ties in ranking keep it, as Whoosh keeps document numbers)
    seq = db.Column(db.BigInteger, nullable=False)
    type = db.Column(db.String(20), nullable=False)
    kind = db.Column(db.String(40), nullable=False)
    subject = db.Column(db.String(40), nullable=False)
    grade = db.Column(_GRADES, nullable=False)
    edition = db.Column(db.String(40), nullable=False)
    category = db.Column(db.String(40), nullable=False)
    language = db.Column(db.String(20), nullable=False)
    licence = db.Column(db.String(40), nullable=False)
    district = db.Column(db.String(20), nullable=False)
    school = db.Column(db.String(20), nullable=False)
    visibility = db.Column(db.String(20), nullable=False)
    author = db.Column(db.String(64), nullable=False)
    published = db.Column(db.BigInteger, nullable=False)
    usage = db.Column(db.BigInteger, nullable=False)
    fingerprint = db.Column(db.String(64), nullable=False)
    fields = db.Column(_JSON, nullable=False)
    tf = db.Column(_JSON, nullable=False)
    lengths = db.Column(_JSON, nullable=False)
    title_zh = db.Column(_VECTOR)
    body_zh = db.Column(_VECTOR)
    title_en = db.Column(_VECTOR)
    body_en = db.Column(_VECTOR)
    py = db.Column(_VECTOR)
    pyi = db.Column(_VECTOR)
    words_en = db.Column(_VECTOR)
    # Every matchable field's tokens behind a field prefix ("a:七年级"), the one column
    # queries match (one GIN index, one ``@@`` per search; see pg_rows.FIELD_CODES).
    # The per-field columns above keep each field's lexemes for inspection and checks.
    lexemes = db.Column(_VECTOR)

    __table_args__ = (
        db.Index("ix_search_documents_lexemes", "lexemes", postgresql_using="gin"),
        db.Index("ix_search_documents_published", "published"),
        # Filter-only searches ("四年级 数学 视频": every word is a facet word, so no
        # tsquery) are answered by a BitmapAnd of these instead of a sequential scan of
        # the whole table (186 MB at 100k documents, larger than shared_buffers):
        # 258 ms -> 42 ms (issue 14, docs/search.md).
        db.Index("ix_search_documents_grade", "grade", postgresql_using="gin"),
        db.Index("ix_search_documents_kind", "kind"),
        db.Index("ix_search_documents_subject", "subject"),
        db.Index("ix_search_documents_edition", "edition"),
    )


class SearchTerm(db.Model):
    __tablename__ = "search_terms"

    field = db.Column(db.String(20), primary_key=True)
    term = db.Column(db.Text, primary_key=True)
    df = db.Column(db.Integer, nullable=False)
    freq = db.Column(db.Float, nullable=False)
    # No trigram index: did-you-mean ranks by pg_trgm ``similarity`` within a primary-key
    # range (same first letter), and a GIN trigram index on ``term`` lured the planner
    # away from the primary key for the exact look-ups every query makes (3 ms each).


# Did-you-mean needs pg_trgm (the migration creates it too).
sa.event.listen(
    SearchTerm.__table__,
    "before_create",
    sa.DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)
