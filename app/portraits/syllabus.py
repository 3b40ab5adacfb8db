"""The syllabus weeks and their aligned resources as the recommender reads them: part
of portraits' adapter to other features (see :mod:`app.portraits.sources`), kept apart
for its size.  Curriculum and catalog tables are read only, through their public
functions and documented columns."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import date

from sqlalchemy import select

from app.extensions import db
from app.portraits.sources import classes_of, today


def syllabus_weeks(user, offsets: tuple[int, ...], on: date | None = None) -> dict[int, list]:
    """Offset → ``[{"week", "lessons": [{"node", "knowledge_points"}]}]`` of the user's
    classes' calendars: ``sources.weeks_of`` for several offsets, without the aligned
    resources, which the recommender reads ranked and limited in SQL
    (:func:`ranked_alignments`) instead of every one of them (issue 14).  One statement
    per calendar for all the offsets."""
    from app.curriculum.models import CalendarEntry, Node
    from app.curriculum.services import (
        effective_calendar,
        knowledge_points_of,
        week_number,
    )

    on = on or today()
    found = []  # (offset, week number, lessons)
    for school_class in classes_of(user):
        for class_edition in school_class.editions:
            calendar = effective_calendar(school_class, class_edition.subject, on)
            if calendar is None:
                continue
            numbers = {offset: week_number(calendar, on) + offset for offset in offsets}
            by_week: dict[int, list] = defaultdict(list)
            for week, node in db.session.execute(
                select(CalendarEntry.week, Node)
                .join(Node, Node.id == CalendarEntry.node_id)
                .where(
                    CalendarEntry.calendar_id == calendar.id,
                    CalendarEntry.week.in_(set(numbers.values())),
                )
                .order_by(CalendarEntry.position, CalendarEntry.id)
            ).all():
                by_week[week].append(node)
            found += [(offset, n, by_week.get(n, [])) for offset, n in numbers.items()]
    every_lesson = list({n.id: n for *_rest, lessons in found for n in lessons}.values())
    kps = knowledge_points_of(every_lesson) if every_lesson else {}
    out: dict[int, list] = {offset: [] for offset in offsets}
    for offset, number, lessons in found:
        out[offset].append(
            {
                "week": number,
                "lessons": [
                    {"node": n, "knowledge_points": kps.get(n.identifier, [])} for n in lessons
                ],
            }
        )
    return out


@dataclass
class RankedAlignment:
    """A resource aligned to a lesson (its ``owner``), as ``AlignedResource`` of the
    curriculum feature: ``resource`` a ``ResourceSummary``, ``node_id`` the node of the
    alignment kept (direct before equivalent, teaches before assesses)."""

    resource: object
    alignment_type: str
    node_id: int
    via_equivalent: bool
    type_order: int
    special: bool


def ranked_alignments(
    user,
    lessons: list,
    knowledge_points: dict[str, list],
    rank: set[int],
    preview: set[int],
    special_ids,
    per_slot: int,
    preview_size: int,
    walk: bool | None = None,
) -> dict[int, list[RankedAlignment]]:
    """The published resources ``user`` may see aligned to each lesson (to it, its
    knowledge points or an exactMatchOf-equivalent node, as the curriculum feature's
    ``aligned_resources`` keeps them: one alignment per lesson and resource, direct
    before equivalent, then teaches, assesses, requires; ``requires`` dropped), but only
    those a ranking can need, chosen in SQL:

    * of lessons in ``rank``: every resource whose content id is in ``special_ids`` (a
      collection of content ids), and of the others the first ``per_slot`` by title in each
      *slot* — the knowledge point of the lesson the alignment names, or the lesson as a
      whole (every resource of a slot has the same score unless it is special, so no
      other can enter a top ``per_slot``);
    * of lessons in ``preview``: the first ``preview_size`` in the listing's order.

    Lesson id → its rows in the listing's order (equivalent last, alignment type, title,
    content id).  One statement: on PostgreSQL (``walk``) a walk of each node's
    alignments in title order that stops after a few (:func:`_walked_rows`), elsewhere
    window functions over every aligned row (:func:`_windowed_rows`); both give the same.
    """
    from app.curriculum.services import ResourceSummary, equivalents

    owners = {n.id: n for n in lessons if n.id in rank or n.id in preview}
    if not owners:
        return {}
    wanted: dict[str, set[int]] = defaultdict(set)
    kp_rows = set()
    for lesson in owners.values():
        wanted[lesson.identifier].add(lesson.id)
        for kp in knowledge_points.get(lesson.identifier, []):
            wanted[kp.identifier].add(lesson.id)
            kp_rows.add((lesson.id, kp.id))
    matches = equivalents(set(wanted))
    wanted_rows = {
        (other, owner, int(other != identifier))
        for identifier, owner_ids in wanted.items()
        for other in matches[identifier]
        for owner in owner_ids
    }
    if walk is None:
        walk = db.session.get_bind().dialect.name == "postgresql"
    read = _walked_rows if walk else _windowed_rows
    rows = read(user, wanted_rows, kp_rows, rank, preview, special_ids, per_slot, preview_size)
    out: dict[int, list[RankedAlignment]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["via"], r["type_order"], r["title"], r["content_id"])):
        out[row["owner"]].append(
            RankedAlignment(
                ResourceSummary(*(row[f.name] for f in fields(ResourceSummary))),
                getattr(row["alignment_type"], "value", row["alignment_type"]),
                row["node_id"],
                bool(row["via"]),
                row["type_order"],
                bool(row["special"]),
            )
        )
    return out


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


def _walked_rows(
    user, wanted_rows, kp_rows, rank, preview, special_ids, per_slot, preview_size
) -> list:
    """PostgreSQL: :func:`_walk_statement`'s rows, ranked in Python."""
    statement = _walk_statement(
        user, wanted_rows, rank, preview, special_ids, per_slot, preview_size
    )
    rows = db.session.execute(statement).mappings()
    return _ranked_in_python(rows, kp_rows, rank, preview, per_slot, preview_size)


def _walk_statement(user, wanted_rows, rank, preview, special_ids, per_slot, preview_size):
    """PostgreSQL: for each wanted node of a lesson and each alignment type that can be
    listed (teaches, assesses), the first few of its alignments in the order of the
    index ``ix_curriculum_alignments_node_title`` (title, then content id) whose resource
    is published and visible to ``user`` and whose alignment is the one the lesson keeps
    for it (no alignment of the resource to the lesson's nodes comes before it) — a
    ``LATERAL … LIMIT`` that reads a few index entries instead of every aligned row —
    plus every such alignment of a special resource.  A slot's first ``per_slot``
    non-special rows by title are among the first ``per_slot`` of its nodes' walks, and
    a lesson's first ``preview_size`` listed among the first ``preview_size`` of each
    walk (each walk is one node, one via, one type: the listing's order within it is its
    title order), so ranking the union in Python as :func:`_windowed_rows` ranks every
    row gives the same rows."""
    from sqlalchemy import (
        Integer,
        String,
        and_,
        case,
        exists,
        false,
        literal,
        or_,
        true,
        tuple_,
    )

    from app.catalog.models import Resource, State
    from app.catalog.services import visibility_condition
    from app.curriculum.models import Alignment, AlignmentType, Node, TargetType
    from app.curriculum.services import ResourceSummary

    # A node wanted by a lesson both directly and as an equivalent is listed directly
    # (its alignments' first position): keep the lower ``via`` only.  Then no alignment
    # is before itself, and the check below can skip the alignment it checks.
    lowest: dict[tuple[str, int], int] = {}
    for identifier, owner, via in wanted_rows:
        lowest[identifier, owner] = min(via, lowest.get((identifier, owner), via))
    wanted_rows = sorted((identifier, owner, via) for (identifier, owner), via in lowest.items())
    wanted = _rows_of(
        "w",
        identifier=(String, [r[0] for r in wanted_rows]),
        owner=(Integer, [r[1] for r in wanted_rows]),
        via=(Integer, [r[2] for r in wanted_rows]),
    )
    # One walk per wanted node of a lesson to rank (without the special resources, read
    # in full below) and one per wanted node of a lesson to preview (with them), for
    # each alignment type that is listed.
    walk_rows = []
    for identifier, owner, via in wanted_rows:
        for kind in (AlignmentType.TEACHES.value, AlignmentType.ASSESSES.value):
            if owner in rank:
                walk_rows.append((identifier, owner, via, kind, 0, per_slot))
            if owner in preview:
                walk_rows.append((identifier, owner, via, kind, 1, preview_size))
    walks = _rows_of(
        "walks",
        **{
            name: (kind, [r[i] for r in walk_rows])
            for i, (name, kind) in enumerate(
                [
                    ("identifier", String),
                    ("owner", Integer),
                    ("via", Integer),
                    ("kind", String),
                    ("with_special", Integer),
                    ("size", Integer),
                ]
            )
        },
    )
    # The special ids as arrays (one per use: each FROM needs its own bind), not a
    # sub-select: PostgreSQL ran the caller's feedback/gains select once per use.
    special_list = sorted(special_ids)
    special = select(_rows_of("special_ids", content_id=(String, special_list)).c.content_id)
    # Core columns, not the ORM entity's: a plain statement is cheaper to build.
    resources = Resource.__table__
    summary = [resources.c[f.name] for f in fields(ResourceSummary)]

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
            visibility_condition(user, resources.c),
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
    specials = _rows_of("specials", content_id=(String, special_list))
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
            wanted.c.owner.in_(rank or [-1]),
            special_row.c.alignment_type != AlignmentType.REQUIRES,
            visibility_condition(user, resources.c),
            kept(special_row, wanted.c.owner, wanted.c.via),
        )
    )
    return first.union_all(every_special)


def _ranked_in_python(rows, kp_rows, rank, preview, per_slot, preview_size) -> list:
    """The windows of :func:`_windowed_rows` over the rows of :func:`_walk_statement`
    (each lesson's and each slot's first rows are all among them, so their positions
    are the same), and the rows those windows keep."""
    candidates = {}
    for found in rows:
        found = dict(found)
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


def _rows_of(name: str, **columns):
    """A table of rows from arrays (``unnest(:a, :b, …) AS name(a, b, …)``), PostgreSQL:
    unlike VALUES, the statement stays the same whatever the rows, so SQLAlchemy compiles
    it once (a VALUES made it compile the whole statement at every call: 44 ms)."""
    from sqlalchemy import bindparam, column, func
    from sqlalchemy.dialects.postgresql import ARRAY

    return (
        func.unnest(
            *(
                bindparam(f"{name}_{key}", values, type_=ARRAY(kind))
                for key, (kind, values) in columns.items()
            )
        )
        .table_valued(*(column(key, kind) for key, (kind, _values) in columns.items()), name=name)
        .render_derived()
    )


def _windowed_rows(
    user, wanted_rows, kp_rows, rank, preview, special_ids, per_slot, preview_size
) -> list:
    """Every aligned row of the lessons' nodes, ranked with window functions (SQLite,
    and the reference the walk is tested against)."""
    from sqlalchemy import Integer, String, and_, case, column, func, or_, values

    from app.catalog.models import Resource, State
    from app.catalog.services import visibility_condition
    from app.curriculum.models import Alignment, AlignmentType, Node, TargetType
    from app.curriculum.services import ResourceSummary

    wanted_table = (
        values(
            column("identifier", String), column("owner", Integer), column("via", Integer), name="w"
        )
        .data(sorted(wanted_rows))
        .cte("w")
    )  # a CTE: SQLite has no (VALUES …) AS w (columns)
    slots = (
        values(column("slot_owner", Integer), column("slot_node", Integer), name="s")
        .data(sorted(kp_rows) or [(-1, -1)])
        .cte("s")
    )
    type_order = _type_order(Alignment)
    summary = [getattr(Resource, f.name) for f in fields(ResourceSummary)]
    # Strings in code-point order, as Python sorts them, and fast: PostgreSQL's default
    # collation follows the locale (strcoll was most of this statement's sorting time).
    postgres = db.session.get_bind().dialect.name == "postgresql"

    def ordered(text):
        return text.collate("C") if postgres else text

    candidates = (
        select(
            wanted_table.c.owner,
            wanted_table.c.via,
            Alignment.node_id,
            Alignment.alignment_type,
            type_order.label("type_order"),
            func.coalesce(slots.c.slot_node, 0).label("slot"),
            case((Resource.content_id.in_(sorted(special_ids)), 1), else_=0).label("special"),
            # Narrow rows through the window sorts; the summaries are joined at the end,
            # for the rows kept only.
            Resource.id.label("row_id"),
            Resource.content_id,
            Resource.title,
            func.row_number()
            .over(
                partition_by=(wanted_table.c.owner, ordered(Resource.content_id)),
                order_by=(wanted_table.c.via, type_order, Alignment.node_id),
            )
            .label("kept"),
        )
        .select_from(Alignment)
        .join(Node, Node.id == Alignment.node_id)
        .join(wanted_table, wanted_table.c.identifier == Node.identifier)
        .join(
            Resource,
            and_(Resource.content_id == Alignment.target_key, Resource.state == State.PUBLISHED),
        )
        .outerjoin(
            slots,
            and_(
                slots.c.slot_owner == wanted_table.c.owner, slots.c.slot_node == Alignment.node_id
            ),
        )
        .where(Alignment.target_type == TargetType.RESOURCE, visibility_condition(user, Resource))
        .subquery("candidates")
    )
    kept = (
        select(candidates)
        .where(candidates.c.kept == 1, candidates.c.alignment_type != AlignmentType.REQUIRES)
        .subquery("kept")
    )
    title, content_id = ordered(kept.c.title), ordered(kept.c.content_id)
    ranked = select(
        kept,
        func.row_number()
        .over(
            partition_by=(kept.c.owner, kept.c.slot, kept.c.special),
            order_by=(title, content_id),
        )
        .label("in_slot"),
        func.row_number()
        .over(
            partition_by=kept.c.owner,
            order_by=(kept.c.via, kept.c.type_order, title, content_id),
        )
        .label("listed"),
    ).subquery("ranked")
    conditions = []
    if preview:
        conditions.append(and_(ranked.c.owner.in_(preview), ranked.c.listed <= preview_size))
    if rank:
        conditions.append(
            and_(
                ranked.c.owner.in_(rank),
                or_(ranked.c.special == 1, ranked.c.in_slot <= per_slot),
            )
        )
    return (
        db.session.execute(
            select(
                ranked.c.owner,
                ranked.c.via,
                ranked.c.node_id,
                ranked.c.alignment_type,
                ranked.c.type_order,
                ranked.c.special,
                *summary,
            )
            .join(Resource, Resource.id == ranked.c.row_id)
            .where(or_(*conditions))
        )
        .mappings()
        .all()
    )
