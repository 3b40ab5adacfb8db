"""Validating a CASE package: every problem named, nothing written unless it is clean."""

from __future__ import annotations

import json
import re
from collections import defaultdict

from sqlalchemy import bindparam, select

from app.curriculum.case.vocabulary import ACYCLIC_TYPES, ASSOCIATION_TYPES, sequence_number
from app.curriculum.models import Association, Framework, Node
from app.errors import Invalid
from app.extensions import db

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


MAX_ITEMS = 200_000


MAX_ASSOCIATIONS = 500_000


CHUNK = 900


class Problems:
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


def is_str(value, required=True) -> bool:
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
        is_str(value.get(key), required=False) for key in ("title", "identifier", "uri")
    )


def _check_identifier(value, where: str, problems: Problems) -> bool:
    if not isinstance(value, str) or not UUID_RE.match(value):
        problems.add(where, f"identifier must be a UUID string, got {value!r:.80}.")
        return False
    return True


def _registered(entries: list, name: str, seen: dict[str, str], problems: Problems):
    """``(where, entry, identifier, first)`` for each entry of the list ``name`` that is
    an object with a UUID identifier (the others are noted in ``problems`` and skipped):
    ``identifier`` lowercased, ``first`` whether this is its first place (``seen`` notes
    where each identifier first stood; a duplicate is a problem too)."""
    for index, entry in enumerate(entries):
        where = f"{name}[{index}]"
        if not isinstance(entry, dict):
            problems.add(where, "must be an object.")
            continue
        if not _check_identifier(entry.get("identifier"), f"{where}.identifier", problems):
            continue
        identifier = entry["identifier"].lower()
        first = identifier not in seen
        if first:
            seen[identifier] = where
        else:
            problems.add(
                f"{where}.identifier",
                f"duplicate identifier {identifier} (also {seen[identifier]}).",
            )
        yield where, entry, identifier, first


def _check_uri_ref(value, where: str, problems: Problems) -> str | None:
    if not isinstance(value, dict):
        problems.add(where, "must be an object with title, identifier and uri.")
        return None
    if not _check_identifier(value.get("identifier"), f"{where}.identifier", problems):
        return None
    for key in ("title", "uri"):
        if key in value and not is_str(value[key], required=False):
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
    problems = Problems()
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
            if not is_str(document.get(key)):
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
            if key in document and not is_str(document[key], required=False):
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
    for where, item, identifier, first in _registered(items, "CFItems", seen, problems):
        if first:
            item_ids.add(identifier)
        for key in _ITEM_STRINGS:
            if not is_str(item.get(key)):
                problems.add(
                    f"{where}.{key}",
                    f"{key} is required and must be a non-empty string ({identifier}).",
                )
        for key in _ITEM_OPTIONAL_STRINGS:
            if key in item and not is_str(item[key], required=False):
                problems.add(f"{where}.{key}", f"must be a string ({identifier}).")
        for key in _ITEM_OPTIONAL_LINKS:
            if key in item and not (is_str(item[key], required=False) or _is_link(item[key])):
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
    for where, association, identifier, _ in _registered(
        associations, "CFAssociations", seen, problems
    ):
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
        for cycle in cycles(kind_edges):
            problems.add(cycle[1], f"{kind} cycle: {' -> '.join(cycle[0])}.")
    problems.raise_if_any()


def chunks(values: list, size: int = CHUNK):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def lookup(column, values: list[str], *conditions) -> set[str]:
    """Which of ``values`` are in ``column`` (one array parameter on PostgreSQL,
    chunked IN lists elsewhere)."""
    if not values:
        return set()
    if postgres():
        from sqlalchemy import String, any_
        from sqlalchemy.dialects.postgresql import ARRAY

        statement = select(column).where(
            column == any_(bindparam("values", type_=ARRAY(String))), *conditions
        )
        return set(db.session.execute(statement, {"values": values}).scalars())
    statement = select(column).where(column.in_(bindparam("values", expanding=True)), *conditions)
    found: set[str] = set()
    for chunk in chunks(values):
        found.update(db.session.execute(statement, {"values": chunk}).scalars())
    return found


def _stored_identifiers(identifiers: set[str]) -> set[str]:
    values = list(identifiers)
    return lookup(Node.identifier, values) | lookup(Framework.identifier, values)


def _identifiers_of_other_frameworks(identifiers: list[str], model, doc_id: str) -> set[str]:
    framework = db.session.execute(
        select(Framework.id).where(Framework.identifier == doc_id)
    ).scalar()
    conditions = [model.framework_id != framework] if framework is not None else []
    return lookup(model.identifier, identifiers, *conditions)


def cycles(edges: list[tuple[str, str, str]]) -> list[tuple[list[str], str]]:
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
