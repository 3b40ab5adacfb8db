"""How well a volume's lessons are covered by published resources."""

from __future__ import annotations

from collections import defaultdict

from app.accounts.models import User
from app.catalog import vocab
from app.curriculum.models import (
    Level,
)
from app.curriculum.services.alignment import aligned_resources
from app.curriculum.services.nodes import (
    get_node,
    knowledge_points_of,
    lessons_of_volume,
    units_of_volume,
)
from app.errors import Invalid


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
