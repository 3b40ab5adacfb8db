"""The syllabus weeks and their aligned resources as the recommender reads them: part
of portraits' adapter to other features (see :mod:`app.portraits.sources`), kept apart
for its size.  Curriculum and catalog tables are read only, through their public
functions and documented columns."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import date
from functools import cache
from typing import NamedTuple

from sqlalchemy import select

from app.extensions import db
from app.portraits.sources import followed_calendars, today
from app.portraits.walk import _type_order, walked_rows


def syllabus_weeks(user, offsets: tuple[int, ...], on: date | None = None) -> dict[int, list]:
    """Offset → ``[{"week", "lessons": [{"node", "knowledge_points"}]}]`` of the user's
    classes' calendars: ``sources.weeks_of`` for several offsets, without the aligned
    resources, which the recommender reads ranked and limited in SQL
    (:func:`ranked_alignments`) instead of every one of them (issue 14).  One statement
    per calendar for all the offsets."""
    from app.curriculum.services import week_number

    on = on or today()
    found = []  # (offset, week number, lessons)
    # Each class's calendar per subject as rows, one statement (the classes, their
    # school and editions as entities, then one statement per class and subject, were
    # two at least: issue 14, seventh round).
    for calendar in followed_calendars(user, on):
        numbers = {offset: week_number(calendar, on) + offset for offset in offsets}
        by_week: dict[int, list] = defaultdict(list)
        weeks = {"calendar_id": calendar.calendar_id, "weeks": sorted(set(numbers.values()))}
        for week, *node in db.session.execute(_entries_statement(), weeks).all():
            by_week[week].append(NodeRow(*node))
        found += [(offset, n, by_week.get(n, [])) for offset, n in numbers.items()]
    every_lesson = list({n.id: n for *_rest, lessons in found for n in lessons}.values())
    kps = _knowledge_points_of(every_lesson) if every_lesson else {}
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


class NodeRow(NamedTuple):
    """What the recommender reads of a lesson or knowledge point (``curriculum.Node``'s
    columns): a row, not an ORM entity with its CASE ``raw`` JSON (reading the weeks'
    nodes as entities was ~17 % of a call: issue 14, fifth round)."""

    id: int
    identifier: str
    title: str
    title_en: str | None


def _node_columns(node):
    return (node.id, node.identifier, node.title, node.title_en)


@cache
def _entries_statement():
    """The lessons of some weeks of a calendar, in the calendar's order; built once per
    process (bind parameters ``calendar_id`` and ``weeks``), as are the next ones."""
    from sqlalchemy import bindparam

    from app.curriculum.models import CalendarEntry, Node

    return (
        select(CalendarEntry.week, *_node_columns(Node))
        .join(Node, Node.id == CalendarEntry.node_id)
        .where(
            CalendarEntry.calendar_id == bindparam("calendar_id"),
            CalendarEntry.week.in_(bindparam("weeks", expanding=True)),
        )
        .order_by(CalendarEntry.position, CalendarEntry.id)
    )


@cache
def _knowledge_points_statement():
    """``curriculum.services.knowledge_points_of``'s statement for the lessons
    ``identifiers`` (a bind parameter), with :class:`NodeRow` columns: the children, and
    the knowledge points linked by isPartOf or isRelatedTo in either direction, each part
    on its own index."""
    from sqlalchemy import bindparam

    from app.curriculum.models import Level, Node
    from app.curriculum.services import knowledge_point_pairs

    pairs = knowledge_point_pairs(bindparam("identifiers", expanding=True))
    return (
        select(*_node_columns(Node), pairs.c.mine, pairs.c.link)
        .join(pairs, pairs.c.kp == Node.identifier)
        .where(Node.level == Level.KNOWLEDGE_POINT)
        .order_by(pairs.c.link, Node.position, Node.seq)
    )


def _knowledge_points_of(lessons: list) -> dict[str, list[NodeRow]]:
    """``curriculum.services.knowledge_points_of`` as :class:`NodeRow`: each lesson's
    children first, then the linked knowledge points not among them, in the same order
    (``tests/portraits/test_recommend_walk.py`` compares the two)."""
    identifiers = [n.identifier for n in lessons]
    rows = db.session.execute(_knowledge_points_statement(), {"identifiers": identifiers}).all()
    result: dict[str, list[NodeRow]] = defaultdict(list)
    linked = []
    for *kp, mine, link in rows:
        if link:
            linked.append((NodeRow(*kp), mine))
        else:
            result[mine].append(NodeRow(*kp))
    wanted = set(identifiers)
    for kp, mine in linked:
        if mine in wanted and kp not in result[mine]:
            result[mine].append(kp)
    return result


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
    matches: dict[str, set[str]] | None = None,
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
    alignments in title order that stops after a few (:func:`app.portraits.walk.walked_rows`),
    elsewhere window functions over every aligned row (:func:`_windowed_rows`); both give
    the same.  ``matches``: the exactMatchOf equivalents of the lessons and their
    knowledge points (``curriculum.services.equivalents``) when the caller has read them
    already (one more statement otherwise).
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
    if matches is None or not set(wanted) <= matches.keys():
        matches = equivalents(set(wanted))
    wanted_rows = {
        (other, owner, int(other != identifier))
        for identifier, owner_ids in wanted.items()
        for other in matches[identifier]
        for owner in owner_ids
    }
    if walk is None:
        walk = db.session.get_bind().dialect.name == "postgresql"
    read = walked_rows if walk else _windowed_rows
    rows = read(user, wanted_rows, kp_rows, rank, preview, special_ids, per_slot, preview_size)
    out: dict[int, list[RankedAlignment]] = defaultdict(list)
    names = [f.name for f in fields(ResourceSummary)]
    for row in sorted(rows, key=lambda r: (r["via"], r["type_order"], r["title"], r["content_id"])):
        out[row["owner"]].append(
            RankedAlignment(
                ResourceSummary(*(row[name] for name in names)),
                getattr(row["alignment_type"], "value", row["alignment_type"]),
                row["node_id"],
                bool(row["via"]),
                row["type_order"],
                bool(row["special"]),
            )
        )
    return out


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
