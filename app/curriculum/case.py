"""1EdTech CASE 1.0 packages (CFPackage JSON): validation, import and export.

Import is all-or-nothing: the whole package is checked first and every problem is
reported (with where it is and which identifier it concerns); only a clean package is
written, in the caller's one transaction.  A package whose CFDocument identifier is
already stored updates that framework in place: items and associations are matched by
identifier, new ones are added and those missing from the new version are removed.

Every object keeps the JSON it came in, so exporting gives back the same document.

Conventions of this application on top of CASE (documented in docs/curriculum.md):
``CFItemType`` names the textbook level (Subject, Stage, Grade, Edition, Volume, Unit,
Lesson, Knowledge Point, or 学科/学段/年级/版本/册次/单元/课时/知识点), ``humanCodingScheme``
carries the vocabulary code of subject, grade and edition nodes (``math``, ``g7``,
``pep``) and ``alternativeLabel`` the English title.
"""

from __future__ import annotations

import enum
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import JSON, bindparam, delete, select

from app.catalog import vocab
from app.common.models import utcnow
from app.curriculum.models import Association, Framework, Level, Node
from app.errors import Conflict, Invalid
from app.extensions import db

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
    Level.LESSON: "Lesson",
    Level.KNOWLEDGE_POINT: "Knowledge Point",
    Level.OTHER: "Other",
}

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
MAX_ITEMS = 200_000
MAX_ASSOCIATIONS = 500_000
CHUNK = 900


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


class _Problems:
    def __init__(self):
        self.fields: dict[str, list[str]] = {}
        self.count = 0

    def add(self, where: str, message: str) -> None:
        self.count += 1
        self.fields.setdefault(where, []).append(message)

    def raise_if_any(self) -> None:
        if self.count:
            raise Invalid(
                f"The CASE package was rejected with {self.count} problem(s); "
                "nothing was imported.",
                fields=self.fields,
                code="case_rejected",
            )


def _is_str(value, required=True) -> bool:
    if value is None:
        return not required
    return isinstance(value, str) and (not required or value.strip() != "")


def _is_web_uri(value) -> bool:
    return (
        isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) < 2000
    )


def _is_link(value) -> bool:
    """A CASE LinkURI: an object whose title, identifier and uri are strings if present."""
    return isinstance(value, dict) and all(
        _is_str(value.get(key), required=False) for key in ("title", "identifier", "uri")
    )


def _check_identifier(value, where: str, problems: _Problems) -> bool:
    if not isinstance(value, str) or not UUID_RE.match(value):
        problems.add(where, f"identifier must be a UUID string, got {value!r:.80}.")
        return False
    return True


def _check_uri_ref(value, where: str, problems: _Problems) -> str | None:
    if not isinstance(value, dict):
        problems.add(where, "must be an object with title, identifier and uri.")
        return None
    if not _check_identifier(value.get("identifier"), f"{where}.identifier", problems):
        return None
    for key in ("title", "uri"):
        if key in value and not _is_str(value[key], required=False):
            problems.add(f"{where}.{key}", "must be a string.")
    return value["identifier"].lower()


_ITEM_STRINGS = ("fullStatement",)
_ITEM_OPTIONAL_STRINGS = (
    "uri",
    "CFItemType",
    "humanCodingScheme",
    "listEnumeration",
    "abbreviatedStatement",
    "alternativeLabel",
    "notes",
    "language",
    "lastChangeDateTime",
    "statusStartDate",
    "statusEndDate",
)
# CASE 1.0 writes these as LinkURI objects ({title, identifier, uri}); older tools as strings.
_ITEM_OPTIONAL_LINKS = ("licenseURI", "CFItemTypeURI", "conceptKeywordsURI")
_MAX_LENGTHS = {"humanCodingScheme": 100, "lastChangeDateTime": 40}
_ITEM_OPTIONAL_LISTS = ("educationLevel", "conceptKeywords")


def _storable_problem(package: dict) -> str | None:
    """Why ``package`` cannot be stored and served back as JSON, if it cannot (NaN,
    NUL characters, lone surrogates, absurd nesting)."""
    try:
        encoded = json.dumps(package, ensure_ascii=False, allow_nan=False)
        encoded.encode("utf-8")
    except ValueError:
        return "Numbers must be finite (no NaN or Infinity)."
    except UnicodeEncodeError:
        return "Text must be valid Unicode (no lone surrogates)."
    except RecursionError:
        return "The package is nested too deeply."
    if "\\u0000" in encoded or "\x00" in encoded:
        return "Text must not contain NUL characters."
    return None


def validate_package(package) -> None:
    """Raise :class:`Invalid` naming every problem of ``package`` (shape, types,
    duplicate identifiers, unknown association types, dangling references, cycles)."""
    problems = _Problems()
    if not isinstance(package, dict):
        problems.add("package", "A CFPackage must be a JSON object.")
        problems.raise_if_any()
    storable = _storable_problem(package)
    if storable:
        problems.add("package", storable)
        problems.raise_if_any()
    document = package.get("CFDocument")
    items = package.get("CFItems", [])
    associations = package.get("CFAssociations", [])
    if not isinstance(document, dict):
        problems.add("CFDocument", "CFDocument is required and must be an object.")
        document = {}
    if not isinstance(items, list):
        problems.add("CFItems", "CFItems must be a list.")
        items = []
    if not isinstance(associations, list):
        problems.add("CFAssociations", "CFAssociations must be a list.")
        associations = []
    if len(items) > MAX_ITEMS or len(associations) > MAX_ASSOCIATIONS:
        problems.add("package", f"At most {MAX_ITEMS} items and {MAX_ASSOCIATIONS} associations.")
        problems.raise_if_any()

    doc_id = None
    if document:
        if _check_identifier(document.get("identifier"), "CFDocument.identifier", problems):
            doc_id = document["identifier"].lower()
        for key in ("title", "creator"):
            if not _is_str(document.get(key)):
                problems.add(
                    f"CFDocument.{key}", f"{key} is required and must be a non-empty string."
                )
        for key in (
            "lastChangeDateTime",
            "version",
            "uri",
            "description",
            "language",
            "adoptionStatus",
        ):
            if key in document and not _is_str(document[key], required=False):
                problems.add(f"CFDocument.{key}", "must be a string.")
        for key, limit in (("lastChangeDateTime", 40), ("version", 100)):
            if isinstance(document.get(key), str) and len(document[key]) > limit:
                problems.add(f"CFDocument.{key}", f"at most {limit} characters.")
        if "subject" in document and not (
            isinstance(document["subject"], list)
            and all(isinstance(s, str) for s in document["subject"])
        ):
            problems.add("CFDocument.subject", "must be a list of strings.")

    seen: dict[str, str] = {}
    if doc_id:
        seen[doc_id] = "CFDocument"
    item_ids: set[str] = set()
    for index, item in enumerate(items):
        where = f"CFItems[{index}]"
        if not isinstance(item, dict):
            problems.add(where, "must be an object.")
            continue
        if not _check_identifier(item.get("identifier"), f"{where}.identifier", problems):
            continue
        identifier = item["identifier"].lower()
        if identifier in seen:
            problems.add(
                f"{where}.identifier",
                f"duplicate identifier {identifier} (also {seen[identifier]}).",
            )
        else:
            seen[identifier] = where
            item_ids.add(identifier)
        for key in _ITEM_STRINGS:
            if not _is_str(item.get(key)):
                problems.add(
                    f"{where}.{key}",
                    f"{key} is required and must be a non-empty string ({identifier}).",
                )
        for key in _ITEM_OPTIONAL_STRINGS:
            if key in item and not _is_str(item[key], required=False):
                problems.add(f"{where}.{key}", f"must be a string ({identifier}).")
        for key in _ITEM_OPTIONAL_LINKS:
            if key in item and not (_is_str(item[key], required=False) or _is_link(item[key])):
                problems.add(
                    f"{where}.{key}", f"must be a string or a LinkURI object ({identifier})."
                )
        for key, limit in _MAX_LENGTHS.items():
            if isinstance(item.get(key), str) and len(item[key]) > limit:
                problems.add(f"{where}.{key}", f"at most {limit} characters ({identifier}).")
        for key in _ITEM_OPTIONAL_LISTS:
            if key in item and not (
                isinstance(item[key], list) and all(isinstance(v, str) for v in item[key])
            ):
                problems.add(f"{where}.{key}", f"must be a list of strings ({identifier}).")

    edges: dict[str, list[tuple[str, str, str]]] = {t: [] for t in ACYCLIC_TYPES}
    references: list[tuple[str, str, str]] = []
    for index, association in enumerate(associations):
        where = f"CFAssociations[{index}]"
        if not isinstance(association, dict):
            problems.add(where, "must be an object.")
            continue
        if not _check_identifier(association.get("identifier"), f"{where}.identifier", problems):
            continue
        identifier = association["identifier"].lower()
        if identifier in seen:
            problems.add(
                f"{where}.identifier",
                f"duplicate identifier {identifier} (also {seen[identifier]}).",
            )
        else:
            seen[identifier] = where
        kind = association.get("associationType")
        if not isinstance(kind, str):
            problems.add(
                f"{where}.associationType", f"associationType must be a string ({identifier})."
            )
        elif kind not in ASSOCIATION_TYPES:
            problems.add(
                f"{where}.associationType", f"unknown association type {kind!r} ({identifier})."
            )
        if association.get("sequenceNumber") is not None and (
            sequence_number(association["sequenceNumber"]) is None
        ):
            problems.add(f"{where}.sequenceNumber", f"must be an integer ({identifier}).")
        origin = _check_uri_ref(
            association.get("originNodeURI"), f"{where}.originNodeURI", problems
        )
        destination = _check_uri_ref(
            association.get("destinationNodeURI"), f"{where}.destinationNodeURI", problems
        )
        ends = []
        if origin:
            ends.append((origin, "originNodeURI"))
        if destination and destination != doc_id:
            ends.append((destination, "destinationNodeURI"))
        for ref, end in ends:
            # Another tool's package may link to a standard of another framework (an
            # exactMatchOf to a national standard): kept as an external reference when it
            # says where that item lives (an http(s) uri), never for the tree (isChildOf).
            external_ok = (
                kind != "isChildOf"
                and _is_web_uri(association[end].get("uri"))
                and any(other in item_ids for other, e in ends if e != end)
            )
            references.append((ref, f"{where}.{end}", identifier, external_ok))
        if origin and destination and kind in edges:
            edges[kind].append((origin, destination, where))

    # Identifiers outside the package must already be stored (another framework) or be
    # external references with their uri.
    outside = {ref for ref, _, _, _ in references if ref not in item_ids}
    known = _stored_identifiers(outside)
    for ref, where, identifier, external_ok in references:
        if ref not in item_ids and ref not in known and not external_ok:
            problems.add(
                where,
                f"dangling reference to {ref}: no such item in the package or the database, "
                f"and no http(s) uri saying where it is ({identifier}).",
            )

    # Identifiers of this package may not belong to another stored framework.
    if doc_id:
        taken = _identifiers_of_other_frameworks(
            list(item_ids), Node, doc_id
        ) | _identifiers_of_other_frameworks(
            [i for i, w in seen.items() if w.startswith("CFAssociations")], Association, doc_id
        )
        for identifier in sorted(taken):
            problems.add(
                seen[identifier] + ".identifier",
                f"duplicate identifier {identifier}: it belongs to another framework.",
            )
        other_doc = db.session.execute(
            select(Node.identifier).where(Node.identifier == doc_id)
        ).first()
        if other_doc:
            problems.add(
                "CFDocument.identifier", f"duplicate identifier {doc_id}: it is an item elsewhere."
            )

    for kind, kind_edges in edges.items():
        for cycle in _cycles(kind_edges):
            problems.add(cycle[1], f"{kind} cycle: {' -> '.join(cycle[0])}.")
    problems.raise_if_any()


def _chunks(values: list, size: int = CHUNK):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _lookup(column, values: list[str], *conditions) -> set[str]:
    """Which of ``values`` are in ``column`` (one array parameter on PostgreSQL,
    chunked IN lists elsewhere)."""
    if not values:
        return set()
    if _postgres():
        from sqlalchemy import String, any_
        from sqlalchemy.dialects.postgresql import ARRAY

        statement = select(column).where(
            column == any_(bindparam("values", type_=ARRAY(String))), *conditions
        )
        return set(db.session.execute(statement, {"values": values}).scalars())
    statement = select(column).where(column.in_(bindparam("values", expanding=True)), *conditions)
    found: set[str] = set()
    for chunk in _chunks(values):
        found.update(db.session.execute(statement, {"values": chunk}).scalars())
    return found


def _stored_identifiers(identifiers: set[str]) -> set[str]:
    values = list(identifiers)
    return _lookup(Node.identifier, values) | _lookup(Framework.identifier, values)


def _identifiers_of_other_frameworks(identifiers: list[str], model, doc_id: str) -> set[str]:
    framework = db.session.execute(
        select(Framework.id).where(Framework.identifier == doc_id)
    ).scalar()
    conditions = [model.framework_id != framework] if framework is not None else []
    return _lookup(model.identifier, identifiers, *conditions)


def _cycles(edges: list[tuple[str, str, str]]) -> list[tuple[list[str], str]]:
    """Each cycle once, as its node path and the association that closes it."""
    graph: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for origin, destination, where in edges:
        graph[origin].append((destination, where))
    state: dict[str, int] = {}
    found = []
    for start in list(graph):
        if state.get(start):
            continue
        stack = [(start, iter(graph[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            advanced = False
            for child, where in children:
                if state.get(child) == 1:
                    cycle = path[path.index(child) :] + [child]
                    found.append((cycle, where))
                elif not state.get(child):
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(graph.get(child, ()))))
                    advanced = True
                    break
            if not advanced:
                state[node] = 2
                stack.pop()
                path.pop()
    return found


# --- derived tree columns ---------------------------------------------------------------


def _grade_code(item: dict, level: Level) -> str | None:
    code = item.get("humanCodingScheme")
    if level == Level.GRADE:
        if code in vocab.GRADES:
            return code
        for value in item.get("educationLevel") or []:
            if value.isdigit() and f"g{int(value)}" in vocab.GRADES:
                return f"g{int(value)}"
    return None


def derive(items: list[dict], associations: list[dict]) -> dict[str, dict]:
    """Tree columns for every item: parent, position, depth, level, inherited subject,
    grade and edition, the volume and unit above it and lesson order in the volume."""
    by_id = {item["identifier"].lower(): item for item in items}
    seq = {identifier: index for index, identifier in enumerate(by_id)}
    parent_link: dict[str, tuple] = {}
    for index, association in enumerate(associations):
        if association.get("associationType") != "isChildOf":
            continue
        child = association["originNodeURI"]["identifier"].lower()
        parent = association["destinationNodeURI"]["identifier"].lower()
        if child not in by_id:
            continue
        number = sequence_number(association.get("sequenceNumber"))
        key = (number if number is not None else 10**9, index)
        if child not in parent_link or key < parent_link[child][0]:
            parent_link[child] = (key, parent if parent in by_id else None)
    children: dict[str | None, list[str]] = defaultdict(list)
    for identifier in by_id:
        link = parent_link.get(identifier)
        children[link[1] if link else None].append(identifier)
    for siblings in children.values():
        siblings.sort(key=lambda i: (parent_link[i][0] if i in parent_link else (10**9, 0), seq[i]))

    result: dict[str, dict] = {}
    lesson_counter: dict[str, int] = defaultdict(int)
    stack = [(identifier, None, 0, {}) for identifier in reversed(children[None])]
    positions = {i: p for siblings in children.values() for p, i in enumerate(siblings)}
    while stack:
        identifier, parent, depth, inherited = stack.pop()
        item = by_id[identifier]
        level = level_of(item.get("CFItemType"))
        here = dict(inherited)
        code = item.get("humanCodingScheme")
        if level == Level.SUBJECT and code:
            here["subject"] = code
        elif level == Level.GRADE:
            here["grade"] = _grade_code(item, level) or here.get("grade")
        elif level == Level.EDITION and code:
            here["edition"] = code
        elif level == Level.VOLUME:
            here["volume"] = identifier
        elif level == Level.UNIT:
            here["unit"] = identifier
        order = None
        if level == Level.LESSON and here.get("volume"):
            lesson_counter[here["volume"]] += 1
            order = lesson_counter[here["volume"]]
        result[identifier] = {
            "parent_identifier": parent,
            "position": positions.get(identifier, 0),
            "depth": depth,
            "level": level,
            "subject": here.get("subject"),
            "grade": here.get("grade"),
            "edition": here.get("edition"),
            "volume_identifier": here.get("volume"),
            "unit_identifier": here.get("unit"),
            "order_in_volume": order,
        }
        for child in reversed(children.get(identifier, [])):
            stack.append((child, identifier, depth + 1, here))
    return result


def _node_row(item: dict, index: int, derived: dict) -> dict:
    title_en = item.get("alternativeLabel")
    return {
        "identifier": item["identifier"].lower(),
        "seq": index,
        "title": item["fullStatement"],
        "title_en": title_en[:500] if title_en else None,
        "code": (item.get("humanCodingScheme") or None),
        "raw": item,
        **derived,
    }


def _association_row(association: dict, index: int) -> dict:
    number = sequence_number(association.get("sequenceNumber"))
    return {
        "identifier": association["identifier"].lower(),
        "seq": index,
        "association_type": association["associationType"],
        "origin_identifier": association["originNodeURI"]["identifier"].lower(),
        "destination_identifier": association["destinationNodeURI"]["identifier"].lower(),
        "sequence_number": number,
        "raw": association,
    }


def import_package(package, *, district_id: int | None = None) -> ImportReport:
    """Validate then write ``package``; the caller commits (one transaction)."""
    validate_package(package)
    document = package["CFDocument"]
    items = package.get("CFItems", [])
    associations = package.get("CFAssociations", [])
    identifier = document["identifier"].lower()
    report = ImportReport(identifier=identifier, title=document["title"])

    framework = db.session.execute(
        select(Framework).where(Framework.identifier == identifier)
    ).scalar_one_or_none()
    incoming_change = document.get("lastChangeDateTime")
    if framework is not None:
        if framework.last_change and incoming_change and incoming_change < framework.last_change:
            raise Conflict(
                f"The stored framework is newer ({framework.last_change}) than this package "
                f"({incoming_change}); nothing was imported.",
                code="case_older",
            )
        report.framework = "updated"
    else:
        framework = Framework(identifier=identifier, district_id=district_id)
        db.session.add(framework)
    extras = {
        k: v for k, v in package.items() if k not in ("CFDocument", "CFItems", "CFAssociations")
    }
    subjects = document.get("subject") or []
    framework.title = document["title"][:500]
    framework.creator = document["creator"][:300]
    framework.version = document.get("version") or None
    framework.last_change = incoming_change
    framework.subject = next((s for s in subjects if s in vocab.SUBJECTS), None)
    framework.raw = document
    framework.extras = extras
    framework.imported_at = utcnow()
    db.session.flush()
    report.framework_id = framework.id

    derived = derive(items, associations)
    _sync(
        Node,
        framework.id,
        [_node_row(item, i, derived[item["identifier"].lower()]) for i, item in enumerate(items)],
        report.items,
    )
    _sync(
        Association,
        framework.id,
        [_association_row(a, i) for i, a in enumerate(associations)],
        report.associations,
    )
    if (
        report.framework == "updated"
        and not any(report.items.values())
        and not any(report.associations.values())
    ):
        report.framework = "unchanged"
    db.session.expire_all()
    return report


def _sync(model, framework_id: int, rows: list[dict], counts: dict) -> None:
    """Insert, update (only what changed) and delete rows of one framework, in bulk."""
    table = model.__table__
    existing = {
        stored["identifier"]: stored
        for stored in db.session.execute(
            select(table).where(table.c.framework_id == framework_id)
        ).mappings()
    }
    inserts, updates = [], []
    for row in rows:
        row["framework_id"] = framework_id
        stored = existing.pop(row["identifier"], None)
        if stored is None:
            inserts.append(row)
            continue
        if stored["raw"] != row["raw"]:
            counts["updated"] += 1
        if any(stored[key] != value for key, value in row.items()):
            updates.append({**row, "_id": stored["id"]})
    counts["created"] += len(inserts)
    counts["deleted"] += len(existing)
    gone = list(existing)
    for chunk in _chunks(gone):
        db.session.execute(
            delete(table).where(table.c.framework_id == framework_id, table.c.identifier.in_(chunk))
        )
    _bulk_update(table, updates)
    if _postgres() and inserts:
        _copy_rows(table, inserts)
    else:
        for chunk in _chunks(inserts, 5000):
            db.session.execute(table.insert(), chunk)


def _copy_rows(table, rows: list[dict]) -> None:
    """PostgreSQL COPY of new rows, in the session's transaction (one round trip)."""
    columns = [c for c in table.columns if c.key in rows[0]]
    names = ", ".join(f'"{c.name}"' for c in columns)
    json_columns = {c.key for c in columns if isinstance(c.type, JSON)}
    raw = db.session.connection().connection.dbapi_connection
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(
                [
                    json.dumps(row[c.key], ensure_ascii=False)
                    if c.key in json_columns and row[c.key] is not None
                    else (row[c.key].value if isinstance(row[c.key], enum.Enum) else row[c.key])
                    for c in columns
                ]
            )


def _bulk_update(table, rows: list[dict]) -> None:
    if not rows:
        return
    keys = [key for key in rows[0] if key not in ("_id", "id")]
    statement = (
        table.update()
        .where(table.c.id == bindparam("_id"))
        .values({key: bindparam(key) for key in keys})
    )
    for chunk in _chunks(rows, 5000):
        db.session.execute(statement, chunk)


def rederive(framework: Framework) -> None:
    """Recompute the tree columns of a framework after it was edited in place."""
    items = [
        raw
        for (raw,) in db.session.execute(
            select(Node.raw).where(Node.framework_id == framework.id).order_by(Node.seq)
        )
    ]
    associations = [
        raw
        for (raw,) in db.session.execute(
            select(Association.raw)
            .where(Association.framework_id == framework.id)
            .order_by(Association.seq)
        )
    ]
    derived = derive(items, associations)
    ids = dict(
        db.session.execute(
            select(Node.identifier, Node.id).where(Node.framework_id == framework.id)
        ).all()
    )
    rows = [
        {"_id": ids[identifier], **values}
        for identifier, values in derived.items()
        if identifier in ids
    ]
    _bulk_update(Node.__table__, rows)
    db.session.expire_all()


def export_package(framework: Framework) -> dict:
    """The framework as a CASE 1.0 CFPackage, exactly as imported (plus later edits)."""
    items = [
        raw
        for (raw,) in db.session.execute(
            select(Node.raw).where(Node.framework_id == framework.id).order_by(Node.seq, Node.id)
        )
    ]
    associations = [
        raw
        for (raw,) in db.session.execute(
            select(Association.raw)
            .where(Association.framework_id == framework.id)
            .order_by(Association.seq, Association.id)
        )
    ]
    package = {"CFDocument": framework.raw, "CFItems": items, "CFAssociations": associations}
    package.update(framework.extras or {})
    return package
