"""The syllabus weeks and their aligned resources as the recommender reads them: part
of portraits' adapter to other features (see :mod:`app.portraits.sources`), kept apart
for its size.  Curriculum and catalog tables are read only, through their public
functions and documented columns."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
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
    special,
    per_slot: int,
    preview_size: int,
) -> dict[int, list[RankedAlignment]]:
    """The published resources ``user`` may see aligned to each lesson (to it, its
    knowledge points or an exactMatchOf-equivalent node, as the curriculum feature's
    ``aligned_resources`` keeps them: one alignment per lesson and resource, direct
    before equivalent, then teaches, assesses, requires; ``requires`` dropped), but only
    those a ranking can need, chosen in SQL:

    * of lessons in ``rank``: every resource for which ``special(content_id column)`` is
      true, and of the others the first ``per_slot`` by title in each *slot* — the
      knowledge point of the lesson the alignment names, or the lesson as a whole (every
      resource of a slot has the same score unless it is special, so no other can enter
      a top ``per_slot``);
    * of lessons in ``preview``: the first ``preview_size`` in the listing's order.

    Lesson id → its rows in the listing's order (equivalent last, alignment type, title,
    content id).  One statement."""
    from dataclasses import fields

    from sqlalchemy import Integer, String, and_, case, column, func, or_, values

    from app.catalog.models import Resource, State
    from app.catalog.services import visibility_condition
    from app.curriculum.models import Alignment, AlignmentType, Node, TargetType
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
    type_order = case(
        (Alignment.alignment_type == AlignmentType.TEACHES, 0),
        (Alignment.alignment_type == AlignmentType.ASSESSES, 1),
        (Alignment.alignment_type == AlignmentType.REQUIRES, 2),
        else_=9,
    )
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
            case((special(Resource.content_id), 1), else_=0).label("special"),
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
    rows = (
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
