"""CASE frameworks: import, export, delete, and building one node by node."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select, update

from app import signals
from app.accounts.models import District, User
from app.common.events import send_after_commit
from app.common.models import utcnow
from app.curriculum import case
from app.curriculum.models import (
    Alignment,
    Association,
    Framework,
    Level,
    Node,
    TargetType,
)
from app.curriculum.services.nodes import get_node
from app.curriculum.services.permissions import can_manage_framework, require_user
from app.errors import Forbidden, Invalid, NotFound
from app.extensions import db


def list_frameworks() -> list[Framework]:
    return list(
        db.session.execute(select(Framework).order_by(Framework.title, Framework.id)).scalars()
    )


def get_framework(framework_id: int) -> Framework:
    framework = db.session.get(Framework, framework_id)
    if framework is None:
        raise NotFound("Framework not found.")
    return framework


def _owning_district(user: User, district_id: int | None, action: str) -> int | None:
    """The district a new framework belongs to: the one asked for (which must exist),
    else the user's first administered district; platform admins may leave it region-wide."""
    if district_id is not None and db.session.get(District, district_id) is None:
        raise Invalid("Unknown district.", fields={"district_id": ["No such district."]})
    if district_id is None and not user.is_platform_admin:
        district_id = min(user.admin_district_ids()) if user.admin_district_ids() else None
    if not (user.is_platform_admin or (district_id and user.is_district_admin(district_id))):
        raise Forbidden(f"Only district and platform admins {action} curricula.")
    return district_id


def import_case(user: User | None, package, district_id: int | None = None) -> case.ImportReport:
    """Import (or update in place) a CASE package; district admins and platform admins."""
    user = require_user(user)
    district_id = _owning_district(user, district_id, "import")
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
    if not can_manage_framework(require_user(user), framework):
        raise Forbidden("Only the framework's district admins can delete it.")
    content_ids = _aligned_content_ids_of_framework(framework.identifier)
    db.session.execute(delete(Association).where(Association.framework_id == framework.id))
    db.session.execute(delete(Node).where(Node.framework_id == framework.id))
    db.session.delete(framework)
    db.session.flush()
    for content_id in sorted(content_ids):
        send_after_commit(signals.alignment_changed, resource_content_id=content_id, user=user)


def _framework_for_edit(user: User | None, framework_id: int) -> Framework:
    """The framework ``user`` edits, locked for the rest of the transaction.

    Edits number nodes and associations as max + 1 and recompute the whole tree, so two
    editors of one framework must take turns: a no-op UPDATE takes the row lock on
    PostgreSQL (the database write lock on SQLite) before anything is read."""
    framework = get_framework(framework_id)
    if not can_manage_framework(require_user(user), framework):
        raise Forbidden("Only the framework's district admins can edit it.")
    db.session.execute(
        update(Framework)
        .where(Framework.id == framework.id)
        .values(last_change=Framework.last_change)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(framework)
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
    user = require_user(user)
    district_id = _owning_district(user, data.get("district_id"), "build")
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


def _next_seq(model, framework) -> int:
    """The next sequence number of ``model`` rows (nodes, associations) in ``framework``."""
    last = db.session.execute(
        select(model.seq)
        .where(model.framework_id == framework.id)
        .order_by(model.seq.desc())
        .limit(1)
    ).scalar()
    return (last or 0) + 1


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
    seq = _next_seq(Node, framework)
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
    seq = _next_seq(Association, framework)
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
        if case.cycles(edges):
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
