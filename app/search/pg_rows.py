"""Rows of the PostgreSQL search backend: what one document becomes in
``search_documents`` (its tokens per field, ``lexemes``, BM25F term weights and
lengths, stored fields) and what it adds to or takes from the vocabulary
``search_terms`` (:class:`_Delta`).  Plain data, so forked analysing processes can make
them (:func:`_prepared`); :mod:`app.search.pg_backend` writes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from sqlalchemy import text
from whoosh.util.numeric import byte_to_length, length_to_byte

from app.search.backend import FACETS
from app.search.models import TEXT_FIELDS
from app.search.whoosh_backend import make_schema, to_whoosh

FIELD_BOOSTS = {"title_zh": 3.0, "title_en": 3.0, "py": 2.0, "pyi": 1.5}
LENGTH = "#length"  # search_terms rows holding per-field totals: df = documents, freq = tokens
MAX_LEXEME_BYTES = 2000  # PostgreSQL's limit is 2047 (the field prefix below included)
# One combined tsvector, ``lexemes``, holds every matchable field's tokens behind a
# fixed-length field prefix ("a:七年级" is title_zh's 七年级), under ONE GIN index: a whole
# query is one ``@@`` of one tsquery ((alternatives | ...) & ...), which the planner
# estimates from the column's statistics and answers from one index.  With one column
# per field the OR/AND of seven ``@@`` looked like one row and ran as a sequential scan
# detoasting every tsvector (issue 14: 90-160 ms at 20k for "how plants grow").
FIELD_CODES = {
    "title_zh": "a",
    "body_zh": "b",
    "title_en": "c",
    "body_en": "d",
    "py": "e",
    "pyi": "f",
}


@lru_cache(maxsize=1)
def _analysers() -> dict:
    schema = make_schema()
    return {name: schema[name].analyzer for name in TEXT_FIELDS}


def field_tokens(doc: dict) -> dict[str, list[str]]:
    """The tokens each Whoosh text field would index for ``doc``, in order."""
    spread = to_whoosh(doc)
    tokens = {}
    for name, analyser in _analysers().items():
        tokens[name] = [
            t.text
            for t in analyser(spread[name], mode="index")
            if t.text and len(t.text.encode("utf-8")) <= MAX_LEXEME_BYTES
        ]
    return tokens


def _quantised(length: int) -> int:
    # Whoosh stores a document's field length in one byte; rank with the same value.
    return byte_to_length(length_to_byte(length))


def _row(doc: dict, seq: int) -> tuple[dict, _Delta]:
    """The table row of ``doc`` and its contribution to the vocabulary."""
    spread = to_whoosh(doc)
    tokens = field_tokens(doc)
    tf, lengths, df, freq = {}, {}, Counter(), {}
    for name, words in tokens.items():
        counts = Counter(words)
        boost = FIELD_BOOSTS.get(name, 1.0)
        tf[name] = {w: n * boost for w, n in counts.items()}
        lengths[name] = _quantised(len(words))
        for w, weight in tf[name].items():
            df[(name, w)] = 1
            freq[(name, w)] = weight
        df[(LENGTH, name)] = 1
        freq[(LENGTH, name)] = len(words)
    fields = dict(doc)
    fields.update(
        district=spread["district"],
        school=spread["school"],
        published=spread["published"],
        usage=spread["usage"],
        grade=list(doc.get("grade") or []),
        tags=list(doc.get("tags") or []),
        terms=list(doc.get("terms") or []),
        title_en=doc.get("title_en", ""),
    )
    row = {
        "id": doc["id"],
        "seq": seq,
        **{f: spread[f] for f in FACETS if f != "grade"},
        "school": spread["school"],
        "visibility": spread["visibility"],
        "author": spread["author"],
        "grade": list(doc.get("grade") or []),
        "published": spread["published"],
        "usage": spread["usage"],
        "fingerprint": doc.get("fingerprint", ""),
        "fields": fields,
        "tf": tf,
        "lengths": lengths,
        **{name: sorted(set(words)) for name, words in tokens.items()},
        "lexemes": sorted(
            {f"{code}:{w}" for name, code in FIELD_CODES.items() for w in tokens[name]}
        ),
    }
    return row, _Delta(df, freq)


def _batches(documents: Iterable[dict], size: int):
    """``(document, seq)`` pairs in lists of ``size``; seq counts from 1."""
    batch = []
    for seq, doc in enumerate(documents, start=1):
        batch.append((doc, seq))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _prepared(numbered: tuple[dict, int]) -> tuple[dict, dict]:
    """The INSERT parameters of one document and its vocabulary contribution (plain
    data, so a worker process can make them)."""
    import json

    doc, seq = numbered
    row, contribution = _row(doc, seq)
    row.update(
        fields=json.dumps(row["fields"], ensure_ascii=False),
        tf=json.dumps(row["tf"], ensure_ascii=False),
        lengths=json.dumps(row["lengths"]),
    )
    return row, contribution.values


class _Delta:
    """Changes to ``search_terms``: (field, term) -> (df, freq)."""

    def __init__(self, df: Counter | None = None, freq: dict | None = None):
        self.values: dict[tuple[str, str], list[float]] = {}
        for key, n in (df or {}).items():
            self.values[key] = [n, (freq or {}).get(key, 0.0)]

    def add(self, other: _Delta, sign: int = 1) -> None:
        self.values_add(other.values, sign)

    def values_add(self, values: dict, sign: int = 1) -> None:
        for key, (df, freq) in values.items():
            mine = self.values.setdefault(key, [0, 0.0])
            mine[0] += sign * df
            mine[1] += sign * freq


def _stored_delta(tf: dict) -> _Delta:
    """What an indexed row contributed to the vocabulary (to take it back)."""
    df, freq = Counter(), {}
    for name, weights in tf.items():
        boost = FIELD_BOOSTS.get(name, 1.0)
        for w, weight in weights.items():
            df[(name, w)] += 1
            freq[(name, w)] = weight
        df[(LENGTH, name)] += 1
        freq[(LENGTH, name)] = round(sum(weights.values()) / boost)
    return _Delta(df, freq)


_INSERT = text(
    "INSERT INTO search_documents (id, seq, type, kind, subject, grade, edition, category,"
    " language, licence, district, school, visibility, author, published, usage,"
    " fingerprint, fields, tf, lengths, lexemes, "
    + ", ".join(TEXT_FIELDS)
    + ") VALUES (:id, :seq, :type, :kind, :subject, :grade, :edition, :category,"
    " :language, :licence, :district, :school, :visibility, :author, :published, :usage,"
    " :fingerprint, CAST(:fields AS jsonb), CAST(:tf AS jsonb), CAST(:lengths AS jsonb),"
    " array_to_tsvector(CAST(:lexemes AS text[])), "
    + ", ".join(f"array_to_tsvector(CAST(:{f} AS text[]))" for f in TEXT_FIELDS)
    + ")"
)
