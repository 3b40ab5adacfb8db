"""CASE packages as other tools write them: numbers as strings, LinkURI objects, and
associations to standards of frameworks this instance does not hold."""

from __future__ import annotations

import copy
import json
import math
import uuid

import pytest
from sqlalchemy import func, select

from app.curriculum.models import Association, Framework, Node
from app.extensions import db

IMPORT = "/api/v1/curriculum/frameworks/import"
HOST = "https://case.example.org/uri/"


def _id() -> str:
    return str(uuid.uuid4())


def _link(identifier: str, title: str, uri: str | None = None) -> dict:
    return {"title": title, "identifier": identifier, "uri": uri or HOST + identifier}


def third_party_package() -> dict:
    """Shaped like an export of a CASE authoring tool (a state's maths standards): a
    CFDocument with LinkURI licence and package URIs, items with CFItemTypeURI and
    educationLevel, sequence numbers written as strings, CFDefinitions, and an
    exactMatchOf from a standard to the national standard it mirrors (not in the
    package, not on this instance)."""
    doc, licence, domain, first, second = _id(), _id(), _id(), _id(), _id()
    doc_link = _link(doc, "Grade 7 Mathematics Standards")
    item_type = _link(_id(), "Standard")

    def item(identifier, statement, code, kind="Standard"):
        return {
            "identifier": identifier,
            "uri": HOST + identifier,
            "fullStatement": statement,
            "humanCodingScheme": code,
            "CFItemType": kind,
            "CFItemTypeURI": item_type,
            "educationLevel": ["07"],
            "language": "en",
            "lastChangeDateTime": "2021-05-04T12:00:00+00:00",
            "CFDocumentURI": doc_link,
            "licenseURI": _link(licence, "CC BY 4.0"),
        }

    def association(kind, origin, destination, number=None):
        identifier = _id()
        row = {
            "identifier": identifier,
            "uri": HOST + identifier,
            "associationType": kind,
            "CFDocumentURI": doc_link,
            "originNodeURI": origin,
            "destinationNodeURI": destination,
            "lastChangeDateTime": "2021-05-04T12:00:00+00:00",
        }
        if number is not None:
            row["sequenceNumber"] = number
        return row

    items = [
        item(domain, "The Number System", "7.NS", "Domain"),
        item(first, "Apply properties of operations to add rational numbers.", "7.NS.A.1"),
        item(second, "Apply properties of operations to multiply rational numbers.", "7.NS.A.2"),
    ]
    national = _link(_id(), "CCSS.MATH.CONTENT.7.NS.A.1", "https://standards.example.net/7/NS/A/1")
    return {
        "CFDocument": {
            "identifier": doc,
            "uri": HOST + doc,
            "creator": "State Department of Education",
            "title": "Grade 7 Mathematics Standards",
            "lastChangeDateTime": "2021-05-04T12:00:00+00:00",
            "officialSourceURL": "https://education.example.org/math",
            "publisher": "State Department of Education",
            "description": "Adopted 2021.",
            "subject": ["Mathematics"],
            "subjectURI": [_link(_id(), "Mathematics")],
            "language": "en",
            "version": "2021",
            "adoptionStatus": "Adopted",
            "statusStartDate": "2021-07-01",
            "licenseURI": _link(licence, "CC BY 4.0"),
            "CFPackageURI": _link(doc, "Grade 7 Mathematics Standards"),
        },
        "CFItems": items,
        "CFAssociations": [
            association("isChildOf", _link(domain, "7.NS"), doc_link, "1"),
            # Written out of order, numbered as strings: the second comes first.
            association("isChildOf", _link(second, "7.NS.A.2"), _link(domain, "7.NS"), "2"),
            association("isChildOf", _link(first, "7.NS.A.1"), _link(domain, "7.NS"), " 1 "),
            association("precedes", _link(first, "7.NS.A.1"), _link(second, "7.NS.A.2"), 1.0),
            association("exactMatchOf", _link(first, "7.NS.A.1"), national),
        ],
        "CFDefinitions": {
            "CFConcepts": [],
            "CFSubjects": [{"identifier": _id(), "title": "Mathematics", "hierarchyCode": "1"}],
            "CFLicenses": [{"identifier": licence, "title": "CC BY 4.0", "licenseText": "..."}],
            "CFItemTypes": [{"identifier": item_type["identifier"], "title": "Standard"}],
            "CFAssociationGroupings": [],
        },
    }


@pytest.fixture
def headers(make_user, token_for):
    return token_for(make_user("district_admin"))


def _counts():
    return tuple(
        db.session.execute(select(func.count()).select_from(m)).scalar_one()
        for m in (Framework, Node, Association)
    )


def test_a_third_party_package_imports_and_exports_unchanged(client, headers):
    package = third_party_package()
    response = client.post(IMPORT, json=package, headers=headers)
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert report["items"]["created"] == 3 and report["associations"]["created"] == 5

    # Numeric strings order the tree like numbers.
    domain = package["CFItems"][0]["identifier"]
    children = (
        db.session.execute(
            select(Node.code).where(Node.parent_identifier == domain).order_by(Node.position)
        )
        .scalars()
        .all()
    )
    assert children == ["7.NS.A.1", "7.NS.A.2"]
    numbers = (
        db.session.execute(select(Association.sequence_number).order_by(Association.seq))
        .scalars()
        .all()
    )
    assert numbers == [1, 2, 1, 1, None]

    # Exported back exactly as it came, strings, LinkURIs and the external reference too.
    exported = client.get(f"/api/v1/curriculum/frameworks/{report['framework_id']}/case")
    assert exported.get_json() == package
    again = client.post(IMPORT, json=exported.get_json(), headers=headers).get_json()
    assert again["framework"] == "unchanged"


def test_external_references_are_shown_with_their_title_and_uri(client, headers):
    package = third_party_package()
    client.post(IMPORT, json=package, headers=headers)
    first = db.session.execute(select(Node).where(Node.code == "7.NS.A.1")).scalar_one()
    detail = client.get(f"/api/v1/curriculum/nodes/{first.id}").get_json()
    external = [a for a in detail["associations"] if a["type"] == "exactMatchOf"]
    assert len(external) == 1
    assert external[0]["external"] is True and external[0]["other"] is None
    assert external[0]["other_title"] == "CCSS.MATH.CONTENT.7.NS.A.1"
    assert external[0]["other_uri"] == "https://standards.example.net/7/NS/A/1"
    page = client.get(f"/curriculum/nodes/{first.id}").get_data(as_text=True)
    assert "CCSS.MATH.CONTENT.7.NS.A.1" in page and "https://standards.example.net/7/NS/A/1" in page


def _association(package, kind):
    return next(a for a in package["CFAssociations"] if a["associationType"] == kind)


def _break(path: str, value):
    def apply(package):
        target, *rest = path.split(".")
        node = {"document": package["CFDocument"], "item": package["CFItems"][1]}.get(target)
        if node is None:
            node = _association(package, target)
        for key in rest[:-1]:
            node = node[key]
        node[rest[-1]] = value

    apply.__name__ = f"{path}={value!r:.20}"
    return apply


def _external_without_uri(package):
    del _association(package, "exactMatchOf")["destinationNodeURI"]["uri"]


def _external_parent(package):
    _association(package, "isChildOf")["destinationNodeURI"] = _link(_id(), "Elsewhere")


def _nan(package):
    package["CFDefinitions"]["weight"] = math.nan


def _nul(package):
    package["CFItems"][1]["fullStatement"] = "add\x00numbers"


def _lone_surrogate(package):
    package["CFItems"][1]["fullStatement"] = "add \ud800 numbers"


BREAKERS = [
    _break("isChildOf.sequenceNumber", "first"),
    _break("isChildOf.sequenceNumber", [1]),
    _break("isChildOf.sequenceNumber", True),
    _break("isChildOf.sequenceNumber", {"n": 1}),
    _break("isChildOf.sequenceNumber", "99999999999999999999"),
    _break("isChildOf.originNodeURI", ["not", "an", "object"]),
    _break("exactMatchOf.destinationNodeURI", "https://standards.example.net/x"),
    _break("exactMatchOf.destinationNodeURI.uri", {"href": "x"}),
    _break("exactMatchOf.destinationNodeURI.uri", "urn:uuid:not-a-place"),
    _break("item.licenseURI", ["CC BY 4.0"]),
    _break("item.CFItemTypeURI", {"title": 7}),
    _break("item.humanCodingScheme", "x" * 101),
    _break("item.educationLevel", "07"),
    _break("item.fullStatement", {"en": "text"}),
    _break("document.subject", "Mathematics"),
    _break("document.lastChangeDateTime", "2021" * 20),
    _break("document.title", ["Grade 7"]),
    _external_without_uri,
    _external_parent,
    _nan,
    _nul,
    _lone_surrogate,
]


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda f: f.__name__)
def test_wrong_shapes_are_named_never_a_500(client, headers, breaker):
    package = copy.deepcopy(third_party_package())
    breaker(package)
    before = _counts()
    # Sent as raw JSON text so NaN and lone surrogates reach the server as a tool wrote them.
    body = json.dumps(package, allow_nan=True)
    response = client.post(
        IMPORT, data=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422), response.get_json()
    if response.status_code == 422:
        assert response.get_json()["error"]["fields"]
    assert _counts() == before
