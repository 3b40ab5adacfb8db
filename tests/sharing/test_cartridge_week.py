"""Common Cartridge 1.3 Thin of one week of a teaching calendar (page, API, CLI), read
back with lxml: the week's lessons as units, each aligned resource the reader may see as
an LTI 1.3 link, a web link only where its licence allows sharing, and the structural
rules of IMS CP (unique XML IDs, every identifierref resolves, every file present)."""

from __future__ import annotations

import io
import re
import zipfile

from lxml import etree

from app.curriculum import services as curriculum_services
from app.sharing.services.cartridge import BLTI, CP, LTICM, WL
from tests.curriculum.conftest import curriculum, klass  # noqa: F401  (fixtures)

NS = {"cp": CP, "blti": BLTI, "lticm": LTICM, "wl": WL}
NCNAME = re.compile(r"^[A-Za-z_][\w.-]*$")


def read_cartridge(data: bytes):
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    manifest = etree.fromstring(archive.read("imsmanifest.xml"))
    assert manifest.tag == f"{{{CP}}}manifest"
    assert manifest.findtext("cp:metadata/cp:schema", namespaces=NS) == "IMS Thin Common Cartridge"
    assert manifest.findtext("cp:metadata/cp:schemaversion", namespaces=NS) == "1.3.0"
    ids = [e.get("identifier") for e in manifest.iter() if e.get("identifier")]
    assert len(ids) == len(set(ids)) and all(NCNAME.match(i) for i in ids)
    resources = {r.get("identifier"): r for r in manifest.findall("cp:resources/cp:resource", NS)}
    for item in manifest.iter(f"{{{CP}}}item"):
        if item.get("identifierref"):
            assert item.get("identifierref") in resources
    names = set(archive.namelist())
    documents = {}
    for ref, resource in resources.items():
        href = resource.find("cp:file", NS).get("href")
        assert href in names
        documents[ref] = etree.fromstring(archive.read(href))
    assert names == {"imsmanifest.xml"} | {
        r.find("cp:file", NS).get("href") for r in resources.values()
    }
    return manifest, resources, documents


def test_week_cartridge_page_api_and_cli(
    app,
    people,
    orgs,
    publish,
    klass,  # noqa: F811
    login,
    client,
    api,
    make_user,
    tmp_path,
):
    plan = curriculum_services.calendar_plan(klass.calendar)
    week = next(w for w in plan if len(w["lessons"]) >= 2)
    first, second = week["lessons"][:2]
    open_one = publish(title="一元一次方程微课")
    reserved = publish(title="版权所有讲义", licence="ARR")
    from app.catalog import services as catalog
    from app.catalog.models import Resource

    draft = catalog.create_content(
        people.author, Resource, {"title": "草稿", "kind": "video", "subject": "math"}
    ).content_id
    for content_id, node in ((open_one, first), (reserved, first), (open_one, second)):
        curriculum_services.align(people.author, node.id, "resource", content_id)
    curriculum_services.align(people.author, second.id, "resource", draft)
    from app.common.events import commit

    commit()

    # A teacher of the class reads the district's calendar; the draft is nobody's to
    # see, so it is never exported.
    login(klass.teacher)
    url = f"/sharing/cartridge/calendars/{klass.calendar_id}/weeks/{week['week']}.imscc"
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/zip"
    manifest, resources, documents = read_cartridge(response.data)
    units = manifest.findall("cp:organizations/cp:organization/cp:item/cp:item", NS)
    assert [u.findtext("cp:title", namespaces=NS) for u in units] == [first.title, second.title]
    leaves = [
        sorted(i.findtext("cp:title", namespaces=NS) for i in u.findall("cp:item", NS))
        for u in units
    ]
    assert leaves[0] == ["一元一次方程微课", "一元一次方程微课 (web)", "版权所有讲义"]
    assert leaves[1] == ["一元一次方程微课", "一元一次方程微课 (web)"]
    # One resource element per item, however many lessons point at it.
    kinds = sorted((ref, r.get("type")) for ref, r in resources.items())
    assert kinds == sorted(
        [
            (f"R-{open_one}", "imsbasiclti_xmlv1p3"),
            (f"R-{reserved}", "imsbasiclti_xmlv1p3"),
            (f"W-{open_one}", "imswl_xmlv1p3"),
        ]
    )
    link = documents[f"R-{open_one}"]
    assert link.findtext("blti:launch_url", namespaces=NS).endswith("/lti/launch")
    prop = link.find("blti:custom/lticm:property", NS)
    assert (prop.get("name"), prop.text) == ("resource", open_one)
    assert documents[f"W-{open_one}"].find("wl:url", NS).get("href") == "https://example.org/v"

    # Unhappy paths: a week that does not exist, a calendar she cannot read, no login.
    assert client.get(url.replace(f"/weeks/{week['week']}.", "/weeks/999.")).status_code == 404
    assert client.get(url.replace(f"/{klass.calendar_id}/", "/987654/")).status_code == 404
    assert app.test_client().get(url).status_code in (401, 302)

    # The API gives the same bytes to a bearer of the same user.
    api_url = f"/api/v1/sharing/cartridge/calendars/{klass.calendar_id}/weeks/{week['week']}"
    via_api = api("GET", api_url, klass.teacher)
    assert via_api.status_code == 200 and via_api.data == response.data
    assert app.test_client().get(api_url).status_code == 401

    # The CLI writes the same cartridge as a platform admin.
    make_user("platform_admin")
    out = tmp_path / "week.imscc"
    result = app.test_cli_runner().invoke(
        args=["sharing", "cartridge", "week", str(klass.calendar_id), str(week["week"]), str(out)]
    )
    assert result.exit_code == 0, result.output
    _, admin_resources, _ = read_cartridge(out.read_bytes())
    assert set(admin_resources) == set(resources)
    missing = app.test_cli_runner().invoke(
        args=["sharing", "cartridge", "week", str(klass.calendar_id), "999", str(out)]
    )
    assert missing.exit_code != 0 and "Week not found" in missing.output
