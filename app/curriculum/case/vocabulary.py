"""CASE vocabulary of this application: association types, textbook levels, the import report."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.curriculum.models import Level

ASSOCIATION_TYPES = {
    # type: (label, inverse label) in English and Chinese
    "isChildOf": (("Is child of", "Is parent of"), ("从属于", "包含")),
    "precedes": (("Precedes", "Has predecessor"), ("先于", "前置为")),
    "exactMatchOf": (("Exact match of", "Exact match of"), ("等同于", "等同于")),
    "isRelatedTo": (("Is related to", "Is related to"), ("相关于", "相关于")),
    "isPartOf": (("Is part of", "Has part"), ("属于", "包含部分")),
    "replacedBy": (("Replaced by", "Replaces"), ("被替代为", "替代")),
    "isPeerOf": (("Is peer of", "Is peer of"), ("同级于", "同级于")),
    "exemplar": (("Exemplar", "Is exemplar of"), ("示例", "示例于")),
    "hasSkillLevel": (("Has skill level", "Is skill level of"), ("技能等级", "技能等级于")),
}


ACYCLIC_TYPES = ("isChildOf", "precedes")


LEVEL_NAMES = {
    "subject": Level.SUBJECT,
    "学科": Level.SUBJECT,
    "stage": Level.STAGE,
    "school stage": Level.STAGE,
    "学段": Level.STAGE,
    "grade": Level.GRADE,
    "年级": Level.GRADE,
    "edition": Level.EDITION,
    "textbook edition": Level.EDITION,
    "版本": Level.EDITION,
    "volume": Level.VOLUME,
    "册次": Level.VOLUME,
    "册": Level.VOLUME,
    "unit": Level.UNIT,
    "chapter": Level.UNIT,
    "单元": Level.UNIT,
    "章": Level.UNIT,
    "lesson": Level.LESSON,
    "section": Level.LESSON,
    "课时": Level.LESSON,
    "节": Level.LESSON,
    "小节": Level.LESSON,
    "subsection": Level.LESSON,
    "knowledge point": Level.KNOWLEDGE_POINT,
    "knowledgepoint": Level.KNOWLEDGE_POINT,
    "知识点": Level.KNOWLEDGE_POINT,
}


LEVEL_ITEM_TYPES = {
    Level.SUBJECT: "Subject",
    Level.STAGE: "Stage",
    Level.GRADE: "Grade",
    Level.EDITION: "Edition",
    Level.VOLUME: "Volume",
    Level.UNIT: "Unit",
    Level.SECTION: "Section",
    Level.LESSON: "Lesson",
    Level.KNOWLEDGE_POINT: "Knowledge Point",
    Level.OTHER: "Other",
}


_INTEGER = re.compile(r"^\s*[+-]?\d{1,9}\s*$")


def sequence_number(value) -> int | None:
    """An integer field as other CASE tools write it: ``1``, ``"1"`` or ``1.0`` → 1;
    anything else (a word, a list, true) → None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 10**9 else None
    if isinstance(value, float) and value.is_integer() and abs(value) < 10**9:
        return int(value)
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    return None


def level_of(item_type) -> Level:
    if not isinstance(item_type, str):
        return Level.OTHER
    return LEVEL_NAMES.get(item_type.strip().lower(), Level.OTHER)


def association_label(association_type: str, inverse: bool, locale: str | None) -> str:
    labels = ASSOCIATION_TYPES.get(association_type)
    if labels is None:
        return association_type
    pair = labels[0] if (locale or "").startswith("en") else labels[1]
    return pair[1] if inverse else pair[0]


@dataclass
class ImportReport:
    framework_id: int | None = None
    identifier: str = ""
    title: str = ""
    framework: str = "created"  # created | updated | unchanged
    items: dict[str, int] = field(
        default_factory=lambda: {"created": 0, "updated": 0, "deleted": 0}
    )
    associations: dict[str, int] = field(
        default_factory=lambda: {"created": 0, "updated": 0, "deleted": 0}
    )

    def as_dict(self) -> dict:
        return {
            "framework_id": self.framework_id,
            "identifier": self.identifier,
            "title": self.title,
            "framework": self.framework,
            "items": self.items,
            "associations": self.associations,
        }
