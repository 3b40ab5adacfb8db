"""Reading the curriculum tree: nodes, ancestors, volumes, knowledge points, equivalents."""

from __future__ import annotations

from collections import defaultdict
from functools import cache

from sqlalchemy import and_, bindparam, literal, or_, select, union_all
from sqlalchemy import case as when

from app.catalog import vocab
from app.curriculum import case
from app.curriculum.models import (
    Association,
    Framework,
    Level,
    Node,
)
from app.errors import NotFound
from app.extensions import db


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


def knowledge_point_pairs(identifiers):
    """A subquery of ``(kp, mine, link)``: the knowledge points under each node of
    ``identifiers`` (``link`` 0) or linked to it by isPartOf/isRelatedTo in either
    direction (``link`` 1).  ``identifiers`` is a list, or an expanding bind parameter
    for a statement built once (the recommender's)."""
    # One statement ("this week" asks for every lesson of the week at once): a UNION
    # ALL whose parts each use an index (an OR across both columns would scan the table).
    kinds = ["isPartOf", "isRelatedTo"]
    forward = select(
        Association.destination_identifier.label("kp"), Association.origin_identifier.label("mine")
    ).where(Association.association_type.in_(kinds), Association.origin_identifier.in_(identifiers))
    backward = select(
        Association.origin_identifier.label("kp"), Association.destination_identifier.label("mine")
    ).where(
        Association.association_type.in_(kinds), Association.destination_identifier.in_(identifiers)
    )
    children = select(
        Node.identifier.label("kp"), Node.parent_identifier.label("mine"), literal(0).label("link")
    ).where(Node.parent_identifier.in_(identifiers), Node.level == Level.KNOWLEDGE_POINT)
    return union_all(
        children,
        select(forward.subquery(), literal(1).label("link")),
        select(backward.subquery(), literal(1).label("link")),
    ).subquery()


def knowledge_points_of(nodes: list[Node]) -> dict[str, list[Node]]:
    """Knowledge points under each node (children) or linked to it by isPartOf/isRelatedTo."""
    identifiers = [n.identifier for n in nodes]
    result: dict[str, list[Node]] = defaultdict(list)
    if not identifiers:
        return result
    pairs = knowledge_point_pairs(identifiers)
    rows = db.session.execute(
        select(Node, pairs.c.mine, pairs.c.link)
        .join(pairs, pairs.c.kp == Node.identifier)
        .where(Node.level == Level.KNOWLEDGE_POINT)
        .order_by(pairs.c.link, Node.position, Node.seq)
    ).all()
    for kp, mine, link in rows:
        if not link:
            result[mine].append(kp)
    linked = [(kp, mine) for kp, mine, link in rows if link]
    wanted = set(identifiers)
    for kp, mine in linked:
        if mine in wanted and kp not in result[mine]:
            result[mine].append(kp)
    return result


EQUIVALENT_HOPS = 3  # exactMatchOf links followed from a node, in either direction


def equivalents(identifiers: set[str]) -> dict[str, set[str]]:
    """For each identifier, the identifiers linked to it by exactMatchOf (both ways,
    transitively, up to ``EQUIVALENT_HOPS`` links away), itself included.

    One recursive statement (it was one statement per hop): "this week" asks for every
    lesson and knowledge point of the week at once."""
    result = {i: {i} for i in identifiers}
    if not identifiers:
        return result
    rows = db.session.execute(_equivalents_statement(), {"identifiers": sorted(identifiers)})
    for first, other in rows:
        result[first].add(other)
    return result


@cache
def _equivalents_statement():
    """:func:`equivalents`' statement, built once per process: the identifiers are the
    expanding bind parameter ``identifiers`` (building the recursive statement anew was
    most of the call's client time: issue 14, seventh round)."""
    identifiers = bindparam("identifiers", expanding=True)
    exact = Association.association_type == "exactMatchOf"
    origin, destination = Association.origin_identifier, Association.destination_identifier
    first_links = union_all(  # each part on its own index
        select(origin.label("start"), destination.label("other"), literal(1).label("hops")).where(
            exact, origin.in_(identifiers)
        ),
        select(destination, origin, literal(1)).where(exact, destination.in_(identifiers)),
    ).subquery()
    reach = select(first_links).cte("reach", recursive=True)
    # Each step joins the links of the rows found so far, in either direction: an OR of
    # the two indexed columns, which PostgreSQL reads with one index probe per row
    # (joining a UNION ALL of both directions instead made it hash every exactMatchOf
    # link of the database at each step: 96 ms at the benchmark's size).
    reach = reach.union(
        select(
            reach.c.start,
            when((origin == reach.c.other, destination), else_=origin),
            reach.c.hops + 1,
        )
        .join(Association, and_(exact, or_(origin == reach.c.other, destination == reach.c.other)))
        .where(reach.c.hops < EQUIVALENT_HOPS)
    )
    return select(reach.c.start, reach.c.other)


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
        # An end in no stored framework is an external reference: its title and uri are
        # those the package gave.
        reference = (row.raw or {}).get("originNodeURI" if inverse else "destinationNodeURI")
        reference = reference if isinstance(reference, dict) else {}
        other = nodes.get(other_identifier)
        out.append(
            {
                "identifier": row.identifier,
                "type": row.association_type,
                "inverse": inverse,
                "label": case.association_label(row.association_type, inverse, locale),
                "other_identifier": other_identifier,
                "other": other,
                "other_title": reference.get("title"),
                "other_uri": reference.get("uri"),
                "external": other is None,
            }
        )
    return out


def volume_title(volume: Node) -> str:
    parts = [
        vocab.label("grade", volume.grade),
        vocab.label("subject", volume.subject),
        vocab.label("edition", volume.edition),
        volume.title,
    ]
    return " ".join(p for p in parts if p)[:200]
