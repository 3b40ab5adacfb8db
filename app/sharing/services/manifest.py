"""What a release says about each item: shared fields, their hash, the licence check.

The fields are the ones a subscriber's diff shows.  ``unit`` is where a resource sits
in the catalog's courses ("course title / section title"), so a resource moved between
units shows as *moved*.  Hashes are SHA-256 of canonical JSON (sorted keys, no spaces),
the same bytes on both instances, so a feed's item hash can be re-computed and checked.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from sqlalchemy import select

from app.catalog.models import Course, CourseSection, Resource, SectionItem, State, Visibility
from app.extensions import db

CONTENT_ID = re.compile(r"^[0-9A-Za-z-]{1,36}$")
DIGEST = re.compile(r"^[0-9a-f]{64}$")
ITEM_TYPES = ("course", "resource")
# Every field of a manifest entry's ``fields``, with its JSON type (feeds are checked
# against this: an unknown or mistyped field refuses the whole release).
FIELD_TYPES: dict[str, type | tuple] = {
    "title": str,
    "summary": str,
    "kind": str,
    "subject": str,
    "grades": list,
    "edition": str,
    "tags": list,
    "licence": str,
    "language": str,
    "unit": str,
    "publisher": str,
    "url": str,
}
# Licences under which content may leave its owner's district.
SHAREABLE_LICENCES = {
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "CC-BY-NC-4.0",
    "CC-BY-NC-SA-4.0",
    "CC-BY-ND-4.0",
    "CC-BY-NC-ND-4.0",
    "CC0-1.0",
}


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def digest_of(value) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


@dataclass(frozen=True)
class Refusal:
    """An item that cannot go out, and why (``reason`` is a code; ``message`` English,
    translated on the page)."""

    item_type: str
    content_id: str
    title: str
    reason: str
    message: str


REFUSAL_MESSAGES = {
    "not_published": "It is not published.",
    "all_rights_reserved": "Its licence reserves all rights, so it cannot be shared.",
    "private": "Its owner keeps it private.",
    "other_owner": "It belongs to another district that does not share it region-wide.",
    "unknown_licence": "Its licence is not one that allows sharing.",
}


def _unit_map(course_ids: list[str]) -> dict[str, str]:
    """resource content id → "course / section" for the published courses given."""
    if not course_ids:
        return {}
    rows = db.session.execute(
        select(SectionItem.resource_content_id, Course.title, CourseSection.title)
        .join(CourseSection, SectionItem.section_id == CourseSection.id)
        .join(Course, CourseSection.course_id == Course.id)
        .where(Course.content_id.in_(course_ids), Course.state == State.PUBLISHED)
        .order_by(Course.title, CourseSection.position, SectionItem.position)
    )
    units: dict[str, str] = {}
    for resource_id, course_title, section_title in rows:
        if resource_id and resource_id not in units:
            units[resource_id] = f"{course_title} / {section_title}"
    return units


def item_fields(obj, publisher: str, unit: str = "") -> dict:
    is_course = isinstance(obj, Course)
    return {
        "title": obj.title,
        "summary": obj.summary or "",
        "kind": obj.kind,
        "subject": obj.subject or "",
        "grades": ([obj.grade] if obj.grade else []) if is_course else list(obj.grades),
        "edition": (obj.edition or "") if is_course else "",
        "tags": [tag.name for tag in obj.tags],
        "licence": obj.licence,
        "language": obj.language or "",
        "unit": unit,
        "publisher": publisher,
        "url": f"/{'courses' if is_course else 'resources'}/{obj.content_id}",
    }


def refusal_reason(obj, catalog_district_id: int) -> str | None:
    if obj.state != State.PUBLISHED:
        return "not_published"
    if obj.licence == "ARR":
        return "all_rights_reserved"
    if obj.licence not in SHAREABLE_LICENCES:
        return "unknown_licence"
    if obj.visibility == Visibility.PRIVATE:
        return "private"
    if obj.district_id != catalog_district_id and obj.visibility != Visibility.REGION:
        return "other_owner"
    return None


def entry(obj, publisher: str, unit: str = "") -> dict:
    fields = item_fields(obj, publisher, unit)
    return {
        "type": "course" if isinstance(obj, Course) else "resource",
        "version": obj.version,
        "digest": digest_of(fields),
        "fields": fields,
    }


def build(objects: list, catalog_district_id: int, publisher: str) -> tuple[dict, list[Refusal]]:
    """The manifest of ``objects`` (published rows) and the ones refused."""
    course_ids = [o.content_id for o in objects if isinstance(o, Course)]
    units = _unit_map(course_ids)
    manifest: dict[str, dict] = {}
    refused: list[Refusal] = []
    for obj in objects:
        reason = refusal_reason(obj, catalog_district_id)
        item_type = "course" if isinstance(obj, Course) else "resource"
        if reason:
            refused.append(
                Refusal(item_type, obj.content_id, obj.title, reason, REFUSAL_MESSAGES[reason])
            )
            continue
        unit = "" if isinstance(obj, Course) else units.get(obj.content_id, "")
        manifest[obj.content_id] = entry(obj, publisher, unit)
    return manifest, refused


def check_entry(content_id, value) -> str | None:
    """Why a manifest entry from outside is unacceptable (None when it is fine)."""
    if not isinstance(content_id, str) or not CONTENT_ID.match(content_id):
        return "bad content id"
    if not isinstance(value, dict) or set(value) != {"type", "version", "digest", "fields"}:
        return "entry must have exactly type, version, digest and fields"
    if value["type"] not in ITEM_TYPES:
        return "unknown item type"
    version = value["version"]
    if not isinstance(version, int) or isinstance(version, bool) or not 0 < version < 2**31:
        return "bad version"
    if not isinstance(value["digest"], str) or not DIGEST.match(value["digest"]):
        return "bad digest"
    fields = value["fields"]
    if not isinstance(fields, dict) or set(fields) != set(FIELD_TYPES):
        return "unknown or missing fields"
    for name, kind in FIELD_TYPES.items():
        field = fields[name]
        if not isinstance(field, kind):
            return f"field {name} has the wrong type"
        if kind is list and not all(isinstance(v, str) and len(v) <= 100 for v in field):
            return f"field {name} must be a list of short strings"
        if kind is str and len(field) > 2000:
            return f"field {name} is too long"
    if digest_of(fields) != value["digest"]:
        return "hash mismatch"
    return None


def matches(fields: dict, filters: dict | None) -> bool:
    """Does an item fall within a subscription's filters (every listed facet matches)?"""
    if not filters:
        return True
    for facet, accepted in filters.items():
        if not accepted:
            continue
        if facet == "type":
            continue  # checked by the caller, which knows the entry's type
        value = fields.get({"grade": "grades", "tag": "tags"}.get(facet, facet))
        values = value if isinstance(value, list) else [value]
        if not set(values) & set(accepted):
            return False
    return True


def filtered(manifest: dict, filters: dict | None) -> dict:
    types = (filters or {}).get("type")
    return {
        cid: e
        for cid, e in manifest.items()
        if (not types or e["type"] in types) and matches(e["fields"], filters)
    }


def load_objects(rules: dict | None, entries: list[tuple[str, str]], district_id: int) -> list:
    """Published rows of a catalog: hand-picked entries plus rule matches (its district's
    content, each listed facet matching); hand-picked rows of any state are returned so
    the licence check can name what is not published."""
    from app.catalog.models import Tag, course_tags, resource_tags

    objects: dict[tuple[str, str], object] = {}
    for model, item_type in ((Course, "course"), (Resource, "resource")):
        picked = [cid for t, cid in entries if t == item_type]
        if picked:
            rows = db.session.execute(
                select(model)
                .where(model.content_id.in_(picked))
                .order_by(model.content_id, model.version)
            ).scalars()
            for row in rows:
                key = (item_type, row.content_id)
                current = objects.get(key)
                # The published row wins; else the newest, so the refusal names it.
                if current is None or current.state != State.PUBLISHED:
                    objects[key] = row
        if not rules:
            continue
        types = rules.get("type")
        if types and item_type not in types:
            continue
        statement = select(model).where(
            model.state == State.PUBLISHED, model.district_id == district_id
        )
        if rules.get("kind"):
            statement = statement.where(model.kind.in_(rules["kind"]))
        if rules.get("subject"):
            statement = statement.where(model.subject.in_(rules["subject"]))
        if rules.get("edition"):
            if model is Resource:
                continue
            statement = statement.where(Course.edition.in_(rules["edition"]))
        if rules.get("grade"):
            if model is Course:
                statement = statement.where(Course.grade.in_(rules["grade"]))
            else:
                from app.catalog.models import ResourceGrade

                statement = statement.where(
                    Resource.id.in_(
                        select(ResourceGrade.resource_id).where(
                            ResourceGrade.grade.in_(rules["grade"])
                        )
                    )
                )
        if rules.get("tag"):
            link = course_tags if model is Course else resource_tags
            owner = link.c.course_id if model is Course else link.c.resource_id
            statement = statement.where(
                model.id.in_(
                    select(owner)
                    .join(Tag, Tag.id == link.c.tag_id)
                    .where(Tag.name.in_(rules["tag"]))
                )
            )
        for row in db.session.execute(statement).scalars():
            objects.setdefault((item_type, row.content_id), row)
    return list(objects.values())
