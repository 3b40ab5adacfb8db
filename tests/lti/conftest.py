"""Fixtures for the LTI tests: Shuyuan on a real port and a simulated LMS."""

from __future__ import annotations

import threading

import pytest
import requests
from werkzeug.serving import make_server

from app.common.events import commit
from app.lti import services
from tests.lti.platform import Platform


@pytest.fixture(scope="session")
def live(app):
    """Shuyuan served by a werkzeug server thread on a free port of 127.0.0.1."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def platform(live):
    sim = Platform().start()
    sim.tool_jwks_url = live + "/lti/jwks.json"
    yield sim
    sim.stop()


@pytest.fixture
def registered(platform, orgs):
    """The simulator registered and approved for ``orgs.school``."""
    deployment = services.add_platform(None, platform.registration(orgs.school.code), system=True)
    commit()
    return deployment


@pytest.fixture
def browser():
    with requests.Session() as session:
        yield session
