"""Curriculum business logic: frameworks, alignment, classes, teaching calendars,
"this week" and coverage.

Every function takes the acting user explicitly and only flushes; the view, API or CLI
commits once.  Interfaces used by other features (keep their signatures):
:func:`get_or_create_class`, :func:`add_class_member`, :func:`list_calendars`,
:func:`resources_for_week`, :func:`lessons_for_week`, :func:`alignments_for_resource`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, delete, or_, select, union_all
from sqlalchemy.orm import joinedload, lazyload, load_only

from app import signals
from app.accounts.models import School, User
from app.catalog import services as catalog
from app.catalog import vocab
from app.catalog.models import Course, CourseSection, Resource, SectionItem, State
from app.common.events import send_after_commit
from app.common.models import utcnow
from app.curriculum import case
from app.curriculum.models import (
    Alignment,
    AlignmentType,
    Association,
    CalendarEntry,
    CalendarVersion,
    CalendarWeek,
    ClassEdition,
    ClassMember,
    ClassProgress,
    ClassRole,
    Framework,
    Level,
    Node,
    SchoolClass,
    TargetType,
    TeachingCalendar,
)
from app.errors import Forbidden, Invalid, NotFound, Unauthorized
from app.extensions import db

ALIGNMENT_ORDER = {AlignmentType.TEACHES: 0, AlignmentType.ASSESSES: 1, AlignmentType.REQUIRES: 2}
MAX_WEEKS = 40


def today() -> date:
    """Today in the platform's time zone (school days are local days)."""
    zone = current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "Asia/Shanghai"
    return datetime.now(ZoneInfo(zone)).date()


def _require_user(user: User | None) -> User:
    if user is None:
        raise Unauthorized("Log in first.")
    return user


# --- frameworks -------------------------------------------------------------------------


def can_manage_framework(user: User | None, framework: Framework | None) -> bool:
    if user is None:
        return False
    if user.is_platform_admin:
        return True
    if framework is None:
        return user.is_district_admin()
    return framework.district_id is not None and user.is_district_admin(framework.district_id)


def list_frameworks() -> list[Framework]:
    return list(
        db.session.execute(select(Framework).order_by(Framework.title, Framework.id)).scalars()
    )


def get_framework(framework_id: int) -> Framework:
    framework = db.session.get(Framework, framework_id)
    if framework is None:
        raise NotFound("Framework not found.")
    return framework


def import_case(user: User | None, package, district_id: int | None = None) -> case.ImportReport:
    """Import (or update in place) a CASE package; district admins and platform admins."""
    user = _require_user(user)
    if district_id is None and not user.is_platform_admin:
        district_id = min(user.admin_district_ids()) if user.admin_district_ids() else None
    if not (user.is_platform_admin or (district_id and user.is_district_admin(district_id))):
        raise Forbidden("Only district and platform admins import curricula.")
    before: set[str] = set()
    if isinstance(package, dict) and isinstance(package.get("CFDocument"), dict):
        identifier = str(package["CFDocument"].get("identifier", "")).lower()
        existing = db.session.execute(
            select(Framework).where(Framework.identifier == identifier)
        ).scalar_one_or_none()
        if existing is not None:
            if not can_manage_framework(user, existing):
                raise Forbidden("This framework belongs to another district.")
            district_id = existing.district_id
            # Resources aligned before an update are reindexed (nodes may be gone or renamed).
            before = _aligned_content_ids_of_framework(identifier)
    report = case.import_package(package, district_id=district_id)
    for content_id in sorted(before):
        send_after_commit(signals.alignment_changed, resource_content_id=content_id, user=user)
    return report


def _aligned_content_ids_of_framework(identifier: str) -> set[str]:
    framework = db.session.execute(
        select(Framework.id).where(Framework.identifier == identifier)
    ).scalar()
    if framework is None:
        return set()
    return set(
        db.session.execute(
            select(Alignment.target_key)
            .join(Node, Node.id == Alignment.node_id)
            .where(Node.framework_id == framework, Alignment.target_type == TargetType.RESOURCE)
        ).scalars()
    )


def export_case(framework_id: int) -> dict:
    return case.export_package(get_framework(framework_id))


def delete_framework(user: User | None, framework_id: int) -> None:
    framework = get_framework(framework_id)
    if not can_manage_framework(_require_user(user), framework):
        raise Forbidden("Only the framework's district admins can delete it.")
    content_ids = _aligned_content_ids_of_framework(framework.identifier)
    db.session.execute(delete(Association).where(Association.framework_id == framework.id))
    db.session.execute(delete(Node).where(Node.framework_id == framework.id))
    db.session.delete(framework)
    db.session.flush()
    for content_id in sorted(content_ids):
        send_after_commit(signals.alignment_changed, resource_content_id=content_id, user=user)


# --- nodes ------------------------------------------------------------------------------


def get_node(node_id: int) -> Node:
    node = db.session.get(Node, node_id)
    if node is None:
        raise NotFound("Curriculum node not found.")
    return node


def node_by_identifier(identifier: str) -> Node | None:
    return db.session.execute(
        select(Node).where(Node.identifier == identifier.lower())
    ).scalar_one_or_none()


def children_of(node: Node) -> list[Node]:
    return list(
        db.session.execute(
            select(Node)
            .where(Node.parent_identifier == node.identifier)
            .order_by(Node.position, Node.seq)
        ).scalars()
    )


def ancestors_of(node: Node) -> list[Node]:
    path = []
    current = node
    while current.parent_identifier and len(path) < 50:
        current = node_by_identifier(current.parent_identifier)
        if current is None:
            break
        path.append(current)
    return list(reversed(path))


def framework_tree(framework: Framework, max_depth: int | None = None) -> list[dict]:
    """The framework's nodes nested by parent (knowledge points included)."""
    statement = (
        select(Node)
        .where(Node.framework_id == framework.id)
        .order_by(Node.depth, Node.position, Node.seq)
    )
    if max_depth is not None:
        statement = statement.where(Node.depth <= max_depth)
    nodes = list(db.session.execute(statement).scalars())
    entries = {node.identifier: {"node": node, "children": []} for node in nodes}
    roots = []
    for node in nodes:
        parent = entries.get(node.parent_identifier) if node.parent_identifier else None
        (parent["children"] if parent else roots).append(entries[node.identifier])
    return roots


def list_volumes(
    subject: str | None = None, edition: str | None = None, grade: str | None = None
) -> list[Node]:
    statement = select(Node).where(Node.level == Level.VOLUME)
    if subject:
        statement = statement.where(Node.subject == subject)
    if edition:
        statement = statement.where(Node.edition == edition)
    if grade:
        statement = statement.where(Node.grade == grade)
    return list(
        db.session.execute(
            statement.order_by(Node.subject, Node.grade, Node.edition, Node.seq)
        ).scalars()
    )


def lessons_of_volume(volume: Node) -> list[Node]:
    return list(
        db.session.execute(
            select(Node)
            .where(Node.volume_identifier == volume.identifier, Node.level == Level.LESSON)
            .order_by(Node.order_in_volume)
        ).scalars()
    )


def units_of_volume(volume: Node) -> list[Node]:
    return list(
        db.session.execute(
            select(Node)
            .where(Node.volume_identifier == volume.identifier, Node.level == Level.UNIT)
            .order_by(Node.position, Node.seq)
        ).scalars()
    )


def knowledge_points_of(nodes: list[Node]) -> dict[str, list[Node]]:
    """Knowledge points under each node (children) or linked to it by isPartOf/isRelatedTo."""
    identifiers = [n.identifier for n in nodes]
    result: dict[str, list[Node]] = defaultdict(list)
    if not identifiers:
        return result
    for kp in db.session.execute(
        select(Node)
        .where(Node.parent_identifier.in_(identifiers), Node.level == Level.KNOWLEDGE_POINT)
        .order_by(Node.position, Node.seq)
    ).scalars():
        result[kp.parent_identifier].append(kp)
    # Knowledge points linked by isPartOf/isRelatedTo, either direction: one UNION ALL whose
    # halves each use an index (an OR across both columns would scan the table).
    kinds = ["isPartOf", "isRelatedTo"]
    forward = select(
        Association.destination_identifier.label("kp"), Association.origin_identifier.label("mine")
    ).where(Association.association_type.in_(kinds), Association.origin_identifier.in_(identifiers))
    backward = select(
        Association.origin_identifier.label("kp"), Association.destination_identifier.label("mine")
    ).where(
        Association.association_type.in_(kinds), Association.destination_identifier.in_(identifiers)
    )
    pairs = union_all(forward, backward).subquery()
    linked = db.session.execute(
        select(Node, pairs.c.mine)
        .join(pairs, pairs.c.kp == Node.identifier)
        .where(Node.level == Level.KNOWLEDGE_POINT)
    ).all()
    wanted = set(identifiers)
    for kp, mine in linked:
        if mine in wanted and kp not in result[mine]:
            result[mine].append(kp)
    return result


def equivalents(identifiers: set[str]) -> dict[str, set[str]]:
    """For each identifier, the identifiers linked to it by exactMatchOf (both ways,
    transitively), itself included."""
    result = {i: {i} for i in identifiers}
    frontier = {i: {i} for i in identifiers}
    for _ in range(3):
        pending = set().union(*frontier.values()) if frontier else set()
        if not pending:
            break
        columns = (Association.origin_identifier, Association.destination_identifier)
        exact = Association.association_type == "exactMatchOf"
        rows = db.session.execute(
            union_all(
                select(*columns).where(exact, Association.origin_identifier.in_(pending)),
                select(*columns).where(exact, Association.destination_identifier.in_(pending)),
            )
        ).all()
        links = defaultdict(set)
        for origin, destination in rows:
            links[origin].add(destination)
            links[destination].add(origin)
        new_frontier = {}
        for start, edge in frontier.items():
            found = set().union(*(links.get(i, set()) for i in edge)) - result[start]
            if found:
                result[start] |= found
                new_frontier[start] = found
        frontier = new_frontier
    return result


def associations_of(node: Node, locale: str | None = None) -> list[dict]:
    rows = (
        db.session.execute(
            select(Association)
            .where(
                or_(
                    Association.origin_identifier == node.identifier,
                    Association.destination_identifier == node.identifier,
                )
            )
            .order_by(Association.association_type, Association.seq)
        )
        .scalars()
        .all()
    )
    others = {
        r.destination_identifier if r.origin_identifier == node.identifier else r.origin_identifier
        for r in rows
    }
    nodes = {
        n.identifier: n
        for n in db.session.execute(
            select(Node).where(Node.identifier.in_(others or {""}))
        ).scalars()
    }
    out = []
    for row in rows:
        inverse = row.origin_identifier != node.identifier
        other_identifier = row.origin_identifier if inverse else row.destination_identifier
        out.append(
            {
                "identifier": row.identifier,
                "type": row.association_type,
                "inverse": inverse,
                "label": case.association_label(row.association_type, inverse, locale),
                "other_identifier": other_identifier,
                "other": nodes.get(other_identifier),
            }
        )
    return out


def _framework_for_edit(user: User | None, framework_id: int) -> Framework:
    framework = get_framework(framework_id)
    if not can_manage_framework(_require_user(user), framework):
        raise Forbidden("Only the framework's district admins can edit it.")
    return framework


def _case_ref(node: Node | Framework) -> dict:
    title = node.title if isinstance(node, Framework) else node.title[:200]
    return {
        "title": title,
        "identifier": (node.raw or {}).get("identifier", node.identifier),
        "uri": (node.raw or {}).get("uri") or f"urn:uuid:{node.identifier}",
    }


def create_framework(user: User | None, data: dict) -> Framework:
    """An empty framework to build in the application (district curriculum leads)."""
    user = _require_user(user)
    district_id = data.get("district_id")
    if district_id is None and not user.is_platform_admin:
        district_id = min(user.admin_district_ids()) if user.admin_district_ids() else None
    if not (user.is_platform_admin or (district_id and user.is_district_admin(district_id))):
        raise Forbidden("Only district and platform admins build curricula.")
    identifier = str(uuid.uuid4())
    now = utcnow().strftime("%Y-%m-%dT%H:%M:%S+00:00")
    document = {
        "identifier": identifier,
        "uri": f"urn:uuid:{identifier}",
        "title": data["title"],
        "creator": data.get("creator") or user.name,
        "lastChangeDateTime": now,
        "language": "zh",
        "version": data.get("version") or "1",
    }
    if data.get("subject"):
        document["subject"] = [data["subject"]]
    framework = Framework(
        identifier=identifier,
        title=data["title"],
        creator=document["creator"],
        version=document["version"],
        last_change=now,
        subject=data.get("subject"),
        district_id=district_id,
        raw=document,
        extras={},
    )
    db.session.add(framework)
    db.session.flush()
    return framework


def _touch(framework: Framework) -> None:
    now = utcnow().strftime("%Y-%m-%dT%H:%M:%S+00:00")
    framework.last_change = now
    framework.raw = {**framework.raw, "lastChangeDateTime": now}


def add_node(user: User | None, framework_id: int, data: dict) -> Node:
    """Add an item (``level``, ``title``, optional ``parent_id``, ``code``, ``title_en``)."""
    framework = _framework_for_edit(user, framework_id)
    parent = get_node(data["parent_id"]) if data.get("parent_id") else None
    if parent is not None and parent.framework_id != framework.id:
        raise Invalid(
            "The parent belongs to another framework.",
            fields={"parent_id": ["Not in this framework."]},
        )
    level = Level(data["level"])
    identifier = str(uuid.uuid4())
    item = {
        "identifier": identifier,
        "uri": f"urn:uuid:{identifier}",
        "fullStatement": data["title"],
        "CFItemType": case.LEVEL_ITEM_TYPES[level],
        "lastChangeDateTime": utcnow().strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "CFDocumentURI": _case_ref(framework),
    }
    if data.get("code"):
        item["humanCodingScheme"] = data["code"]
    if data.get("title_en"):
        item["alternativeLabel"] = data["title_en"]
    seq = (
        db.session.execute(
            select(Node.seq)
            .where(Node.framework_id == framework.id)
            .order_by(Node.seq.desc())
            .limit(1)
        ).scalar()
        or 0
    ) + 1
    node = Node(
        framework_id=framework.id,
        identifier=identifier,
        seq=seq,
        level=level,
        title=data["title"],
        title_en=data.get("title_en"),
        code=data.get("code"),
        raw=item,
    )
    db.session.add(node)
    siblings = (
        db.session.execute(
            select(Association).where(
                Association.association_type == "isChildOf",
                Association.destination_identifier
                == (parent.identifier if parent else framework.identifier),
            )
        )
        .scalars()
        .all()
    )
    _new_association(framework, "isChildOf", node, parent or framework, len(siblings) + 1)
    _touch(framework)
    db.session.flush()
    case.rederive(framework)
    return get_node(node.id)


def _new_association(
    framework: Framework, kind: str, origin, destination, sequence: int | None = None
):
    identifier = str(uuid.uuid4())
    raw = {
        "identifier": identifier,
        "uri": f"urn:uuid:{identifier}",
        "associationType": kind,
        "CFDocumentURI": _case_ref(framework),
        "originNodeURI": _case_ref(origin),
        "destinationNodeURI": _case_ref(destination),
        "lastChangeDateTime": utcnow().strftime("%Y-%m-%dT%H:%M:%S+00:00"),
    }
    if sequence is not None:
        raw["sequenceNumber"] = sequence
    seq = (
        db.session.execute(
            select(Association.seq)
            .where(Association.framework_id == framework.id)
            .order_by(Association.seq.desc())
            .limit(1)
        ).scalar()
        or 0
    ) + 1
    row = Association(
        framework_id=framework.id,
        identifier=identifier,
        seq=seq,
        association_type=kind,
        origin_identifier=origin.identifier,
        destination_identifier=destination.identifier,
        sequence_number=sequence,
        raw=raw,
    )
    db.session.add(row)
    return row


def add_association(
    user: User | None, origin_id: int, destination_id: int, kind: str
) -> Association:
    """Link two nodes; the association belongs to the origin's framework."""
    if kind not in case.ASSOCIATION_TYPES:
        raise Invalid(
            "Unknown association type.",
            fields={"type": [f"One of {', '.join(case.ASSOCIATION_TYPES)}."]},
        )
    origin, destination = get_node(origin_id), get_node(destination_id)
    framework = _framework_for_edit(user, origin.framework_id)
    if origin.id == destination.id:
        raise Invalid(
            "A node cannot be associated with itself.", fields={"destination_id": ["Same node."]}
        )
    if kind in case.ACYCLIC_TYPES:
        edges = [
            (o, d, "")
            for o, d in db.session.execute(
                select(Association.origin_identifier, Association.destination_identifier).where(
                    Association.association_type == kind
                )
            ).all()
        ]
        edges.append((origin.identifier, destination.identifier, "new"))
        if case._cycles(edges):
            raise Invalid(
                f"This {kind} association would make a cycle.",
                fields={"destination_id": ["Cycle."]},
            )
    row = _new_association(framework, kind, origin, destination)
    _touch(framework)
    db.session.flush()
    if kind == "isChildOf":
        case.rederive(framework)
    return row


# --- alignment --------------------------------------------------------------------------


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
    user = _require_user(user)
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
    if node.level not in (Level.LESSON, Level.KNOWLEDGE_POINT, Level.UNIT):
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
    user = _require_user(user)
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


def _node_summary(node: Node) -> dict:
    return {
        "node_id": node.id,
        "identifier": node.identifier,
        "level": node.level.value,
        "title": node.title,
        "title_en": node.title_en,
        "subject": node.subject,
        "grade": node.grade,
        "edition": node.edition,
    }


def alignments_for_resource(content_id: str) -> list[dict]:
    """Every alignment of a resource: node id and identifier, level, titles, subject, grade,
    edition, alignment type, plus the volume and unit titles (search indexes these)."""
    rows = db.session.execute(
        select(Alignment, Node)
        .join(Node, Node.id == Alignment.node_id)
        .where(Alignment.target_type == TargetType.RESOURCE, Alignment.target_key == content_id)
        .order_by(Node.subject, Node.edition, Node.order_in_volume, Node.id)
    ).all()
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
            {
                **_node_summary(node),
                "alignment_id": alignment.id,
                "alignment_type": alignment.alignment_type.value,
                "volume": volume.title if volume else None,
                "unit": unit.title if unit else None,
            }
        )
    return out


def alignments_for_item(item_key: str) -> list[dict]:
    rows = db.session.execute(
        select(Alignment, Node)
        .join(Node, Node.id == Alignment.node_id)
        .where(Alignment.target_type == TargetType.ITEM, Alignment.target_key == item_key)
    ).all()
    return [
        {**_node_summary(n), "alignment_id": a.id, "alignment_type": a.alignment_type.value}
        for a, n in rows
    ]


@dataclass
class AlignedResource:
    resource: Resource
    alignment_type: str
    node_id: int
    via_equivalent: bool = False


def aligned_resources(
    user: User | None,
    nodes: list[Node],
    include_knowledge_points: bool = True,
    knowledge_points: dict[str, list[Node]] | None = None,
) -> dict[int, list[AlignedResource]]:
    """Published resources ``user`` may see aligned to each node, to its knowledge points,
    or (through exactMatchOf) to an equivalent node of another edition."""
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
    matches = equivalents(set(wanted))
    expanded: dict[str, set[tuple[int, bool]]] = defaultdict(set)
    for identifier, owners in wanted.items():
        for other in matches[identifier]:
            for owner in owners:
                expanded[other].add((owner, other != identifier))
    rows = db.session.execute(
        select(Alignment.node_id, Alignment.alignment_type, Resource, Node.identifier)
        .join(Node, Node.id == Alignment.node_id)
        .join(
            Resource,
            and_(Resource.content_id == Alignment.target_key, Resource.state == State.PUBLISHED),
        )
        .where(
            Alignment.target_type == TargetType.RESOURCE,
            Node.identifier.in_(set(expanded)),
            catalog.visibility_condition(user, Resource),
        )
        .options(
            lazyload(Resource.tags),
            lazyload(Resource.grade_rows),
            load_only(
                Resource.id,
                Resource.content_id,
                Resource.version,
                Resource.title,
                Resource.summary,
                Resource.kind,
                Resource.url,
                Resource.translations,
                Resource.state,
                Resource.visibility,
                Resource.school_id,
                Resource.district_id,
                Resource.author_id,
                Resource.subject,
                Resource.published_at,
            ),
        )
    ).all()
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


# --- curriculum course from a volume ----------------------------------------------------


def generate_course(user: User | None, volume_id: int, data: dict | None = None) -> Course:
    """A curriculum course draft: one section per unit, one placeholder item per lesson,
    each item aligned ("teaches") to its lesson.  Teachers fill the items."""
    data = data or {}
    volume = get_node(volume_id)
    if volume.level != Level.VOLUME:
        raise Invalid(
            "Courses are generated from a volume.", fields={"volume_id": ["Not a volume."]}
        )
    units = units_of_volume(volume)
    lessons = lessons_of_volume(volume)
    by_unit = defaultdict(list)
    for lesson in lessons:
        by_unit[lesson.unit_identifier].append(lesson)
    sections, section_lessons = [], []
    groups = [(u.title, by_unit.get(u.identifier, [])) for u in units]
    if by_unit.get(None):
        groups.append((volume.title, by_unit[None]))
    for title, unit_lessons in groups:
        if not unit_lessons:
            continue
        sections.append(
            {
                "title": title[:200],
                "items": [{"title": lesson.title[:200]} for lesson in unit_lessons],
            }
        )
        section_lessons.append(unit_lessons)
    if not sections:
        raise Invalid("This volume has no lessons.", fields={"volume_id": ["No lessons."]})
    payload = {
        "kind": "curriculum",
        "title": data.get("title") or _volume_title(volume),
        "subject": volume.subject if volume.subject in vocab.SUBJECTS else None,
        "grade": volume.grade if volume.grade in vocab.GRADES else None,
        "edition": volume.edition if volume.edition in vocab.EDITIONS else None,
        "sections": sections,
    }
    if data.get("visibility"):
        payload["visibility"] = data["visibility"]
    course = catalog.create_content(user, Course, payload)
    for section, unit_lessons in zip(course.sections, section_lessons, strict=True):
        for item, lesson in zip(section.items, unit_lessons, strict=True):
            db.session.add(
                Alignment(
                    node_id=lesson.id,
                    target_type=TargetType.ITEM,
                    target_key=item.item_key,
                    alignment_type=AlignmentType.TEACHES,
                    created_by_id=user.id,
                )
            )
    db.session.flush()
    return course


def _volume_title(volume: Node) -> str:
    parts = [
        vocab.label("grade", volume.grade),
        vocab.label("subject", volume.subject),
        vocab.label("edition", volume.edition),
        volume.title,
    ]
    return " ".join(p for p in parts if p)[:200]


# --- classes ----------------------------------------------------------------------------


def get_or_create_class(
    school: School, name: str, *, grade: str | None = None, external_ref: str | None = None
) -> SchoolClass:
    """The class of ``school`` with this external reference (e.g. ``lti:<issuer>:<context>``)
    or, without one, this name; created when missing.  No permission check: callers
    (LTI launch, demo loader, admin services) decide who may do this."""
    if grade is not None and grade not in vocab.GRADES:
        raise Invalid("Unknown grade.", fields={"grade": [f"Unknown grade '{grade}'."]})
    if external_ref:
        found = db.session.execute(
            select(SchoolClass).filter_by(external_ref=external_ref)
        ).scalar_one_or_none()
    else:
        found = db.session.execute(
            select(SchoolClass)
            .filter_by(school_id=school.id, name=name, external_ref=None)
            .order_by(SchoolClass.id)
            .limit(1)
        ).scalar_one_or_none()
    if found is None:
        found = SchoolClass(
            school_id=school.id, name=name[:200], grade=grade, external_ref=external_ref
        )
        db.session.add(found)
    else:
        if grade and found.grade != grade:
            found.grade = grade
        if external_ref and found.name != name:
            found.name = name[:200]
    db.session.flush()
    return found


def add_class_member(school_class: SchoolClass, user: User, role: str) -> ClassMember:
    """Idempotent: add ``user`` as "student" or "teacher" of the class."""
    try:
        role = ClassRole(role)
    except ValueError:
        raise Invalid("Unknown class role.", fields={"role": ["student or teacher."]}) from None
    member = db.session.get(ClassMember, (school_class.id, user.id, role))
    if member is None:
        member = ClassMember(class_id=school_class.id, user_id=user.id, role=role)
        db.session.add(member)
        db.session.flush()
    return member


def remove_class_member(actor: User | None, class_id: int, user_id: int, role: str) -> None:
    school_class = get_class(actor, class_id, manage=True)
    db.session.execute(
        delete(ClassMember).where(
            ClassMember.class_id == school_class.id,
            ClassMember.user_id == user_id,
            ClassMember.role == role,
        )
    )
    db.session.flush()


def _is_class_member(user: User, school_class: SchoolClass, role: ClassRole | None = None) -> bool:
    statement = select(ClassMember.user_id).where(
        ClassMember.class_id == school_class.id, ClassMember.user_id == user.id
    )
    if role is not None:
        statement = statement.where(ClassMember.role == role)
    return db.session.execute(statement.limit(1)).first() is not None


def can_manage_class(user: User | None, school_class: SchoolClass) -> bool:
    if user is None:
        return False
    return (
        user.is_platform_admin
        or user.is_district_admin(school_class.school.district_id)
        or _is_class_member(user, school_class, ClassRole.TEACHER)
    )


def get_class(user: User | None, class_id: int, manage: bool = False) -> SchoolClass:
    user = _require_user(user)
    school_class = db.session.get(SchoolClass, class_id)
    if school_class is None:
        raise NotFound("Class not found.")
    if can_manage_class(user, school_class):
        return school_class
    if not manage and _is_class_member(user, school_class):
        return school_class
    if not manage and user.is_teacher and school_class.school_id in user.member_school_ids():
        return school_class
    if manage and _is_class_member(user, school_class):
        raise Forbidden("Only the class's teachers and district admins can change it.")
    raise NotFound("Class not found.")


def classes_of(user: User | None, role: str | None = None) -> list[SchoolClass]:
    """The classes ``user`` belongs to (as ``role`` when given)."""
    if user is None:
        return []
    statement = (
        select(SchoolClass)
        .join(ClassMember, ClassMember.class_id == SchoolClass.id)
        .where(ClassMember.user_id == user.id)
    )
    if role:
        statement = statement.where(ClassMember.role == role)
    statement = statement.options(joinedload(SchoolClass.school))
    return list(
        db.session.execute(statement.distinct().order_by(SchoolClass.name)).unique().scalars()
    )


def create_class(user: User | None, data: dict) -> SchoolClass:
    """A teacher creates a class of her school (she becomes its teacher); a district admin
    one of any school of her district."""
    user = _require_user(user)
    school = (
        db.session.get(School, data["school_id"])
        if data.get("school_id")
        else (user.school if user.school_id else None)
    )
    if school is None:
        raise Invalid("Which school?", fields={"school_id": ["Required."]})
    teacher_here = user.is_teacher and school.id in user.member_school_ids()
    if not (user.is_platform_admin or user.is_district_admin(school.district_id) or teacher_here):
        raise Forbidden("Only the school's teachers and district admins create classes.")
    school_class = get_or_create_class(school, data["name"], grade=data.get("grade"))
    if teacher_here:
        add_class_member(school_class, user, "teacher")
    for subject, edition in (data.get("editions") or {}).items():
        set_class_edition(user, school_class.id, subject, edition)
    return school_class


def set_class_edition(user: User | None, class_id: int, subject: str, edition: str) -> ClassEdition:
    school_class = get_class(user, class_id, manage=True)
    errors = {}
    if subject not in vocab.SUBJECTS:
        errors["subject"] = [f"Unknown subject '{subject}'."]
    if edition not in vocab.EDITIONS:
        errors["edition"] = [f"Unknown edition '{edition}'."]
    if errors:
        raise Invalid("The submitted data is not valid.", fields=errors)
    row = db.session.get(ClassEdition, (school_class.id, subject))
    if row is None:
        row = ClassEdition(class_id=school_class.id, subject=subject, edition=edition)
        db.session.add(row)
    row.edition = edition
    db.session.flush()
    db.session.refresh(school_class)
    return row


def add_member_by_email(actor: User | None, class_id: int, email: str, role: str) -> ClassMember:
    from app.accounts.services import get_user_by_email

    school_class = get_class(actor, class_id, manage=True)
    user = get_user_by_email(email or "")
    if (
        user is None
        or user.school_id not in (school_class.school_id, None)
        and school_class.school_id not in user.member_school_ids()
    ):
        raise Invalid(
            "No user of this school has that email.", fields={"email": ["Unknown in this school."]}
        )
    return add_class_member(school_class, user, role)


def class_members(school_class: SchoolClass) -> dict[str, list[User]]:
    result = {"teacher": [], "student": []}
    for member in db.session.execute(
        select(ClassMember).where(ClassMember.class_id == school_class.id)
    ).scalars():
        result[member.role.value].append(member.user)
    for users in result.values():
        users.sort(key=lambda u: u.name)
    return result


def record_progress(user: User | None, class_id: int, node_id: int) -> ClassProgress:
    """The class is at lesson ``node_id`` (ahead of or behind the calendar)."""
    school_class = get_class(user, class_id, manage=True)
    node = get_node(node_id)
    if node.level != Level.LESSON:
        raise Invalid("Progress is recorded at a lesson.", fields={"node_id": ["Not a lesson."]})
    if not node.subject:
        raise Invalid("This lesson has no subject.", fields={"node_id": ["No subject."]})
    row = db.session.get(ClassProgress, (school_class.id, node.subject))
    if row is None:
        row = ClassProgress(class_id=school_class.id, subject=node.subject, node_id=node.id)
        db.session.add(row)
    row.node_id, row.updated_by_id, row.updated_at = node.id, user.id, utcnow()
    db.session.flush()
    return row


def progress_of(school_class: SchoolClass) -> dict[str, ClassProgress]:
    return {
        p.subject: p
        for p in db.session.execute(
            select(ClassProgress).where(ClassProgress.class_id == school_class.id)
        ).scalars()
    }


# --- teaching calendars -----------------------------------------------------------------


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _parse_date(value, name: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise Invalid("Invalid date.", fields={name: [f"Not a date: {value!r}."]}) from None


def _holiday_days(holidays: list[dict]) -> set[date]:
    days = set()
    for holiday in holidays:
        start, end = (
            _parse_date(holiday["start"], "holidays"),
            _parse_date(holiday["end"], "holidays"),
        )
        while start <= end:
            days.add(start)
            start += timedelta(days=1)
    return days


def term_weeks(term_start: date, term_end: date, holidays: list[dict]) -> list[dict]:
    """Weeks of a term (Monday to Sunday, clipped to the term) with their teaching days."""
    off = _holiday_days(holidays)
    weeks = []
    start, number = _monday(term_start), 1
    while start <= term_end and number <= MAX_WEEKS + 20:
        first, last = max(start, term_start), min(start + timedelta(days=6), term_end)
        teaching = sum(
            1
            for i in range((last - first).days + 1)
            if (first + timedelta(days=i)).weekday() < 5 and first + timedelta(days=i) not in off
        )
        weeks.append(
            {"week": number, "starts_on": first, "ends_on": last, "teaching_days": teaching}
        )
        start += timedelta(days=7)
        number += 1
    return weeks


def spread_lessons(
    lessons: list[int], weeks: list[dict], lessons_per_week: int
) -> dict[int, list[int]]:
    """Spread ``lessons`` in order over the teaching weeks, in proportion to each week's
    teaching time (a holiday week takes fewer, a week without school days none)."""
    capacity = [lessons_per_week * w["teaching_days"] / 5 for w in weeks]
    total = sum(capacity)
    plan: dict[int, list[int]] = {w["week"]: [] for w in weeks}
    if not lessons or total <= 0:
        return plan
    bounds, running = [], 0.0
    for cap in capacity:
        running += cap
        bounds.append(running)
    index = 0
    for i, lesson in enumerate(lessons):
        target = (i + 0.5) * total / len(lessons)
        while index < len(weeks) - 1 and (bounds[index] <= target or capacity[index] == 0):
            index += 1
        plan[weeks[index]["week"]].append(lesson)
    return plan


def _validate_term(term_start: date, term_end: date, holidays: list[dict]) -> None:
    errors = {}
    if term_end < term_start:
        errors["term_end"] = ["The term ends before it starts."]
    elif (term_end - term_start).days > 7 * MAX_WEEKS:
        errors["term_end"] = [f"A term has at most {MAX_WEEKS} weeks."]
    for i, holiday in enumerate(holidays):
        start = _parse_date(holiday.get("start"), f"holidays[{i}].start")
        end = _parse_date(holiday.get("end"), f"holidays[{i}].end")
        if end < start:
            errors[f"holidays[{i}]"] = ["The holiday ends before it starts."]
        elif start < term_start or end > term_end:
            errors[f"holidays[{i}]"] = [
                f"{holiday.get('name') or 'Holiday'} ({start} to {end}) is outside the term "
                f"({term_start} to {term_end})."
            ]
    if errors:
        raise Invalid("The calendar is not valid.", fields=errors)


def _calendar_readable(user: User | None, calendar: TeachingCalendar) -> bool:
    if user is None:
        return False
    if user.is_platform_admin or user.is_district_admin(calendar.district_id):
        return True
    if calendar.class_id:
        return calendar.school_class is not None and (
            _is_class_member(user, calendar.school_class)
            or (user.is_teacher and calendar.school_class.school_id in user.member_school_ids())
        )
    if calendar.school_id:
        return calendar.school_id in user.member_school_ids()
    return calendar.district_id in user.member_district_ids()


def _calendar_editable(user: User | None, calendar: TeachingCalendar) -> bool:
    if user is None:
        return False
    if user.is_platform_admin or user.is_district_admin(calendar.district_id):
        return True
    return bool(calendar.class_id) and _is_class_member(
        user, calendar.school_class, ClassRole.TEACHER
    )


def get_calendar(user: User | None, calendar_id: int, edit: bool = False) -> TeachingCalendar:
    user = _require_user(user)
    calendar = db.session.get(TeachingCalendar, calendar_id)
    if calendar is None or not _calendar_readable(user, calendar):
        raise NotFound("Calendar not found.")
    if edit and not _calendar_editable(user, calendar):
        raise Forbidden(
            "Only the district's admins (or, for a class calendar, its teachers) can edit it."
        )
    return calendar


def list_calendars(user: User | None) -> list[TeachingCalendar]:
    """Calendars ``user`` may see: her districts' and schools' calendars and those of her
    classes (all of them for platform admins), newest term first."""
    if user is None:
        return []
    statement = select(TeachingCalendar)
    if not user.is_platform_admin:
        class_ids = [c.id for c in classes_of(user)]
        if user.is_teacher:
            class_ids += list(
                db.session.execute(
                    select(SchoolClass.id).where(
                        SchoolClass.school_id.in_(user.member_school_ids() or {0})
                    )
                ).scalars()
            )
        clauses = [
            TeachingCalendar.district_id.in_(user.admin_district_ids() or {0}),
            and_(
                TeachingCalendar.class_id.is_(None),
                TeachingCalendar.school_id.is_(None),
                TeachingCalendar.district_id.in_(user.member_district_ids() or {0}),
            ),
            and_(
                TeachingCalendar.class_id.is_(None),
                TeachingCalendar.school_id.in_(user.member_school_ids() or {0}),
            ),
            TeachingCalendar.class_id.in_(class_ids or [0]),
        ]
        statement = statement.where(or_(*clauses))
    return list(
        db.session.execute(
            statement.order_by(
                TeachingCalendar.term_start.desc(), TeachingCalendar.title, TeachingCalendar.id
            )
        ).scalars()
    )


def create_calendar(user: User | None, data: dict) -> TeachingCalendar:
    """A calendar for a district (or one of its schools, or a class) with the default plan:
    the volume's lessons spread over the term's teaching weeks."""
    user = _require_user(user)
    volume = get_node(data["volume_id"])
    if volume.level != Level.VOLUME:
        raise Invalid("A calendar plans one volume.", fields={"volume_id": ["Not a volume."]})
    school_class = db.session.get(SchoolClass, data["class_id"]) if data.get("class_id") else None
    school = db.session.get(School, data["school_id"]) if data.get("school_id") else None
    if data.get("class_id") and school_class is None:
        raise NotFound("Class not found.")
    if data.get("school_id") and school is None:
        raise NotFound("School not found.")
    if school_class is not None:
        school = school_class.school
    district_id = school.district_id if school else data.get("district_id")
    if district_id is None:
        admin_of = sorted(user.admin_district_ids())
        district_id = admin_of[0] if admin_of else user.district_id
    if district_id is None:
        raise Invalid("Which district?", fields={"district_id": ["Required."]})
    allowed = (
        user.is_platform_admin
        or user.is_district_admin(district_id)
        or (school_class is not None and _is_class_member(user, school_class, ClassRole.TEACHER))
    )
    if not allowed:
        raise Forbidden("Only district admins create calendars (teachers: for their own class).")
    term_start, term_end = (
        _parse_date(data["term_start"], "term_start"),
        _parse_date(data["term_end"], "term_end"),
    )
    holidays = [_holiday(h) for h in data.get("holidays") or []]
    _validate_term(term_start, term_end, holidays)
    subject = data.get("subject") or volume.subject
    edition = data.get("edition") or volume.edition
    if not subject or not edition:
        raise Invalid(
            "The volume has no subject or edition.",
            fields={"volume_id": ["No subject or edition."]},
        )
    calendar = TeachingCalendar(
        title=data.get("title") or f"{data['term']} {_volume_title(volume)}",
        district_id=district_id,
        school_id=school.id if school else None,
        class_id=school_class.id if school_class else None,
        term=data["term"],
        subject=subject,
        edition=edition,
        grade=volume.grade,
        volume_id=volume.id,
        term_start=term_start,
        term_end=term_end,
        lessons_per_week=data.get("lessons_per_week") or 5,
        holidays=holidays,
        current_version=0,
        created_by_id=user.id,
    )
    db.session.add(calendar)
    db.session.flush()
    weeks = term_weeks(term_start, term_end, holidays)
    plan = spread_lessons(
        [n.id for n in lessons_of_volume(volume)], weeks, calendar.lessons_per_week
    )
    _write_plan(
        user,
        calendar,
        [{**w, "lessons": plan[w["week"]]} for w in weeks],
        "Generated default plan.",
    )
    return calendar


def _holiday(data: dict) -> dict:
    return {
        "name": str(data.get("name") or "")[:100],
        "start": _parse_date(data.get("start"), "holidays").isoformat(),
        "end": _parse_date(data.get("end"), "holidays").isoformat(),
    }


def _validate_weeks(calendar: TeachingCalendar, weeks: list[dict]) -> None:
    errors: dict[str, list[str]] = {}
    lessons = {n.id: n for n in lessons_of_volume(calendar.volume)}
    seen_weeks, scheduled = {}, {}
    ranges = []
    for i, week in enumerate(weeks):
        where = f"weeks[{i}]"
        number = week["week"]
        if number in seen_weeks:
            errors.setdefault(where, []).append(f"Week {number} appears twice.")
        seen_weeks[number] = where
        start, end = week["starts_on"], week["ends_on"]
        if end < start:
            errors.setdefault(where, []).append(f"Week {number} ends before it starts.")
        if start < calendar.term_start or end > calendar.term_end:
            errors.setdefault(where, []).append(
                f"Week {number} ({start} to {end}) is outside the term "
                f"({calendar.term_start} to {calendar.term_end})."
            )
        ranges.append((start, end, number, where))
        for node_id in week.get("lessons", []):
            if node_id not in lessons:
                errors.setdefault(where, []).append(
                    f"Lesson {node_id} is not a lesson of this volume."
                )
            elif node_id in scheduled:
                errors.setdefault(where, []).append(
                    f"Lesson {lessons[node_id].title} is scheduled twice "
                    f"(weeks {scheduled[node_id]} and {number})."
                )
            else:
                scheduled[node_id] = number
    ranges.sort()
    for (_s1, e1, n1, _w1), (s2, _e2, n2, w2) in zip(ranges, ranges[1:], strict=False):
        if s2 <= e1:
            errors.setdefault(w2, []).append(
                f"Week {n2} overlaps week {n1} ({s2} is before {e1} ends)."
            )
    if errors:
        raise Invalid("The calendar is not valid.", fields=errors)


def _write_plan(
    user: User, calendar: TeachingCalendar, weeks: list[dict], note: str | None
) -> CalendarVersion:
    _validate_weeks(calendar, weeks)
    db.session.execute(delete(CalendarEntry).where(CalendarEntry.calendar_id == calendar.id))
    db.session.execute(delete(CalendarWeek).where(CalendarWeek.calendar_id == calendar.id))
    db.session.flush()
    for week in weeks:
        db.session.add(
            CalendarWeek(
                calendar_id=calendar.id,
                week=week["week"],
                starts_on=week["starts_on"],
                ends_on=week["ends_on"],
            )
        )
        for position, node_id in enumerate(week.get("lessons", [])):
            db.session.add(
                CalendarEntry(
                    calendar_id=calendar.id, week=week["week"], position=position, node_id=node_id
                )
            )
    calendar.current_version += 1
    calendar.updated_at = utcnow()
    version = CalendarVersion(
        calendar_id=calendar.id,
        version=calendar.current_version,
        note=(note or "")[:500] or None,
        created_by_id=user.id,
        data={
            "term": calendar.term,
            "term_start": calendar.term_start.isoformat(),
            "term_end": calendar.term_end.isoformat(),
            "lessons_per_week": calendar.lessons_per_week,
            "holidays": calendar.holidays,
            "weeks": [
                {
                    "week": w["week"],
                    "starts_on": w["starts_on"].isoformat(),
                    "ends_on": w["ends_on"].isoformat(),
                    "lessons": list(w.get("lessons", [])),
                }
                for w in weeks
            ],
        },
    )
    db.session.add(version)
    db.session.flush()
    db.session.expire(calendar, ["weeks"])
    return version


def calendar_plan(calendar: TeachingCalendar) -> list[dict]:
    """The current weeks with their lesson nodes, in order."""
    entries = defaultdict(list)
    for entry in db.session.execute(
        select(CalendarEntry)
        .where(CalendarEntry.calendar_id == calendar.id)
        .order_by(CalendarEntry.week, CalendarEntry.position)
    ).scalars():
        entries[entry.week].append(entry.node)
    return [
        {
            "week": w.week,
            "starts_on": w.starts_on,
            "ends_on": w.ends_on,
            "lessons": entries.get(w.week, []),
        }
        for w in calendar.weeks
    ]


def save_calendar(user: User | None, calendar_id: int, data: dict) -> TeachingCalendar:
    """Save a new version: term dates, holidays, lessons per week and/or the weeks.

    Without ``weeks`` the lessons stay in their week numbers (dates follow the term);
    with ``regenerate`` the default plan is spread again.
    """
    calendar = get_calendar(user, calendar_id, edit=True)
    current = {p["week"]: [n.id for n in p["lessons"]] for p in calendar_plan(calendar)}
    if "title" in data and data["title"]:
        calendar.title = data["title"][:200]
    term_start = _parse_date(data.get("term_start", calendar.term_start), "term_start")
    term_end = _parse_date(data.get("term_end", calendar.term_end), "term_end")
    holidays = (
        [_holiday(h) for h in data["holidays"]]
        if "holidays" in data
        else list(calendar.holidays or [])
    )
    _validate_term(term_start, term_end, holidays)
    calendar.term_start, calendar.term_end, calendar.holidays = term_start, term_end, holidays
    if data.get("lessons_per_week"):
        calendar.lessons_per_week = data["lessons_per_week"]
    defaults = {w["week"]: w for w in term_weeks(term_start, term_end, holidays)}
    if data.get("regenerate"):
        plan = spread_lessons(
            [n.id for n in lessons_of_volume(calendar.volume)],
            list(defaults.values()),
            calendar.lessons_per_week,
        )
        weeks = [{**w, "lessons": plan[n]} for n, w in defaults.items()]
    elif data.get("weeks") is not None:
        weeks = []
        for i, week in enumerate(data["weeks"]):
            default = defaults.get(week["week"], {})
            starts_on = week.get("starts_on") or default.get("starts_on")
            ends_on = week.get("ends_on") or default.get("ends_on")
            if starts_on is None or ends_on is None:
                raise Invalid(
                    "The calendar is not valid.",
                    fields={
                        f"weeks[{i}]": [
                            f"Week {week['week']} is outside the term ({term_start} to {term_end})."
                        ]
                    },
                )
            weeks.append(
                {
                    "week": week["week"],
                    "starts_on": _parse_date(starts_on, f"weeks[{i}].starts_on"),
                    "ends_on": _parse_date(ends_on, f"weeks[{i}].ends_on"),
                    "lessons": list(week.get("lessons") or []),
                }
            )
    else:
        weeks = [{**w, "lessons": current.get(n, [])} for n, w in defaults.items()]
        lost = [lesson for n, lessons in current.items() if n not in defaults for lesson in lessons]
        if lost and weeks:
            weeks[-1]["lessons"] = weeks[-1]["lessons"] + lost
    _write_plan(user, calendar, weeks, data.get("note"))
    return calendar


def move_lesson(user: User | None, calendar_id: int, node_id: int, week: int) -> TeachingCalendar:
    """Put one lesson into another week (at its end)."""
    calendar = get_calendar(user, calendar_id, edit=True)
    plan = [
        {**p, "lessons": [n.id for n in p["lessons"] if n.id != node_id]}
        for p in calendar_plan(calendar)
    ]
    target = next((p for p in plan if p["week"] == week), None)
    if target is None:
        raise Invalid("No such week.", fields={"week": [f"Week {week} is not in this calendar."]})
    target["lessons"].append(node_id)
    _write_plan(user, calendar, plan, f"Moved lesson {node_id} to week {week}.")
    return calendar


def shift_calendar(
    user: User | None, calendar_id: int, by: int = 1, from_week: int = 1
) -> TeachingCalendar:
    """Move every lesson from ``from_week`` on by ``by`` weeks (later when positive);
    lessons pushed past either end collect in the first or last week."""
    calendar = get_calendar(user, calendar_id, edit=True)
    if by == 0:
        return calendar
    plan = calendar_plan(calendar)
    numbers = [p["week"] for p in plan]
    start = next((i for i, n in enumerate(numbers) if n >= from_week), len(numbers))
    moved = [
        {**p, "lessons": [n.id for n in p["lessons"]] if i < start else []}
        for i, p in enumerate(plan)
    ]
    for i in range(start, len(plan)):
        target = min(max(i + by, 0), len(plan) - 1)
        moved[target]["lessons"] = moved[target]["lessons"] + [n.id for n in plan[i]["lessons"]]
    _write_plan(user, calendar, moved, f"Shifted by {by} week(s) from week {from_week}.")
    return calendar


def override_calendar(user: User | None, calendar_id: int, class_id: int) -> TeachingCalendar:
    """A teacher's copy of a district or school calendar for her class (returned as is
    when she already has one for that term and subject)."""
    user = _require_user(user)
    base = get_calendar(user, calendar_id)
    school_class = get_class(user, class_id, manage=True)
    if school_class.school.district_id != base.district_id:
        raise Invalid("The class is in another district.", fields={"class_id": ["Other district."]})
    existing = db.session.execute(
        select(TeachingCalendar).filter_by(
            class_id=school_class.id, subject=base.subject, term=base.term
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    calendar = TeachingCalendar(
        title=f"{base.title} · {school_class.name}"[:200],
        district_id=base.district_id,
        school_id=school_class.school_id,
        class_id=school_class.id,
        based_on_id=base.id,
        term=base.term,
        subject=base.subject,
        edition=base.edition,
        grade=base.grade,
        volume_id=base.volume_id,
        term_start=base.term_start,
        term_end=base.term_end,
        lessons_per_week=base.lessons_per_week,
        holidays=list(base.holidays or []),
        current_version=0,
        created_by_id=user.id,
    )
    db.session.add(calendar)
    db.session.flush()
    plan = [{**p, "lessons": [n.id for n in p["lessons"]]} for p in calendar_plan(base)]
    _write_plan(
        user, calendar, plan, f"Copied from calendar {base.id} version {base.current_version}."
    )
    return calendar


def calendar_versions(user: User | None, calendar_id: int) -> list[CalendarVersion]:
    calendar = get_calendar(user, calendar_id)
    return list(
        db.session.execute(
            select(CalendarVersion)
            .where(CalendarVersion.calendar_id == calendar.id)
            .order_by(CalendarVersion.version.desc())
        ).scalars()
    )


def restore_calendar_version(user: User | None, calendar_id: int, version: int) -> TeachingCalendar:
    calendar = get_calendar(user, calendar_id, edit=True)
    row = db.session.execute(
        select(CalendarVersion).filter_by(calendar_id=calendar.id, version=version)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("Calendar version not found.")
    data = row.data
    calendar.term_start, calendar.term_end = (
        date.fromisoformat(data["term_start"]),
        date.fromisoformat(data["term_end"]),
    )
    calendar.holidays, calendar.lessons_per_week = data["holidays"], data["lessons_per_week"]
    weeks = [
        {
            "week": w["week"],
            "starts_on": date.fromisoformat(w["starts_on"]),
            "ends_on": date.fromisoformat(w["ends_on"]),
            "lessons": w["lessons"],
        }
        for w in data["weeks"]
    ]
    _write_plan(user, calendar, weeks, f"Restored version {version}.")
    return calendar


def delete_calendar(user: User | None, calendar_id: int) -> None:
    calendar = get_calendar(user, calendar_id, edit=True)
    db.session.delete(calendar)
    db.session.flush()


def week_number(calendar: TeachingCalendar, day: date) -> int:
    """The calendar week containing ``day`` (may be outside 1..last for days off term)."""
    return (_monday(day) - _monday(calendar.term_start)).days // 7 + 1


def _week_row(calendar: TeachingCalendar, week: int) -> CalendarWeek | None:
    return db.session.get(CalendarWeek, (calendar.id, week))


def lessons_for_week(user: User | None, calendar_id: int, week: int) -> list[Node]:
    """The lessons planned for ``week`` of a calendar, in teaching order."""
    calendar = get_calendar(user, calendar_id)
    return list(
        db.session.execute(
            select(Node)
            .join(CalendarEntry, CalendarEntry.node_id == Node.id)
            .where(CalendarEntry.calendar_id == calendar.id, CalendarEntry.week == week)
            .order_by(CalendarEntry.position)
        ).scalars()
    )


def resources_for_week(user: User | None, calendar_id: int, week: int) -> list[Resource]:
    """Published resources ``user`` may see aligned to the week's lessons (or their
    knowledge points, or equivalent lessons of other editions), in lesson order."""
    lessons = lessons_for_week(user, calendar_id, week)
    aligned = aligned_resources(user, lessons)
    out, seen = [], set()
    for lesson in lessons:
        for entry in aligned.get(lesson.id, []):
            if entry.resource.content_id not in seen:
                seen.add(entry.resource.content_id)
                out.append(entry.resource)
    return out


def effective_calendar(
    school_class: SchoolClass, subject: str, day: date
) -> TeachingCalendar | None:
    """The calendar a class follows for ``subject`` on ``day``: the teacher's class
    calendar, else the school's, else the district's, for the class's edition."""
    edition = school_class.edition_for(subject)
    if edition is None:
        return None
    candidates = (
        db.session.execute(
            select(TeachingCalendar).where(
                TeachingCalendar.subject == subject,
                TeachingCalendar.edition == edition,
                TeachingCalendar.term_start <= day,
                TeachingCalendar.term_end >= day,
                TeachingCalendar.district_id == school_class.school.district_id,
                or_(
                    TeachingCalendar.class_id == school_class.id,
                    and_(
                        TeachingCalendar.class_id.is_(None),
                        TeachingCalendar.school_id == school_class.school_id,
                    ),
                    and_(TeachingCalendar.class_id.is_(None), TeachingCalendar.school_id.is_(None)),
                ),
            )
        )
        .scalars()
        .all()
    )
    if school_class.grade:
        candidates = [c for c in candidates if c.grade in (None, school_class.grade)]
    if not candidates:
        return None
    return sorted(candidates, key=lambda c: (0 if c.class_id else 1 if c.school_id else 2, -c.id))[
        0
    ]


@dataclass
class WeekView:
    school_class: SchoolClass
    calendar: TeachingCalendar
    week: int
    starts_on: date | None
    ends_on: date | None
    lessons: list[dict] = field(default_factory=list)
    progress: Node | None = None
    progress_delta: int | None = None  # lessons ahead (+) or behind (-) of the plan


def this_week(
    user: User | None,
    class_id: int | None = None,
    on: date | None = None,
    offset: int = 0,
    subject: str | None = None,
) -> list[WeekView]:
    """What ``user``'s classes (or the one class) learn in the week of ``on`` (+ ``offset``
    weeks): lessons, their knowledge points and the resources aligned to them."""
    user = _require_user(user)
    on = on or today()
    classes = [get_class(user, class_id)] if class_id is not None else classes_of(user)
    views = []
    for school_class in classes:
        progress = progress_of(school_class)
        for class_edition in school_class.editions:
            if subject and class_edition.subject != subject:
                continue
            calendar = effective_calendar(school_class, class_edition.subject, on)
            if calendar is None:
                continue
            number = week_number(calendar, on) + offset
            row = _week_row(calendar, number)
            lessons = list(
                db.session.execute(
                    select(Node)
                    .join(CalendarEntry, CalendarEntry.node_id == Node.id)
                    .where(CalendarEntry.calendar_id == calendar.id, CalendarEntry.week == number)
                    .order_by(CalendarEntry.position)
                ).scalars()
            )
            kps = knowledge_points_of(lessons)
            aligned = aligned_resources(user, lessons, knowledge_points=kps)
            view = WeekView(
                school_class,
                calendar,
                number,
                row.starts_on if row else None,
                row.ends_on if row else None,
                [
                    {
                        "node": n,
                        "knowledge_points": kps.get(n.identifier, []),
                        "resources": aligned.get(n.id, []),
                    }
                    for n in lessons
                ],
            )
            at = progress.get(class_edition.subject)
            if at is not None:
                view.progress = at.node
                planned = week_number(calendar, on)
                planned_lessons = (
                    db.session.execute(
                        select(Node.order_in_volume)
                        .join(CalendarEntry, CalendarEntry.node_id == Node.id)
                        .where(
                            CalendarEntry.calendar_id == calendar.id, CalendarEntry.week <= planned
                        )
                    )
                    .scalars()
                    .all()
                )
                if at.node.order_in_volume and planned_lessons:
                    view.progress_delta = at.node.order_in_volume - max(
                        o or 0 for o in planned_lessons
                    )
            views.append(view)
    return views


# --- coverage ---------------------------------------------------------------------------


def coverage(user: User | None, volume_id: int) -> dict:
    """For one volume: per unit and lesson (and knowledge point), how many published
    resources of each kind are aligned (directly, through a knowledge point of the lesson
    or an equivalent lesson of another edition)."""
    volume = get_node(volume_id)
    if volume.level != Level.VOLUME:
        raise Invalid("Coverage is shown per volume.", fields={"volume_id": ["Not a volume."]})
    lessons = lessons_of_volume(volume)
    kps = knowledge_points_of(lessons)
    all_nodes = lessons + [kp for points in kps.values() for kp in points]
    aligned = aligned_resources(user, all_nodes, include_knowledge_points=False)
    kinds = list(vocab.RESOURCE_KINDS)
    rows = []
    units = {u.identifier: u for u in units_of_volume(volume)}

    def counts(node_ids: list[int]) -> dict[str, int]:
        found = defaultdict(set)
        for node_id in node_ids:
            for entry in aligned.get(node_id, []):
                found[entry.resource.kind].add(entry.resource.content_id)
        return {kind: len(found[kind]) for kind in kinds}

    for lesson in lessons:
        points = kps.get(lesson.identifier, [])
        lesson_counts = counts([lesson.id] + [kp.id for kp in points])
        rows.append(
            {
                "node": lesson,
                "unit": units.get(lesson.unit_identifier),
                "counts": lesson_counts,
                "total": sum(lesson_counts.values()),
                "knowledge_points": [
                    {"node": kp, "counts": counts([kp.id]), "total": sum(counts([kp.id]).values())}
                    for kp in points
                ],
            }
        )
    gaps = sum(1 for r in rows if r["total"] == 0)
    maximum = max([c for r in rows for c in r["counts"].values()] + [0])
    return {
        "volume": volume,
        "kinds": kinds,
        "rows": rows,
        "gaps": gaps,
        "max": maximum,
        "lessons": len(rows),
        "covered": len(rows) - gaps,
    }
