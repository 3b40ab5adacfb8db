"""Common Cartridge 1.3 "Thin" export of a course: its units as organisation items, each
resource as an LTI 1.3 resource link (``imsbasiclti_xmlv1p3``, custom ``resource`` = its
content id, which the LTI tool launches) and, where its licence allows sharing, also as
a web link (``imswl_xmlv1p3``).  For LMSs that import cartridges instead of deep linking.
"""

from __future__ import annotations

import io
import zipfile
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


def export_course(user: User | None, content_id: str) -> bytes:
    """The cartridge of a course ``user`` may read (404 otherwise)."""
    course = catalog.get_content(user, Course, content_id)
    item_ids = [
        i.resource_content_id for s in course.sections for i in s.items if i.resource_content_id
    ]
    resources = catalog.resolve_resources(user, item_ids)
    ET.register_namespace("", CP)
    for prefix, uri in (("lomimscc", LOMM), ("lom", LOM), ("xsi", XSI)):
        ET.register_namespace(prefix, uri)
    manifest = ET.Element(f"{{{CP}}}manifest", identifier=f"M-{course.content_id}")
    metadata = ET.SubElement(manifest, f"{{{CP}}}metadata")
    ET.SubElement(metadata, f"{{{CP}}}schema").text = "IMS Thin Common Cartridge"
    ET.SubElement(metadata, f"{{{CP}}}schemaversion").text = "1.3.0"
    lom = ET.SubElement(metadata, f"{{{LOMM}}}lom")
    general = ET.SubElement(lom, f"{{{LOMM}}}general")
    title = ET.SubElement(general, f"{{{LOMM}}}title")
    ET.SubElement(title, f"{{{LOMM}}}string", language=course.language or "zh").text = course.title
    organizations = ET.SubElement(manifest, f"{{{CP}}}organizations")
    organization = ET.SubElement(
        organizations, f"{{{CP}}}organization", identifier="O-1", structure="rooted-hierarchy"
    )
    root_item = ET.SubElement(organization, f"{{{CP}}}item", identifier="I-root")
    resources_el = ET.SubElement(manifest, f"{{{CP}}}resources")
    files: dict[str, bytes] = {}
    course_ref = f"R-course-{course.content_id}"
    files[f"{course_ref}.xml"] = _lti_link(course.title, {"course": course.content_id})
    for position, section in enumerate(course.sections, start=1):
        unit = ET.SubElement(root_item, f"{{{CP}}}item", identifier=f"I-unit-{position}")
        ET.SubElement(unit, f"{{{CP}}}title").text = section.title
        for slot in section.items:
            resource = resources.get(slot.resource_content_id or "")
            if resource is None:
                continue  # not visible to this user: never exported
            ref = f"R-{slot.item_key}"
            files[f"{ref}.xml"] = _lti_link(resource.title, {"resource": resource.content_id})
            leaf = ET.SubElement(
                unit, f"{{{CP}}}item", identifier=f"I-{slot.item_key}", identifierref=ref
            )
            ET.SubElement(leaf, f"{{{CP}}}title").text = slot.title or resource.title
            if resource.licence in SHAREABLE_LICENCES and resource.url:
                web_ref = f"W-{slot.item_key}"
                files[f"{web_ref}.xml"] = _web_link(resource.title, resource.url)
                web = ET.SubElement(
                    unit, f"{{{CP}}}item", identifier=f"I-w-{slot.item_key}", identifierref=web_ref
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
