"""Common Cartridge 1.3 "Thin" export of a course or of one week of a teaching calendar:
units (course sections, or the week's lessons) as organisation items, each resource as an
LTI 1.3 resource link (``imsbasiclti_xmlv1p3``, custom ``resource`` = its content id,
which the LTI tool launches) and, where its licence allows sharing, also as a web link
(``imswl_xmlv1p3``).  For LMSs that import cartridges instead of deep linking.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET  # noqa: S405  (writes XML, never parses)

from flask import current_app

from app.accounts.models import User
from app.catalog import services as catalog
from app.catalog.models import Course
from app.sharing.services.manifest import SHAREABLE_LICENCES

CP = "http://www.imsglobal.org/xsd/imsccv1p3/imscp_v1p1"
LOM = "http://ltsc.ieee.org/xsd/imsccv1p3/LOM/resource"
LOMM = "http://ltsc.ieee.org/xsd/imsccv1p3/LOM/manifest"
BLTI = "http://www.imsglobal.org/xsd/imsbasiclti_v1p0"
LTICC = "http://www.imsglobal.org/xsd/imslticc_v1p3"
LTICM = "http://www.imsglobal.org/xsd/imslticm_v1p0"
LTICP = "http://www.imsglobal.org/xsd/imslticp_v1p0"
WL = "http://www.imsglobal.org/xsd/imsccv1p3/imswl_v1p3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _base() -> str:
    return (current_app.config.get("LTI_BASE_URL") or current_app.config["SHARING_ORIGIN"]).rstrip(
        "/"
    )


def _lti_link(title: str, custom: dict[str, str]) -> bytes:
    ET.register_namespace("", LTICC)
    for prefix, uri in (("blti", BLTI), ("lticm", LTICM), ("lticp", LTICP), ("xsi", XSI)):
        ET.register_namespace(prefix, uri)
    root = ET.Element(f"{{{LTICC}}}cartridge_basiclti_link")
    ET.SubElement(root, f"{{{BLTI}}}title").text = title
    launch = _base() + "/lti/launch"
    ET.SubElement(root, f"{{{BLTI}}}launch_url").text = launch
    ET.SubElement(root, f"{{{BLTI}}}secure_launch_url").text = launch
    params = ET.SubElement(root, f"{{{BLTI}}}custom")
    for name, value in custom.items():
        ET.SubElement(params, f"{{{LTICM}}}property", name=name).text = value
    vendor = ET.SubElement(root, f"{{{BLTI}}}vendor")
    ET.SubElement(vendor, f"{{{LTICP}}}code").text = "shuyuan"
    ET.SubElement(vendor, f"{{{LTICP}}}name").text = current_app.config.get(
        "PLATFORM_NAME", "Shuyuan"
    )
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _web_link(title: str, url: str) -> bytes:
    ET.register_namespace("", WL)
    root = ET.Element(f"{{{WL}}}webLink")
    ET.SubElement(root, f"{{{WL}}}title").text = title
    ET.SubElement(root, f"{{{WL}}}url", href=url, target="_blank")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


@dataclass
class _Leaf:
    key: str  # unique within the cartridge (XML ID material)
    title: str
    resource: object  # a catalog Resource the reader may see


@dataclass
class _Unit:
    title: str
    leaves: list[_Leaf] = field(default_factory=list)


def _package(
    identifier: str,
    title: str,
    language: str,
    units: list[_Unit],
    whole: tuple[str, dict[str, str]] | None = None,
) -> bytes:
    """The .imscc bytes: ``units`` as organisation items, each leaf an LTI 1.3 link (and
    a web link where its licence allows sharing), ``whole`` one more link for all of it.
    One resource element per distinct item, however many leaves point at it."""
    ET.register_namespace("", CP)
    for prefix, uri in (("lomimscc", LOMM), ("lom", LOM), ("xsi", XSI)):
        ET.register_namespace(prefix, uri)
    manifest = ET.Element(f"{{{CP}}}manifest", identifier=f"M-{identifier}")
    metadata = ET.SubElement(manifest, f"{{{CP}}}metadata")
    ET.SubElement(metadata, f"{{{CP}}}schema").text = "IMS Thin Common Cartridge"
    ET.SubElement(metadata, f"{{{CP}}}schemaversion").text = "1.3.0"
    lom = ET.SubElement(metadata, f"{{{LOMM}}}lom")
    general = ET.SubElement(lom, f"{{{LOMM}}}general")
    title_el = ET.SubElement(general, f"{{{LOMM}}}title")
    ET.SubElement(title_el, f"{{{LOMM}}}string", language=language or "zh").text = title
    organizations = ET.SubElement(manifest, f"{{{CP}}}organizations")
    organization = ET.SubElement(
        organizations, f"{{{CP}}}organization", identifier="O-1", structure="rooted-hierarchy"
    )
    root_item = ET.SubElement(organization, f"{{{CP}}}item", identifier="I-root")
    resources_el = ET.SubElement(manifest, f"{{{CP}}}resources")
    files: dict[str, bytes] = {}
    if whole is not None:
        ref, custom = whole
        files[f"{ref}.xml"] = _lti_link(title, custom)
    for position, unit in enumerate(units, start=1):
        unit_el = ET.SubElement(root_item, f"{{{CP}}}item", identifier=f"I-unit-{position}")
        ET.SubElement(unit_el, f"{{{CP}}}title").text = unit.title
        for leaf in unit.leaves:
            resource = leaf.resource
            ref = f"R-{resource.content_id}"
            files.setdefault(
                f"{ref}.xml", _lti_link(resource.title, {"resource": resource.content_id})
            )
            item = ET.SubElement(
                unit_el, f"{{{CP}}}item", identifier=f"I-{leaf.key}", identifierref=ref
            )
            ET.SubElement(item, f"{{{CP}}}title").text = leaf.title or resource.title
            if resource.licence in SHAREABLE_LICENCES and resource.url:
                web_ref = f"W-{resource.content_id}"
                files.setdefault(f"{web_ref}.xml", _web_link(resource.title, resource.url))
                web = ET.SubElement(
                    unit_el, f"{{{CP}}}item", identifier=f"I-w-{leaf.key}", identifierref=web_ref
                )
                ET.SubElement(web, f"{{{CP}}}title").text = f"{resource.title} (web)"
    for name in sorted(files):
        ref = name[:-4]
        kind = "imswl_xmlv1p3" if ref.startswith("W-") else "imsbasiclti_xmlv1p3"
        resource_el = ET.SubElement(resources_el, f"{{{CP}}}resource", identifier=ref, type=kind)
        ET.SubElement(resource_el, f"{{{CP}}}file", href=name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            zipfile.ZipInfo("imsmanifest.xml", _EPOCH),
            ET.tostring(manifest, encoding="utf-8", xml_declaration=True),
        )
        for name in sorted(files):
            archive.writestr(zipfile.ZipInfo(name, _EPOCH), files[name])
    return out.getvalue()


def export_course(user: User | None, content_id: str) -> bytes:
    """The cartridge of a course ``user`` may read (404 otherwise)."""
    course = catalog.get_content(user, Course, content_id)
    item_ids = [
        i.resource_content_id for s in course.sections for i in s.items if i.resource_content_id
    ]
    resources = catalog.resolve_resources(user, item_ids)
    units = []
    for section in course.sections:
        unit = _Unit(section.title)
        for slot in section.items:
            resource = resources.get(slot.resource_content_id or "")
            if resource is not None:  # not visible to this user: never exported
                unit.leaves.append(_Leaf(slot.item_key, slot.title, resource))
        units.append(unit)
    return _package(
        course.content_id,
        course.title,
        course.language,
        units,
        (f"R-course-{course.content_id}", {"course": course.content_id}),
    )


@dataclass
class WeekCartridge:
    filename: str
    body: bytes


def export_week(user: User | None, calendar_id: int, week: int) -> WeekCartridge:
    """The cartridge of one week of a teaching calendar (a district's, a school's or a
    class's) that ``user`` may read: the week's lessons in teaching order as units, each
    with the published resources aligned to it that ``user`` may see."""
    from app.curriculum import services as curriculum
    from app.errors import NotFound

    calendar = curriculum.get_calendar(user, calendar_id)
    weeks = {w.week: w for w in calendar.weeks}
    if week not in weeks:
        raise NotFound("Week not found.")
    span = weeks[week]
    plan = curriculum.week_plan(user, calendar.id, week)
    units = []
    for position, lesson in enumerate(plan, start=1):
        node = lesson["node"]
        unit = _Unit(node.title)
        for n, aligned in enumerate(lesson["resources"], start=1):
            unit.leaves.append(_Leaf(f"{position}-{n}", "", aligned.resource))
        units.append(unit)
    title = f"{calendar.title} · {week} ({span.starts_on:%Y-%m-%d} – {span.ends_on:%Y-%m-%d})"
    identifier = f"calendar-{calendar.id}-week-{week}"
    return WeekCartridge(f"{identifier}.imscc", _package(identifier, title, "zh", units))
