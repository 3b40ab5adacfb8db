"""Fixtures for the LRS tests: clients with credentials, and a small xAPI caller."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from app.common.events import commit
from app.xapi import services


class Lrs:
    """Calls /xapi/ with one client's Basic credentials and a version header."""

    def __init__(self, client, key: str, secret: str, version: str = "2.0.0"):
        self.client = client
        self.version = version
        self.auth = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()

    def headers(self, extra: dict | None = None) -> dict:
        headers = {"Authorization": self.auth, "X-Experience-API-Version": self.version}
        headers.update(extra or {})
        return headers

    def send(
        self,
        method: str,
        body,
        path="statements",
        content_type="application/json",
        headers=None,
        **query,
    ):
        """``method`` ("post" or "put") with ``body`` (JSON unless bytes or text)."""
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return getattr(self.client, method)(
            f"/xapi/{path}",
            data=data,
            query_string=query,
            headers=self.headers({"Content-Type": content_type, **(headers or {})}),
        )

    def post(self, body, path="statements", content_type="application/json", headers=None, **query):
        return self.send("post", body, path, content_type, headers, **query)

    def put(self, body, path="statements", content_type="application/json", headers=None, **query):
        return self.send("put", body, path, content_type, headers, **query)

    def get(self, path="statements", headers=None, **query):
        return self.client.get(f"/xapi/{path}", query_string=query, headers=self.headers(headers))

    def delete(self, path, headers=None, **query):
        return self.client.delete(
            f"/xapi/{path}", query_string=query, headers=self.headers(headers)
        )


def statement(**extra) -> dict:
    data = {
        "actor": {"objectType": "Agent", "mbox": "mailto:xiaoming@example.org", "name": "小明"},
        "verb": {
            "id": "http://adlnet.gov/expapi/verbs/experienced",
            "display": {"en-US": "experienced"},
        },
        "object": {
            "objectType": "Activity",
            "id": "http://example.org/activities/tea",
            "definition": {"name": {"zh-CN": "茶艺"}},
        },
    }
    data.update(extra)
    return data


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def make_lrs(client, orgs):
    """``make_lrs(scopes=["all"], district=orgs.district, school=None)`` -> Lrs."""

    def make(scopes=("all",), district=None, school=None, version="2.0.0", name="test client"):
        lrs_client, secret = services.create_client(
            name, district or orgs.district, list(scopes), school=school
        )
        commit()
        return Lrs(client, lrs_client.key, secret, version)

    return make


@pytest.fixture
def lrs(make_lrs):
    return make_lrs()
