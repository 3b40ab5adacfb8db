"""The textbook-tree browser (the national platform's way in): choose school stage,
subject, edition and volume, see the volume's table of contents (chapter → section →
subsection) with how many resources each part has, and the resources of each lesson."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from app.accounts.models import User
from app.catalog import vocab
from app.curriculum.models import Level, Node
from app.curriculum.services.alignment import AlignedResource, aligned_resources
from app.curriculum.services.nodes import get_node, list_volumes
from app.errors import Invalid
from app.extensions import db

# School stage of each grade code (学段).
STAGES = {
    "primary": ("g1", "g2", "g3", "g4", "g5", "g6"),
    "junior": ("g7", "g8", "g9"),
    "senior": ("g10", "g11", "g12"),
}


def stage_of(grade: str | None) -> str | None:
    return next((stage for stage, grades in STAGES.items() if grade in grades), None)


@dataclass
class VolumeChoice:
    """What the selectors offer, narrowed by what is already chosen."""

    stages: list[str]
    subjects: list[str]
    editions: list[str]
    volumes: list[Node]
    stage: str | None
    subject: str | None
    edition: str | None
    volume: Node | None


def _in_vocabulary_order(values, vocabulary) -> list[str]:
    """The distinct non-empty ``values`` in the vocabulary's order, any it does not
    know after them alphabetically."""
    known = list(vocabulary)
    return sorted(
        dict.fromkeys(v for v in values if v),
        key=lambda v: (known.index(v) if v in known else len(known), v),
    )


def _offered(choice: str | None, options: list[str]) -> str | None:
    """``choice`` when it is among the options, else the first option (None: none)."""
    return choice if choice in options else (options[0] if options else None)


def choose_volume(
    stage: str | None = None,
    subject: str | None = None,
    edition: str | None = None,
    volume_id: int | None = None,
) -> VolumeChoice:
    """The options of each selector given the choices above it; the first option is
    taken where nothing (or something no longer offered) is chosen, so the page always
    shows a volume when there is one."""
    every = list_volumes()
    if volume_id is not None:
        chosen = next((v for v in every if v.id == volume_id), None)
        if chosen is not None:
            stage, subject, edition = stage_of(chosen.grade), chosen.subject, chosen.edition
    stages = [s for s in STAGES if any(stage_of(v.grade) == s for v in every)]
    stage = _offered(stage, stages)
    in_stage = [v for v in every if stage_of(v.grade) == stage]
    subjects = _in_vocabulary_order((v.subject for v in in_stage), vocab.SUBJECTS)
    subject = _offered(subject, subjects)
    in_subject = [v for v in in_stage if v.subject == subject]
    # In the vocabulary's order (人教版 first, as schools expect), not alphabetical.
    editions = _in_vocabulary_order((v.edition for v in in_subject), vocab.EDITIONS)
    edition = _offered(edition, editions)
    volumes = [v for v in in_subject if v.edition == edition]
    volume = next((v for v in volumes if v.id == volume_id), volumes[0] if volumes else None)
    return VolumeChoice(stages, subjects, editions, volumes, stage, subject, edition, volume)


@dataclass
class TocEntry:
    """One part of a volume's table of contents with the distinct published resources
    the reader may see under it (its own, its lessons', their knowledge points' and
    those of equivalent lessons of other editions)."""

    node: Node
    children: list[TocEntry] = field(default_factory=list)
    count: int = 0
    resources: list[AlignedResource] = field(default_factory=list)  # aligned to the node

    @property
    def lessons(self) -> list[TocEntry]:
        """The leaves under this entry (itself when it has no children), in order."""
        if not self.children:
            return [self]
        return [leaf for child in self.children for leaf in child.lessons]


def volume_contents(user: User | None, volume: Node) -> list[TocEntry]:
    """The table of contents of ``volume`` (every level between the volume and the
    knowledge points), each entry with its resources and the count of its subtree."""
    if volume.level != Level.VOLUME:
        raise Invalid("Choose a volume.", fields={"volume": ["Not a volume."]})
    nodes = list(
        db.session.execute(
            select(Node)
            .where(
                Node.volume_identifier == volume.identifier,
                Node.level != Level.KNOWLEDGE_POINT,
                Node.level != Level.VOLUME,
            )
            .order_by(Node.depth, Node.position, Node.seq)
        ).scalars()
    )
    aligned = aligned_resources(user, nodes)
    entries = {n.identifier: TocEntry(n, resources=aligned.get(n.id, [])) for n in nodes}
    roots: list[TocEntry] = []
    for node in nodes:
        parent = entries.get(node.parent_identifier)
        (parent.children if parent is not None else roots).append(entries[node.identifier])

    def count(entry: TocEntry) -> set[str]:
        found = {e.resource.content_id for e in entry.resources}
        for child in entry.children:
            found |= count(child)
        entry.count = len(found)
        return found

    for root in roots:
        count(root)
    return roots


def find_entry(entries: list[TocEntry], node_id: int | None) -> TocEntry | None:
    for entry in entries:
        if entry.node.id == node_id:
            return entry
        found = find_entry(entry.children, node_id)
        if found is not None:
            return found
    return None


def chapter_content_ids(user: User | None, node_id: int) -> set[str]:
    """Content ids of the published resources ``user`` may see under a chapter, section
    or lesson (with its knowledge points and equivalent lessons): what the catalog's and
    search's chapter filter keeps."""
    node = get_node(node_id)
    if node.level in (Level.VOLUME, Level.KNOWLEDGE_POINT):
        parts = [node]
    else:
        parts = [node] + _descendants(node)
    aligned = aligned_resources(user, parts)
    return {e.resource.content_id for entries in aligned.values() for e in entries}


def _descendants(node: Node) -> list[Node]:
    out: list[Node] = []
    frontier = [node.identifier]
    for _ in range(10):  # a table of contents is a few levels deep
        if not frontier:
            break
        children = list(
            db.session.execute(
                select(Node).where(
                    Node.parent_identifier.in_(frontier), Node.level != Level.KNOWLEDGE_POINT
                )
            ).scalars()
        )
        out.extend(children)
        frontier = [c.identifier for c in children]
    return out


def edition_content_ids(user: User | None, edition: str, subject: str | None = None) -> set[str]:
    """Content ids of the published resources ``user`` may see aligned to a lesson,
    unit or knowledge point of ``edition`` (directly or through an equivalent lesson)."""
    statement = select(Node).where(
        Node.edition == edition, Node.level.in_([Level.UNIT, Level.LESSON])
    )
    if subject:
        statement = statement.where(Node.subject == subject)
    nodes = list(db.session.execute(statement).scalars())
    aligned = aligned_resources(user, nodes)
    return {e.resource.content_id for entries in aligned.values() for e in entries}


def chapters_of(volume_id: int | None = None, edition: str | None = None) -> list[Node]:
    """The chapters (units) a chapter filter offers: those of one volume, or of every
    volume of an edition, in textbook order."""
    statement = select(Node).where(Node.level == Level.UNIT)
    if volume_id is not None:
        statement = statement.where(Node.volume_identifier == get_node(volume_id).identifier)
    if edition:
        statement = statement.where(Node.edition == edition)
    return list(
        db.session.execute(
            statement.order_by(Node.edition, Node.volume_identifier, Node.position, Node.seq)
        ).scalars()
    )


def toc_counts(entries: list[TocEntry]) -> dict[int, int]:
    out: dict[int, int] = defaultdict(int)
    for entry in entries:
        out[entry.node.id] = entry.count
        out.update(toc_counts(entry.children))
    return dict(out)
