"""The recommender's walk of each node's first aligned resources (PostgreSQL), part of
portraits' adapter to the curriculum and catalog tables (see :mod:`app.portraits.syllabus`,
which chooses between it and the window statement; kept apart for its size).

The statement is built once per process and reader visibility (issue 14, fifth round):
every per-call value is a bind parameter (arrays unnested into tables), and the one
user-dependent clause, the catalog's visibility condition, is the catalog's own cached
clause for her (:func:`app.catalog.services.visibility_condition` on the mapped class).
Only the statement's *structure* is kept, no data: the rows are read at every call."""

from __future__ import annotations

import json
from dataclasses import fields

from app.common.cache import BuiltFor
from app.extensions import db


def _type_order(alignment):
    """``alignment``: the model, or a Core alias of its table."""
    from sqlalchemy import case

    from app.curriculum.models import AlignmentType

    alignment = getattr(alignment, "c", alignment)
    return case(
        (alignment.alignment_type == AlignmentType.TEACHES, 0),
        (alignment.alignment_type == AlignmentType.ASSESSES, 1),
        (alignment.alignment_type == AlignmentType.REQUIRES, 2),
        else_=9,
    )


TYPE_ORDER = {"teaches": 0, "assesses": 1, "requires": 2}


def walked_rows(
    user, wanted_rows, kp_rows, rank, preview, special_ids, per_slot, preview_size
) -> list:
    """PostgreSQL: :func:`_walk_statement`'s rows, ranked in Python."""
    result = db.session.execute(
        _statement_for(user),
        _walk_parameters(wanted_rows, rank, preview, special_ids, per_slot, preview_size),
    )
    # Plain dicts from fetchall (iterating a mapping result fetched and wrapped each row
    # on its own).
    keys = list(result.keys())
    rows = [dict(zip(keys, values, strict=True)) for values in result.all()]
    kept = _ranked_in_python(rows, kp_rows, rank, preview, per_slot, preview_size)
    # ``translations`` comes as text and is decoded for the kept rows only (about 16 of
    # 240 at 100 k): the driver's JSON loader ran for every row (issue 14, seventh round).
    for found in kept:
        found["translations"] = _translations(found["translations"])
    return kept


def _translations(text: str | None) -> dict | None:
    """``Resource.translations`` from its text form, as the JSON column type gives it
    (nearly every resource has none: ``{}`` is not parsed)."""
    if text is None:
        return None
    if text == "{}":
        return {}
    return json.loads(text)


# Visibility clause's id → (the clause, the walk statement built with it).  The catalog
# keeps one clause object per reader key (her id, schools, districts, administered
# districts) in its own per-process LRU cache, so the same reader gets the same object
# and, here, the same statement; holding the clause keeps its id from being reused.
# Building the statement was ~17 % of a call (docs/portraits.md, fourth round).  A
# statement is a few hundred kB of SQLAlchemy objects: a small bound.
_STATEMENTS = BuiltFor(64)


def _statement_for(user):
    from app.catalog.models import Resource
    from app.catalog.services import visibility_condition

    visible = visibility_condition(user, Resource)
    return _STATEMENTS.get((visible,), lambda: _walk_statement(visible))


def _walk_parameters(wanted_rows, rank, preview, special_ids, per_slot, preview_size) -> dict:
    """The bind parameters of :func:`_walk_statement` for one call."""
    from app.curriculum.models import AlignmentType

    # A node wanted by a lesson both directly and as an equivalent is listed directly
    # (its alignments' first position): keep the lower ``via`` only.  Then no alignment
    # is before itself, and the statement's check can skip the alignment it checks.
    lowest: dict[tuple[str, int], int] = {}
    for identifier, owner, via in wanted_rows:
        lowest[identifier, owner] = min(via, lowest.get((identifier, owner), via))
    wanted_rows = sorted((identifier, owner, via) for (identifier, owner), via in lowest.items())
    # One walk per wanted node of a lesson to rank (without the special resources, read
    # in full by the statement's second part) and one per wanted node of a lesson to
    # preview (with them), for each alignment type that is listed.
    walk_rows = []
    for identifier, owner, via in wanted_rows:
        for kind in (AlignmentType.TEACHES.value, AlignmentType.ASSESSES.value):
            if owner in rank:
                walk_rows.append((identifier, owner, via, kind, 0, per_slot))
            if owner in preview:
                walk_rows.append((identifier, owner, via, kind, 1, preview_size))
    special_list = sorted(special_ids)
    parameters = {
        "w_identifier": [r[0] for r in wanted_rows],
        "w_owner": [r[1] for r in wanted_rows],
        "w_via": [r[2] for r in wanted_rows],
        "special_ids_content_id": special_list,
        "rank_ids": sorted(rank),
    }
    for i, name in enumerate(("identifier", "owner", "via", "kind", "with_special", "size")):
        parameters[f"walks_{name}"] = [r[i] for r in walk_rows]
    return parameters


def _walk_statement(visible):
    """PostgreSQL: for each wanted node of a lesson and each alignment type that can be
    listed (teaches, assesses), the first few of its alignments in the order of the
    index ``ix_curriculum_alignments_node_title`` (title, then content id) whose resource
    is published and ``visible`` (the reader's visibility condition on the catalog's
    ``Resource``) and whose alignment is the one the lesson keeps for it (no alignment
    of the resource to the lesson's nodes comes before it) — a ``LATERAL … LIMIT`` that
    reads a few index entries instead of every aligned row — plus every such alignment
    of a special resource.  A slot's first ``per_slot`` non-special rows by title are
    among the first ``per_slot`` of its nodes' walks, and a lesson's first
    ``preview_size`` listed among the first ``preview_size`` of each walk (each walk is
    one node, one via, one type: the listing's order within it is its title order), so
    ranking the union in Python as ``syllabus._windowed_rows`` ranks every row gives
    the same rows.  Every per-call value is a bind parameter (:func:`_walk_parameters`)."""
    from sqlalchemy import (
        Integer,
        String,
        Text,
        and_,
        any_,
        bindparam,
        case,
        cast,
        exists,
        false,
        literal,
        or_,
        select,
        true,
        tuple_,
    )
    from sqlalchemy.dialects.postgresql import ARRAY

    from app.catalog.models import Resource, State
    from app.curriculum.models import Alignment, AlignmentType, Node, TargetType
    from app.curriculum.services import ResourceSummary

    wanted = _rows_of("w", identifier=String, owner=Integer, via=Integer)
    walks = _rows_of(
        "walks",
        identifier=String,
        owner=Integer,
        via=Integer,
        kind=String,
        with_special=Integer,
        size=Integer,
    )
    # The special ids as an array, not a sub-select: PostgreSQL ran the caller's
    # feedback/gains select once per use.  One bind parameter for every use (each FROM
    # has its own ``unnest`` of it): psycopg dumps a list element by element in Python,
    # and the same ~150 ids were sent twice (issue 14, seventh round).
    special = select(_rows_of("special_ids", content_id=String).c.content_id)
    # Core columns, not the ORM entity's: a plain statement is cheaper to build.
    resources = Resource.__table__
    # ``translations`` as text: decoded in Python for the kept rows only (walked_rows).
    summary = [
        cast(resources.c.translations, Text).label("translations")
        if f.name == "translations"
        else resources.c[f.name]
        for f in fields(ResourceSummary)
    ]

    def kept(alignment, owner, via):
        """No other alignment of the same resource to the owner's wanted nodes comes
        first (via, alignment type, node id): ``alignment`` is the one the listing keeps.

        Most resources have one alignment: the outer EXISTS probes
        ``ix_curriculum_alignments_target`` and finds only the checked one; the owner's
        nodes are looked at only for a second.  Written ``EXISTS (…) = false``, not
        ``NOT EXISTS``: PostgreSQL turned a NOT EXISTS into an anti-join that
        materialised every alignment of the lesson's nodes for each walk (41 of 87 ms at
        10 k), and estimates a filter on a scalar count as keeping 1 row in 200, so it
        sorted every aligned row instead of walking the index; a boolean compared with a
        constant is estimated at one half and stays a subplan (issue 14)."""
        other = Alignment.__table__.alias("other")
        other_node = Node.__table__.alias("other_node")
        others = wanted.alias("others")
        wanted_there = exists(
            select(literal(1))
            .select_from(others)
            .where(
                others.c.identifier == other_node.c.identifier,
                others.c.owner == owner,
                tuple_(others.c.via, _type_order(other), other.c.node_id)
                < tuple_(via, _type_order(alignment), alignment.c.node_id),
            )
            .correlate_except(others)
        )
        before = exists(
            select(literal(1))
            .select_from(other)
            .join(other_node, other_node.c.id == other.c.node_id)
            .where(
                other.c.target_type == TargetType.RESOURCE,
                other.c.target_key == alignment.c.target_key,
                other.c.id != alignment.c.id,
                wanted_there,
            )
            .correlate_except(other, other_node)
        )
        return before == false()

    node = Node.__table__.alias("node")
    row = Alignment.__table__.alias("a")
    walked = (
        select(
            row.c.node_id,
            row.c.alignment_type,
            case((resources.c.content_id.in_(special), 1), else_=0).label("special"),
            *summary,
        )
        .select_from(row)
        .join(
            resources,
            and_(resources.c.content_id == row.c.target_key, resources.c.state == State.PUBLISHED),
        )
        .where(
            row.c.node_id == node.c.id,
            row.c.target_type == TargetType.RESOURCE,
            row.c.alignment_type == walks.c.kind,
            visible,
            or_(walks.c.with_special == 1, resources.c.content_id.not_in(special)),
            kept(row, walks.c.owner, walks.c.via),
        )
        .order_by(row.c.resource_title, row.c.target_key.collate("C"))
        .limit(walks.c.size)
        .lateral("walked")
    )
    first = (
        select(walks.c.owner, walks.c.via, walked)
        .select_from(walks)
        .join(node, node.c.identifier == walks.c.identifier)
        .join(walked, true())
    )
    special_node = Node.__table__.alias("special_node")
    special_row = Alignment.__table__.alias("s")
    specials = _rows_of("specials", parameters="special_ids", content_id=String)
    every_special = (
        select(
            wanted.c.owner,
            wanted.c.via,
            special_row.c.node_id,
            special_row.c.alignment_type,
            literal(1).label("special"),
            *summary,
        )
        .select_from(specials)
        .join(
            special_row,
            and_(
                special_row.c.target_type == TargetType.RESOURCE,
                special_row.c.target_key == specials.c.content_id,
            ),
        )
        .join(special_node, special_node.c.id == special_row.c.node_id)
        .join(wanted, wanted.c.identifier == special_node.c.identifier)
        .join(
            resources,
            and_(
                resources.c.content_id == special_row.c.target_key,
                resources.c.state == State.PUBLISHED,
            ),
        )
        .where(
            # An array (it was an IN list of the lessons' ids, a new statement whenever
            # their number changed); empty: no lesson to rank, no row.
            wanted.c.owner == any_(bindparam("rank_ids", type_=ARRAY(Integer))),
            special_row.c.alignment_type != AlignmentType.REQUIRES,
            visible,
            kept(special_row, wanted.c.owner, wanted.c.via),
        )
    )
    return first.union_all(every_special)


def _ranked_in_python(rows: list[dict], kp_rows, rank, preview, per_slot, preview_size) -> list:
    """The windows of ``syllabus._windowed_rows`` over the rows of :func:`_walk_statement`
    (dicts, changed in place: each lesson's and each slot's first rows are all among
    them, so their positions are the same), and the rows those windows keep."""
    candidates = {}
    for found in rows:
        found["type_order"] = TYPE_ORDER.get(
            getattr(found["alignment_type"], "value", found["alignment_type"]), 9
        )
        candidates[found["owner"], found["content_id"]] = found
    listed, in_slot = {}, {}
    for found in sorted(
        candidates.values(), key=lambda r: (r["via"], r["type_order"], r["title"], r["content_id"])
    ):
        listed[found["owner"]] = listed.get(found["owner"], 0) + 1
        found["listed"] = listed[found["owner"]]
    for found in sorted(candidates.values(), key=lambda r: (r["title"], r["content_id"])):
        slot = found["node_id"] if (found["owner"], found["node_id"]) in kp_rows else 0
        key = (found["owner"], slot, found["special"])
        in_slot[key] = in_slot.get(key, 0) + 1
        found["in_slot"] = in_slot[key]
    return [
        found
        for found in candidates.values()
        if (found["owner"] in preview and found["listed"] <= preview_size)
        or (found["owner"] in rank and (found["special"] or found["in_slot"] <= per_slot))
    ]


def _rows_of(name: str, parameters: str | None = None, **columns):
    """A table of rows from array bind parameters ``{name}_{column}``
    (``unnest(:a, :b, …) AS name(a, b, …)``), PostgreSQL: unlike VALUES, the statement
    stays the same whatever the rows (a VALUES made SQLAlchemy compile the whole
    statement at every call: 44 ms), and it can be built once (the values are given at
    execution).  ``parameters``: the parameters' prefix when not ``name`` (another
    table's, to unnest the same arrays again)."""
    from sqlalchemy import bindparam, column, func
    from sqlalchemy.dialects.postgresql import ARRAY

    return (
        func.unnest(
            *(
                bindparam(f"{parameters or name}_{key}", type_=ARRAY(kind))
                for key, kind in columns.items()
            )
        )
        .table_valued(*(column(key, kind) for key, kind in columns.items()), name=name)
        .render_derived()
    )
