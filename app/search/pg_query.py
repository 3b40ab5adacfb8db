"""The search statement of the PostgreSQL backend: visibility, filters and the match
as ``WHERE`` conditions, Whoosh's BM25F as an SQL expression, and count, facet counts
and the page in one statement.

:class:`Querying` is a part of :class:`app.search.pg_backend.PostgresBackend` (it uses
the backend's ``_execute`` and the term statistics of
:class:`app.search.pg_terms.TermStatistics`).
"""

from __future__ import annotations

import math

from sqlalchemy import text

from app.search.backend import FACETS, BackendHit, BackendQuery, BackendResults
from app.search.pg_rows import FIELD_CODES
from app.search.whoosh_backend import MAX_COLLECT

B, K1 = 0.75, 1.2
_FACET_COLUMNS = {f: f for f in FACETS}


def _tsquery(term: str) -> str:
    """A one-lexeme tsquery literal, taken verbatim (no parser, no dictionary)."""
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


class Querying:
    """``search`` (a part of ``PostgresBackend``)."""

    def _where(self, q: BackendQuery, params: dict) -> list[str]:
        scope = q.scope
        where = []
        if not scope.everything:
            visible = ["d.visibility = 'region'"]
            if scope.school_ids:
                params["sc_school"] = sorted(scope.school_ids)
                visible.append("(d.visibility = 'school' AND d.school = ANY(:sc_school))")
            if scope.district_ids:
                params["sc_district"] = sorted(scope.district_ids)
                visible.append("(d.visibility = 'district' AND d.district = ANY(:sc_district))")
            if scope.admin_district_ids:
                params["sc_admin"] = sorted(scope.admin_district_ids)
                visible.append("d.district = ANY(:sc_admin)")
            if scope.author:
                params["sc_author"] = scope.author
                visible.append("d.author = :sc_author")
            if scope.subscribed_content_ids:
                # Items the districts receive by subscription (app/sharing); private ones
                # excluded, as in the catalog's rule.
                # Documents are keyed "<type>:<content_id>", so the primary key answers.
                params["sc_subscribed"] = sorted(
                    f"{kind}:{content_id}"
                    for content_id in scope.subscribed_content_ids
                    for kind in ("course", "resource")
                )
                visible.append("(d.id = ANY(:sc_subscribed) AND d.visibility <> 'private')")
            where.append("(" + " OR ".join(visible) + ")")
        if q.ids is not None:
            params["only_ids"] = sorted(q.ids)
            where.append("d.id = ANY(:only_ids)")
        for n, (facet, accepted) in enumerate(sorted(q.filters.items())):
            if facet not in _FACET_COLUMNS:
                raise ValueError(f"unknown facet {facet!r}")
            params[f"flt{n}"] = [str(v) for v in accepted]
            if facet == "grade":
                where.append(f"d.grade && CAST(:flt{n} AS text[])")
            else:
                where.append(f"d.{facet} = ANY(:flt{n})")
        groups = []
        for group in q.groups:
            matches = []
            for name, term, _ in group.alternatives:
                if name not in FIELD_CODES:
                    raise ValueError(f"unknown field {name!r}")
                matches.append(_tsquery(f"{FIELD_CODES[name]}:{term}"))
            groups.append("(" + " | ".join(matches) + ")")
        if groups:
            params["match"] = (" | " if q.relaxed else " & ").join(groups)
            where.append("d.lexemes @@ CAST(:match AS tsquery)")
        return where

    def _score(self, q: BackendQuery, params: dict) -> str:
        """Whoosh's BM25F over the alternatives, reading the weights of ``w.tf`` (the
        row's ``tf`` decompressed once, see :meth:`search`)."""
        wanted = {(name, term) for g in q.groups for name, term, _ in g.alternatives}
        df, average, docs = self._statistics(wanted)
        parts = []
        for g, group in enumerate(q.groups):
            for a, (name, term, boost) in enumerate(group.alternatives):
                idf = math.log(max(docs, 1) / (df.get((name, term), 0) + 1)) + 1
                params[f"t{g}_{a}"] = term
                params[f"c{g}_{a}"] = boost * idf * (K1 + 1)
                params[f"n{g}_{a}"] = K1 * B / average.get(name, 1)
                weight = f"coalesce(CAST(w.tf -> '{name}' ->> :t{g}_{a} AS float8), 0)"
                parts.append(
                    f"(:c{g}_{a} * {weight} / nullif({weight} + {K1 * (1 - B)}"
                    f" + :n{g}_{a} * CAST(w.lengths ->> '{name}' AS float8), 0))"
                )
        return "coalesce(" + " + ".join(f"coalesce({p}, 0)" for p in parts) + ", 0)"

    def search(self, q: BackendQuery) -> BackendResults:
        """Count, facet counts and the page in ONE statement: the visible matches are
        read once (one GIN look-up of ``lexemes``) into a materialised CTE with their
        facet columns and sort key, the facets are ``GROUP BY``s over it, and only the
        page's rows fetch their stored fields."""
        params: dict = {}
        where = self._where(q, params)
        condition = " AND ".join(where) or "TRUE"
        for facet in q.facets:
            if facet not in _FACET_COLUMNS:
                raise ValueError(f"unknown facet {facet!r}")
        wanted = q.offset + q.limit
        scored = bool(q.groups) and q.sort == "relevance"
        lateral = ""
        if scored:
            key = self._score(q, params)
            order = "m.key DESC, m.seq"
            # ``tf`` is stored compressed: every ``->`` on the column would decompress it
            # again (two per alternative); OFFSET 0 keeps this sub-select from being
            # inlined, so each matching row decompresses it once.
            lateral = (
                " CROSS JOIN LATERAL (SELECT d.tf || '{}'::jsonb AS tf,"
                " d.lengths AS lengths OFFSET 0) w"
            )
        elif q.sort == "popular":
            key, order = "d.usage", "m.key DESC, m.seq"
        else:
            key, order = "d.published", "m.key DESC, m.seq"
        columns = sorted({"grade", *q.facets})
        parts = ["SELECT 0 AS part, '' AS facet, '' AS value, count(*) AS n FROM m"]
        for facet in q.facets:
            if facet == "grade":
                parts.append(
                    "SELECT 1, 'grade', g, count(*) FROM m CROSS JOIN LATERAL unnest(m.grade) g"
                    " WHERE g <> '' GROUP BY g"
                )
            else:
                parts.append(
                    f"SELECT 1, '{facet}', m.{facet}, count(*) FROM m WHERE m.{facet} <> ''"
                    f" GROUP BY m.{facet}"
                )
        # Whoosh never ranks more than MAX_COLLECT hits for one page; neither do we.
        params.update(offset=q.offset, limit=q.limit if wanted <= MAX_COLLECT else 0)
        statement = (
            "WITH m AS MATERIALIZED (SELECT d.id, d.seq, "
            + ", ".join(f"d.{c}" for c in columns)
            + f", {key} AS key FROM search_documents d{lateral} WHERE {condition}),"
            f" p AS (SELECT m.id, m.seq, m.key FROM m ORDER BY {order}"
            " OFFSET :offset LIMIT :limit)"
            " SELECT part, facet, value, n, NULL::jsonb AS fields, NULL::float8 AS key,"
            " NULL::bigint AS seq FROM ("
            + " UNION ALL ".join(parts)
            + ") f UNION ALL SELECT 2, '', '', 0, d.fields, CAST(p.key AS float8), p.seq"
            " FROM p JOIN search_documents d ON d.id = p.id"
        )
        if q.groups:
            # The planner prices a sequential scan as cheap as the GIN index even when
            # thousands of rows match, because it does not count decompressing each
            # row's ``lexemes`` (out of line, TOASTed): 215 ms instead of 11 ms for
            # 1,549 matches of 20,000 (EXPLAIN ANALYZE in docs/search.md).  The matches
            # always come from the index; the setting is put back right after.
            previous = self._execute(
                text(
                    "SELECT current_setting('enable_seqscan'),"
                    " set_config('enable_seqscan', 'off', true)"
                )
            ).first()[0]
            # (on an error the transaction is aborted, and its rollback restores it)
            rows = self._execute(text(statement), params).all()
            self._execute(
                text("SELECT set_config('enable_seqscan', :previous, true)"),
                {"previous": previous},
            )
        else:
            rows = self._execute(text(statement), params).all()
        total = 0
        facets: dict[str, dict[str, int]] = {f: {} for f in q.facets}
        page = []
        for part, facet, value, n, fields, sort_key, seq in rows:
            if part == 0:
                total = int(n)
            elif part == 1:
                facets[facet][value] = int(n)
            else:
                page.append((-(sort_key or 0), seq, fields, sort_key))
        page.sort(key=lambda row: (row[0], row[1]))
        hits = [
            BackendHit(fields=dict(fields), score=sort_key if scored else None)
            for _, _, fields, sort_key in page
        ]
        return BackendResults(hits=hits, total=total, facets=facets)
