"""Field-level difference between what a subscriber has and a release.

Pure functions over manifests (``{content_id: {"type", "version", "digest", "fields"}}``)
so the same code serves local and remote subscriptions, and a 10,000-item diff costs one
dictionary walk (bench/sharing.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Fields whose change gets its own category besides "changed".
_RELICENSED = "licence"
_MOVED = "unit"


@dataclass
class FieldChange:
    name: str
    old: object
    new: object


@dataclass
class ItemChange:
    content_id: str
    item_type: str
    title: str
    old_version: int | None
    new_version: int | None
    # added | removed | changed (changed items may also be relicensed and/or moved)
    status: str
    relicensed: bool = False
    moved: bool = False
    fields: list[FieldChange] = field(default_factory=list)


@dataclass
class Diff:
    added: list[ItemChange] = field(default_factory=list)
    removed: list[ItemChange] = field(default_factory=list)
    changed: list[ItemChange] = field(default_factory=list)

    @property
    def relicensed(self) -> list[ItemChange]:
        return [c for c in self.changed if c.relicensed]

    @property
    def moved(self) -> list[ItemChange]:
        return [c for c in self.changed if c.moved]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def all(self) -> list[ItemChange]:
        return self.added + self.changed + self.removed

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "relicensed": len(self.relicensed),
            "moved": len(self.moved),
        }


def fill_fields(change: ItemChange, old_fields: dict, new_fields: dict) -> None:
    """The field-level part of a change (done only for changed items, so the caller
    can load old fields for those alone)."""
    change.fields = [
        FieldChange(name, old_fields.get(name), value)
        for name, value in new_fields.items()
        if old_fields.get(name) != value
    ]
    change.relicensed = old_fields.get(_RELICENSED) != new_fields.get(_RELICENSED)
    change.moved = old_fields.get(_MOVED) != new_fields.get(_MOVED)


def diff(old: dict, new: dict) -> Diff:
    """``old`` entries may leave out ``fields`` (then ``title`` is required and
    :func:`fill_fields` completes the changed items afterwards)."""
    result = Diff()
    for content_id, entry in new.items():
        before = old.get(content_id)
        if before is None:
            result.added.append(
                ItemChange(
                    content_id,
                    entry["type"],
                    entry["fields"]["title"],
                    None,
                    entry["version"],
                    "added",
                )
            )
            continue
        if before["digest"] == entry["digest"] and before["version"] == entry["version"]:
            continue
        change = ItemChange(
            content_id,
            entry["type"],
            entry["fields"]["title"],
            before["version"],
            entry["version"],
            "changed",
        )
        if before.get("fields") is not None:
            fill_fields(change, before["fields"], entry["fields"])
        result.changed.append(change)
    for content_id, before in old.items():
        if content_id not in new:
            result.removed.append(
                ItemChange(
                    content_id,
                    before["type"],
                    before.get("title") or (before.get("fields") or {}).get("title", ""),
                    before["version"],
                    None,
                    "removed",
                )
            )
    for bucket in (result.added, result.removed, result.changed):
        bucket.sort(key=lambda c: (c.title, c.content_id))
    return result
