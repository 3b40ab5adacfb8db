"""Common Cartridge 1.3 Thin export, read back with lxml (an independent XML parser).

The official CC 1.3 XSDs (ccv1p3_imscp_v1p2_v1p0.xsd and the LTI/web-link/LOM profiles)
could not be obtained here: no package on the registry lists ships them, and the indexed
public sources hold only the CC 1.1 set (moodle backup/cc/schemas11) and CC 1.2 listings,
whose target namespaces differ (docs/sharing.md says what was searched).  So the tests
check well-formedness, the namespaces, the organisation tree, IMS CP's structural rules
(unique XML IDs, every identifierref resolves) and that every referenced file exists and
parses."""

from __future__ import annotations

import io
import zipfile

from lxml import etree

from app.sharing.services.cartridge import BLTI, CP, LTICM, WL

NS = {"cp": CP, "blti": BLTI, "lticm": LTICM, "wl": WL}


def test_course_cartridge_reads_back(people, orgs, publish, login, client, api):
    open_one = publish(title="方程", subject="math", visibility="region")
    reserved = publish(title="版权所有讲义", subject="math", visibility="region", licence="ARR")
    course = publish(
        "course",
        title="七年级数学",
        visibility="region",
        sections=[
            {"title": "第一单元", "items": [{"resource_id": open_one}]},
            {"title": "第二单元", "items": [{"resource_id": reserved}]},
        ],
    )
    response = client.get(f"/sharing/cartridge/courses/{course}.imscc")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    manifest = etree.fromstring(archive.read("imsmanifest.xml"))
    assert manifest.tag == f"{{{CP}}}manifest"
    assert manifest.findtext("cp:metadata/cp:schemaversion", namespaces=NS) == "1.3.0"
    units = manifest.findall("cp:organizations/cp:organization/cp:item/cp:item", NS)
    assert [u.findtext("cp:title", namespaces=NS) for u in units] == ["第一单元", "第二单元"]
    resources = {r.get("identifier"): r for r in manifest.findall("cp:resources/cp:resource", NS)}
    for item in manifest.iter(f"{{{CP}}}item"):
        ref = item.get("identifierref")
        if ref:
            assert ref in resources
    types = sorted(r.get("type") for r in resources.values())
    # A link per resource and one for the course; a web link only for the open licence.
    assert types.count("imsbasiclti_xmlv1p3") == 3 and types.count("imswl_xmlv1p3") == 1
    customs = set()
    for resource in resources.values():
        href = resource.find("cp:file", NS).get("href")
        document = etree.fromstring(archive.read(href))
        if resource.get("type") == "imsbasiclti_xmlv1p3":
            assert document.findtext("blti:launch_url", namespaces=NS).endswith("/lti/launch")
            prop = document.find("blti:custom/lticm:property", NS)
            customs.add((prop.get("name"), prop.text))
        else:
            assert document.find("wl:url", NS).get("href") == "https://example.org/v"
    assert customs == {("resource", open_one), ("resource", reserved), ("course", course)}
    from tests.sharing.test_cartridge_week import read_cartridge

    read_cartridge(response.data)
    via_api = api("GET", f"/api/v1/sharing/cartridge/courses/{course}", people.sub_admin)
    assert via_api.status_code == 200 and via_api.data == response.data


def test_cartridge_of_a_course_one_cannot_see_is_404(people, publish, client):
    hidden = publish("course", title="内部课程", visibility="school")
    assert client.get(f"/sharing/cartridge/courses/{hidden}.imscc").status_code == 404
    assert client.get("/sharing/cartridge/courses/..%2F..%2Fetc.imscc").status_code == 404
