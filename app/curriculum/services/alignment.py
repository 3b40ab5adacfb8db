"""Alignment of resources and course items to lessons, units and knowledge points."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, fields

from sqlalchemy import Text, and_, bindparam, cast, select
from sqlalchemy.orm import lazyload, load_only

from app import signals
from app.accounts.models import User
from app.catalog import services as catalog
from app.catalog.models import (
    Course,
    CourseSection,
    Resource,
    SectionItem,
    State,
    VersionedContentMixin,
)
from app.common.events import send_after_commit
from app.curriculum.models import (
    Alignment,
    AlignmentType,
    Level,
    Node,
    TargetType,
)
from app.curriculum.services import week_cache
from app.curriculum.services.nodes import equivalents, get_node, knowledge_points_of
from app.curriculum.services.permissions import require_user
from app.errors import Forbidden, Invalid, NotFound
from app.extensions import db

ALIGNMENT_ORDER = {AlignmentType.TEACHES: 0, AlignmentType.ASSESSES: 1, AlignmentType.REQUIRES: 2}


def _resource_rows(content_id: str) -> list[Resource]:
    return list(
        db.session.execute(
            select(Resource).where(Resource.content_id == content_id).order_by(Resource.version)
        ).scalars()
    )


def _check_target_editable(user: User, target_type: TargetType, target_key: str) -> None:
    if target_type == TargetType.RESOURCE:
        rows = _resource_rows(target_key)
        if not rows or not any(catalog.can_view(user, r) for r in rows):
            raise NotFound("Resource not found.")
        if not catalog.can_edit(user, rows[-1]):
            raise Forbidden("Only the resource's owner or her district admin can align it.")
        return
    course = db.session.execute(
        select(Course)
        .join(CourseSection, CourseSection.course_id == Course.id)
        .join(SectionItem, SectionItem.section_id == CourseSection.id)
        .where(SectionItem.item_key == target_key)
        .order_by(Course.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    if course is None or not catalog.can_view(user, course):
        raise NotFound("Course item not found.")
    if not catalog.can_edit(user, course):
        raise Forbidden("Only the course's owner or her district admin can align its items.")


def align(
    user: User | None,
    node_id: int,
    target_type: str,
    target_key: str,
    alignment_type: str = "teaches",
) -> Alignment:
    user = require_user(user)
    try:
        target_type, alignment_type = TargetType(target_type), AlignmentType(alignment_type)
    except ValueError:
        raise Invalid(
            "Unknown target or alignment type.",
            fields={
                "alignment_type": ["One of teaches, assesses, requires."],
                "target_type": ["resource or item."],
            },
        ) from None
    node = get_node(node_id)
    if node.level not in (Level.LESSON, Level.KNOWLEDGE_POINT, Level.UNIT, Level.SECTION):
        raise Invalid(
            "Align to a lesson, a unit or a knowledge point.",
            fields={"node_id": [f"This node is a {node.level.value}."]},
        )
    _check_target_editable(user, target_type, target_key)
    existing = db.session.execute(
        select(Alignment).filter_by(
            node_id=node.id,
            target_type=target_type,
            target_key=target_key,
            alignment_type=alignment_type,
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    alignment = Alignment(
        node_id=node.id,
        target_type=target_type,
        target_key=target_key,
        alignment_type=alignment_type,
        created_by_id=user.id,
    )
    db.session.add(alignment)
    db.session.flush()
    if target_type == TargetType.RESOURCE:
        send_after_commit(signals.alignment_changed, resource_content_id=target_key, user=user)
    return alignment


def unalign(user: User | None, alignment_id: int) -> None:
    user = require_user(user)
    alignment = db.session.get(Alignment, alignment_id)
    if alignment is None:
        raise NotFound("Alignment not found.")
    _check_target_editable(user, alignment.target_type, alignment.target_key)
    db.session.delete(alignment)
    db.session.flush()
    if alignment.target_type == TargetType.RESOURCE:
        send_after_commit(
            signals.alignment_changed, resource_content_id=alignment.target_key, user=user
        )


@dataclass(frozen=True)
class NodeAlignment:
    """One alignment of a resource or course item to a curriculum node, with what a
    reader (or the search index) needs of the node: its titles and where it sits."""

    alignment_id: int
    alignment_type: str  # teaches | assesses | requires
    node_id: int
    identifier: str  # the node's CASE identifier
    level: str  # lesson | unit | knowledge_point
    title: str
    title_en: str | None
    subject: str | None
    grade: str | None
    edition: str | None
    volume: str | None  # title of the textbook volume above the node
    unit: str | None  # title of the unit above the node

    @property
    def terms(self) -> list[str]:
        """The words a search index should find the aligned item by."""
        return [t for t in (self.title, self.title_en, self.unit, self.volume) if t]


def _node_alignments(rows: list[tuple[Alignment, Node]]) -> list[NodeAlignment]:
    context = {
        n.identifier: n
        for n in db.session.execute(
            select(Node).where(
                Node.identifier.in_(
                    {n.volume_identifier for _, n in rows if n.volume_identifier}
                    | {n.unit_identifier for _, n in rows if n.unit_identifier}
                    | {""}
                )
            )
        ).scalars()
    }
    out = []
    for alignment, node in rows:
        volume, unit = context.get(node.volume_identifier), context.get(node.unit_identifier)
        out.append(
            NodeAlignment(
                alignment_id=alignment.id,
                alignment_type=alignment.alignment_type.value,
                node_id=node.id,
                identifier=node.identifier,
                level=node.level.value,
                title=node.title,
                title_en=node.title_en,
                subject=node.subject,
                grade=node.grade,
                edition=node.edition,
                volume=volume.title if volume else None,
                unit=unit.title if unit else None,
            )
        )
    return out


def _alignments_of(target_type: TargetType, key: str) -> list[NodeAlignment]:
    rows = db.session.execute(
        select(Alignment, Node)
        .join(Node, Node.id == Alignment.node_id)
        .where(Alignment.target_type == target_type, Alignment.target_key == key)
        .order_by(Node.subject, Node.edition, Node.order_in_volume, Node.id, Alignment.id)
    ).all()
    return _node_alignments(rows)


def alignments_for_resource(content_id: str) -> list[NodeAlignment]:
    """Every alignment of a resource (by content id), in textbook order."""
    return _alignments_of(TargetType.RESOURCE, content_id)


def alignments_for_item(item_key: str) -> list[NodeAlignment]:
    """Every alignment of a course item (by item key), in textbook order."""
    return _alignments_of(TargetType.ITEM, item_key)


def alignment_summary(alignment: Alignment) -> NodeAlignment:
    """One stored alignment as the API shows it."""
    return _node_alignments([(alignment, alignment.node)])[0]


def alignments_of_node(node: Node) -> list[Alignment]:
    """The alignments made directly to ``node`` (what its editors may remove)."""
    return list(
        db.session.execute(
            select(Alignment).where(Alignment.node_id == node.id).order_by(Alignment.id)
        ).scalars()
    )


@dataclass(frozen=True, slots=True)
class ResourceSummary:
    """A published resource as a week's listing shows it (kind, title, link), read as a
    plain row instead of a ``Resource`` entity: building 266 entities was most of "this
    week"'s Python time (docs/curriculum.md).  The attributes have ``Resource``'s names,
    and ``translated`` is the same method."""

    id: int
    content_id: str
    version: int
    title: str
    summary: str
    kind: str
    url: str | None
    translations: dict | None

    translated = VersionedContentMixin.translated


_SUMMARY_COLUMNS = tuple(getattr(Resource, f.name) for f in fields(ResourceSummary))
# What a Resource entity of a listing loads (the summary's columns and who may see it).
_ENTITY_COLUMNS = (
    *_SUMMARY_COLUMNS,
    Resource.state,
    Resource.visibility,
    Resource.school_id,
    Resource.district_id,
    Resource.author_id,
    Resource.subject,
    Resource.published_at,
)


_summary_statement = None


def _published_aligned(statement):
    """``statement`` over resource alignments joined to their node and to the published
    version of their resource (both week statements share it)."""
    return (
        statement.join(Node, Node.id == Alignment.node_id)
        .join(
            Resource,
            and_(Resource.content_id == Alignment.target_key, Resource.state == State.PUBLISHED),
        )
        .where(Alignment.target_type == TargetType.RESOURCE)
    )


def _aligned_summaries_statement():
    """The reader-independent part of the week's aligned-resources statement, built once
    per process (SQLAlchemy spent about a third of a call's CPU building it anew: 11
    columns, two joins, the identifier list).  The identifiers are an expanding bind
    parameter ``identifiers``; the caller adds the reader's visibility condition.

    ``translations`` comes as text (``CAST(… AS TEXT)``) and is decoded only when it is
    not empty (:func:`_translations`): the JSON loader of the driver ran for every row,
    and nearly all are ``{}``."""
    global _summary_statement
    if _summary_statement is None:
        columns = [c for c in _SUMMARY_COLUMNS if c.key != "translations"]
        _summary_statement = _published_aligned(
            select(
                Alignment.node_id,
                Alignment.alignment_type,
                Node.identifier,
                *columns,
                cast(Resource.translations, Text).label("translations"),
                # Only for the shared cache's check (week_cache.aligned_rows).
                Resource.author_id,
            )
        ).where(Node.identifier.in_(bindparam("identifiers", expanding=True)))
    return _summary_statement


# Position of ``author_id`` in the summaries statement's rows.
_AUTHOR_COLUMN = 11


def _translations(text: str | None) -> dict | None:
    """``Resource.translations`` from its text form, as the JSON column type gives it."""
    if text is None:
        return None
    if text == "{}":
        return {}
    return json.loads(text)


@dataclass
class AlignedResource:
    resource: Resource | ResourceSummary
    alignment_type: str
    node_id: int
    via_equivalent: bool = False


def aligned_resources(
    user: User | None,
    nodes: list[Node],
    include_knowledge_points: bool = True,
    knowledge_points: dict[str, list[Node]] | None = None,
    summaries: bool = False,
    equivalent_identifiers: dict[str, set[str]] | None = None,
) -> dict[int, list[AlignedResource]]:
    """Published resources ``user`` may see aligned to each node, to its knowledge points,
    or (through exactMatchOf) to an equivalent node of another edition.  With
    ``summaries`` each resource is a read-only :class:`ResourceSummary` row, not a
    ``Resource`` entity (for pages that only list them).  ``equivalent_identifiers``
    (identifier -> its exactMatchOf equivalents, as :func:`equivalents` gives them) saves
    that statement when the caller has them (the cached week structure); identifiers it
    lacks are read."""
    if not nodes:
        return {}
    wanted: dict[str, set[int]] = defaultdict(set)  # node identifier -> requested node ids
    direct: dict[str, int] = {n.identifier: n.id for n in nodes}
    for node in nodes:
        wanted[node.identifier].add(node.id)
    if include_knowledge_points:
        if knowledge_points is None:
            knowledge_points = knowledge_points_of(nodes)
        for parent, kps in knowledge_points.items():
            for kp in kps:
                wanted[kp.identifier].add(direct[parent])
    known = equivalent_identifiers or {}
    matches = equivalents({i for i in wanted if i not in known})  # no statement if none
    matches.update((i, known[i]) for i in wanted if i in known)
    expanded: dict[str, set[tuple[int, bool]]] = defaultdict(set)
    for identifier, owners in wanted.items():
        for other in matches[identifier]:
            for owner in owners:
                expanded[other].add((owner, other != identifier))
    if summaries:
        found = week_cache.aligned_rows(
            user,
            list(expanded),
            lambda: [
                tuple(row)
                for row in db.session.execute(
                    _aligned_summaries_statement().where(
                        catalog.visibility_condition(user, Resource)
                    ),
                    {"identifiers": list(expanded)},
                )
            ],
            author_column=_AUTHOR_COLUMN,
        )
        rows = [(r[0], r[1], ResourceSummary(*r[3:10], _translations(r[10])), r[2]) for r in found]
    else:
        visible = catalog.visibility_condition(user, Resource)
        found = db.session.execute(
            _published_aligned(
                select(Alignment.node_id, Alignment.alignment_type, Node.identifier, Resource)
            )
            .options(
                lazyload(Resource.tags),
                lazyload(Resource.grade_rows),
                load_only(*_ENTITY_COLUMNS),
            )
            .where(Node.identifier.in_(set(expanded)), visible)
        ).all()
        rows = [(r[0], r[1], r[3], r[2]) for r in found]
    result: dict[int, list[AlignedResource]] = defaultdict(list)
    seen: dict[int, set[str]] = defaultdict(set)
    ordered = sorted(
        rows, key=lambda r: (ALIGNMENT_ORDER.get(r[1], 9), r[2].title, r[2].content_id)
    )
    # Direct alignments first, then those through an equivalent lesson.
    for prefer_equivalent in (False, True):
        for node_id, alignment_type, resource, identifier in ordered:
            for owner, via in expanded.get(identifier, ()):
                if via != prefer_equivalent or resource.content_id in seen[owner]:
                    continue
                seen[owner].add(resource.content_id)
                result[owner].append(AlignedResource(resource, alignment_type.value, node_id, via))
    return result
