"""Facets: which exist, what their values are called in each language, and checking
the filters a caller asks for."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.accounts.models import District
from app.catalog import vocab
from app.errors import Invalid
from app.extensions import db

# facet -> vocabulary whose codes are its values (None: free values, e.g. district ids)
FACET_VOCABULARIES = {
    "type": None,
    "subject": "subject",
    "grade": "grade",
    "edition": "edition",
    "kind": None,  # resource and course kinds
    "district": None,
    "language": "language",
    "licence": "licence",
    "category": "category",
}
SHOWN_FACETS = ("type", "kind", "subject", "grade", "edition", "district", "language", "licence")


@dataclass
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool


def district_labels(ids, locale: str | None) -> dict[str, str]:
    """Names of the given districts in one query."""
    wanted = [int(i) for i in ids if str(i).isdigit()]
    if not wanted:
        return {}
    english = (locale or "").startswith("en")
    rows = db.session.execute(select(District).where(District.id.in_(wanted))).scalars()
    return {
        str(d.id): ((getattr(d, "name_en", None) or d.name) if english else d.name) for d in rows
    }


def facet_label(facet: str, value: str, locale: str | None, districts: dict | None = None) -> str:
    english = (locale or "").startswith("en")
    if facet == "kind":
        entry = vocab.RESOURCE_KINDS.get(value) or vocab.COURSE_KINDS.get(value)
        return (entry[1] if english else entry[0]) if entry else value
    if facet == "type":
        return {"course": ("课程", "Courses"), "resource": ("资源", "Resources")}.get(
            value, (value, value)
        )[1 if english else 0]
    if facet == "district" and districts is not None:
        return districts.get(value, value)
    if facet == "district":
        try:
            district = db.session.get(District, int(value))
        except (TypeError, ValueError):
            district = None
        if district is None:
            return value
        return (getattr(district, "name_en", None) or district.name) if english else district.name
    vocabulary = FACET_VOCABULARIES.get(facet)
    return vocab.label(vocabulary, value, locale) if vocabulary else value


def check_filters(filters: dict | None) -> dict[str, list[str]]:
    cleaned: dict[str, list[str]] = {}
    errors: dict[str, list[str]] = {}
    for name, values in (filters or {}).items():
        if name not in FACET_VOCABULARIES:
            errors[name] = [f"Unknown facet. Known: {', '.join(FACET_VOCABULARIES)}."]
            continue
        if values in (None, "", []):
            continue
        values = [values] if isinstance(values, str | int) else list(values)
        values = [str(v) for v in values if str(v) != ""][:20]
        vocabulary = FACET_VOCABULARIES[name]
        if vocabulary:
            bad = [v for v in values if v not in vocab.VOCABULARIES[vocabulary]]
        elif name == "kind":
            bad = [
                v for v in values if v not in vocab.RESOURCE_KINDS and v not in vocab.COURSE_KINDS
            ]
        elif name == "type":
            bad = [v for v in values if v not in ("course", "resource")]
        else:
            bad = [v for v in values if not v.isdigit()]
        if bad:
            errors[name] = [f"Unknown value {bad[0]!r}."]
            continue
        if values:
            cleaned[name] = values
    if errors:
        raise Invalid("Unknown search filter.", fields=errors)
    return cleaned
