"""OAI-PMH harvested over real HTTP by a third-party harvester (oaipmh-scythe)."""

from __future__ import annotations

import threading

import pytest
import requests
from oaipmh_scythe import Scythe
from werkzeug.serving import make_server

from app.common.events import commit
from app.sharing.services import catalogs
from tests.conftest import free_port


@pytest.fixture
def live(app, monkeypatch):
    port = free_port()
    monkeypatch.setitem(app.config, "SHARING_ORIGIN", f"http://127.0.0.1:{port}")
    monkeypatch.setitem(app.config, "SHARING_OAI_PAGE", 2)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/sharing/oai"
    server.shutdown()


def test_harvest_with_resumption_and_deleted_record(people, orgs, publish, live):
    titles = ["京剧", "茶艺", "天文", "书法", "围棋"]
    ids = {publish(title=t, subject="art"): t for t in titles}
    hidden = publish(title="内部资料", subject="math")
    public = catalogs.create_catalog(
        people.pub_admin,
        orgs.district.id,
        {"title": "河西拓展课", "rules": {"subject": ["art"]}, "region_public": True},
    )
    catalogs.publish_release(people.pub_admin, public, "")
    private = catalogs.create_catalog(
        people.pub_admin, orgs.district.id, {"title": "内部", "rules": {"subject": ["math"]}}
    )
    catalogs.publish_release(people.pub_admin, private, "")
    commit()

    with Scythe(live) as harvester:
        identify = harvester.identify()
        assert identify.protocolVersion == "2.0"
        assert identify.deletedRecord == "persistent"
        records = list(harvester.list_records(metadata_prefix="oai_dc"))
        # Five records over three pages: the resumption tokens were followed.
        assert sorted(r.metadata["title"][0] for r in records) == sorted(titles)
        assert not any(hidden in r.header.identifier for r in records)
        assert {r.metadata["rights"][0] for r in records} == {"CC-BY-4.0"}
        assert len(list(harvester.list_identifiers(metadata_prefix="oai_dc"))) == 5
        [only_set] = list(harvester.list_sets())
        assert only_set.setSpec == public.uid
        assert [f.metadataPrefix for f in harvester.list_metadata_formats()] == ["oai_dc"]
        first = records[0].header.identifier
        assert harvester.get_record(identifier=first).metadata["title"][0] in titles

    gone = next(iter(ids))
    catalogs.withdraw_item(people.pub_admin, public, gone, "版权到期")
    commit()
    with Scythe(live) as harvester:
        records = list(harvester.list_records(metadata_prefix="oai_dc"))
        deleted = [r for r in records if r.deleted]
        assert len(records) == 5 and len(deleted) == 1
        assert deleted[0].header.identifier.endswith(gone)
        assert len(list(harvester.list_records(metadata_prefix="oai_dc", ignore_deleted=True))) == 4


def test_protocol_errors(live):
    for query, code in (
        ({"verb": "Nonsense"}, "badVerb"),
        ({}, "badVerb"),
        ({"verb": "ListRecords"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "marc"}, "cannotDisseminateFormat"),
        ({"verb": "ListRecords", "resumptionToken": "forged"}, "badResumptionToken"),
        (
            {"verb": "GetRecord", "identifier": "oai:x:y", "metadataPrefix": "oai_dc"},
            "idDoesNotExist",
        ),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "yesterday"}, "badArgument"),
        ({"verb": "Identify", "extra": "1"}, "badArgument"),
    ):
        body = requests.get(live, params=query, timeout=30).text
        assert f'code="{code}"' in body, (query, body[:500])
