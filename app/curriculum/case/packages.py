"""Writing a valid CASE package (import or update in place), re-deriving the tree, export."""

from __future__ import annotations

import enum
import json
from collections import defaultdict

from sqlalchemy import JSON, bindparam, delete, select

from app.catalog import vocab
from app.common import statistics
from app.common.models import utcnow
from app.curriculum.case.validation import chunks, postgres, validate_package
from app.curriculum.case.vocabulary import ImportReport, level_of, sequence_number
from app.curriculum.models import Association, Framework, Level, Node
from app.errors import Conflict
from app.extensions import db


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
        if level == Level.LESSON and any(
            level_of(by_id[child].get("CFItemType")) == Level.LESSON
            for child in children.get(identifier, [])
        ):
            # A 节 with 小节 (a lesson holding lessons): its 小节 are what is taught.
            level = Level.SECTION
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
    for chunk in chunks(gone):
        db.session.execute(
            delete(table).where(table.c.framework_id == framework_id, table.c.identifier.in_(chunk))
        )
    _bulk_update(table, updates)
    if postgres() and inserts:
        _copy_rows(table, inserts)
    else:
        for chunk in chunks(inserts, 5000):
            db.session.execute(table.insert(), chunk)


def _copy_rows(table, rows: list[dict]) -> None:
    """PostgreSQL COPY of new rows, in the session's transaction (one round trip)."""
    columns = [c for c in table.columns if c.key in rows[0]]
    names = ", ".join(f'"{c.name}"' for c in columns)
    json_columns = {c.key for c in columns if isinstance(c.type, JSON)}
    # Past the ORM and its listeners: the week structures cached from these tables are
    # stale once this commits (app/curriculum/services/week_cache.py).
    from app.curriculum.services.week_cache import mark_changed

    mark_changed()
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
    statistics.written(table.name, len(rows))  # past SQLAlchemy: for a bulk import's ANALYZE


def _bulk_update(table, rows: list[dict]) -> None:
    if not rows:
        return
    keys = [key for key in rows[0] if key not in ("_id", "id")]
    statement = (
        table.update()
        .where(table.c.id == bindparam("_id"))
        .values({key: bindparam(key) for key in keys})
    )
    for chunk in chunks(rows, 5000):
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
