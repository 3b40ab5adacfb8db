"""Open redirects (item 7), security headers (item 8), the login signal (issue 11) and the
honest API contract (item 11): error envelope, offsets, bounded integer path parts."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest

from app.common.redirects import is_safe_path
from app.config import PROJECT_ROOT
from app.extensions import db
from tests.conftest import csrf_token_from, make_app

HOSTILE_TARGETS = [
    "/\t/evil.example",
    "//evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "/\r\nSet-Cookie: x=1",
    "/\n/evil.example",
    "/\x00/evil.example",
    " //evil.example",
    "evil.example",
    "/" + "a" * 5000,
]


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_hostile_next_is_refused(target):
    assert not is_safe_path(target)


@pytest.mark.parametrize("target", ["/", "/courses?page=2&q=%E8%AF%BE", "/lti/week/1#x"])
def test_site_paths_are_kept(target):
    assert is_safe_path(target)


@pytest.mark.parametrize(
    "raw_query",
    ["/%09/evil.example", "/%0d%0aSet-Cookie:%20x=1", "//evil.example", "/%5Cevil.example"],
)
def test_language_switch_never_leaves_the_site(client, raw_query):
    response = client.get(f"/lang/en?next={raw_query}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "Set-Cookie: x" not in str(response.headers)


def test_language_switch_keeps_a_site_path(client):
    response = client.get("/lang/en?next=/resources%3Fpage%3D2")
    assert response.headers["Location"] == "/resources?page=2"


@pytest.mark.parametrize("raw_query", ["/%09/evil.example", "/%0d%0a/evil", "//evil.example"])
def test_login_next_never_leaves_the_site(client, make_user, raw_query):
    user = make_user("teacher")
    response = client.post(
        f"/login?next={raw_query}",
        data={
            "email": user.email,
            "password": "password123",
            "csrf_token": csrf_token_from(client),
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def _csp(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {
        part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
        for part in policy.split("; ")
    }


@pytest.mark.parametrize("path", ["/", "/login", "/api/v1/districts", "/no-such-page"])
def test_security_headers_on_every_response(client, path):
    response = client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    csp = _csp(response)
    assert csp["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'self'"
    assert "'unsafe-inline'" not in csp["script-src"]
    assert re.fullmatch(r"'self' 'nonce-[A-Za-z0-9_-]{20,}'", csp["script-src"])


def test_nonce_is_new_for_every_request(client):
    first = _csp(client.get("/"))["script-src"]
    second = _csp(client.get("/"))["script-src"]
    assert first != second


def test_every_inline_script_carries_the_nonce():
    """A static guard: an inline <script> without nonce= would be blocked by the CSP."""
    offenders = []
    sources = list((PROJECT_ROOT / "app").rglob("templates/**/*.html"))
    sources += list((PROJECT_ROOT / "plugins").rglob("templates/**/*.html"))
    sources += [p for p in (PROJECT_ROOT / "plugins").rglob("*.py")]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and "nonce=" not in tag:
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}: {tag}")
    assert not offenders, "\n".join(offenders)


@pytest.fixture
def lms(ctx, orgs):
    from app.lti.models import LtiDeployment, LtiPlatform

    def add(issuer, login_url, approved=True, active=True):
        platform = LtiPlatform(
            issuer=issuer,
            client_id="c-" + issuer[-6:],
            auth_login_url=login_url,
            auth_token_url=login_url + "/token",
            key_set_url=login_url + "/jwks",
            active=active,
        )
        platform.deployments.append(
            LtiDeployment(deployment_id="d1", district_id=orgs.district.id, approved=approved)
        )
        db.session.add(platform)
        db.session.commit()
        return platform

    return add


def test_lti_pages_may_be_framed_by_registered_platforms_only(client, lms):
    lms("https://lms.example.edu", "https://auth.lms.example.edu:8443/login")
    lms("https://pending.example.org", "https://pending.example.org/login", approved=False)
    lms("https://off.example.org", "https://off.example.org/login", active=False)
    lms("https://x.example.net; script-src *", "javascript:alert(1)")
    response = client.get("/lti/jwks")
    ancestors = _csp(response)["frame-ancestors"].split()
    assert ancestors == [
        "'self'",
        "https://auth.lms.example.edu:8443",
        "https://lms.example.edu",
    ]
    assert "X-Frame-Options" not in response.headers
    # Outside LTI, nobody frames the site.
    assert _csp(client.get("/"))["frame-ancestors"] == "'none'"


def test_inline_script_of_a_real_page_carries_the_header_nonce(client, lms):
    """The LTI login page shown inside the LMS frame runs an inline script."""
    platform = lms("https://lms.example.edu", "https://lms.example.edu/login")
    response = client.get(
        "/lti/login",
        query_string={
            "iss": platform.issuer,
            "client_id": platform.client_id,
            "login_hint": "u1",
            "target_link_uri": "http://localhost/lti/launch",
            "lti_deployment_id": "d1",
        },
        headers={"Sec-Fetch-Dest": "iframe"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    scripts = re.findall(r"<script\b[^>]*>", response.get_data(as_text=True))
    inline = [tag for tag in scripts if "src=" not in tag]
    assert inline and all(f'nonce="{nonce}"' in tag for tag in inline)
    assert "https://lms.example.edu" in _csp(response)["frame-ancestors"]


def test_launch_landing_pages_may_be_framed_without_cookies(client, lms):
    """A cookie-less launch lands on a resource or course page with no session."""
    lms("https://lms.example.edu", "https://lms.example.edu/login")
    for path in ("/resources/no-such-id", "/courses/no-such-id"):
        assert _csp(client.get(path))["frame-ancestors"] == "'self' https://lms.example.edu"
    assert _csp(client.get("/me/tokens"))["frame-ancestors"] == "'none'"


def test_pages_of_a_launched_session_may_be_framed(client, lms):
    lms("https://lms.example.edu", "https://lms.example.edu/login")
    client.get("/")  # a session cookie exists from here on
    with client.session_transaction() as session:
        session["lti"] = {"platform": 1, "context": None}
    ancestors = _csp(client.get("/resources"))["frame-ancestors"]
    assert ancestors == "'self' https://lms.example.edu"


def test_a_csp_set_by_the_response_is_kept(database_url, tmp_path):
    application = make_app(database_url, str(tmp_path))

    @application.route("/_package_probe")
    def probe():
        return "x", 200, {"Content-Security-Policy": "sandbox; default-src 'none'"}

    response = application.test_client().get("/_package_probe")
    assert response.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_remember_me_cookie_is_samesite_and_short_lived(client, make_user):
    user = make_user("teacher")
    response = client.post(
        "/login",
        data={
            "email": user.email,
            "password": "password123",
            "remember": "1",
            "csrf_token": csrf_token_from(client),
        },
    )
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_"))
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie
    expires = re.search(r"Expires=([^;]+)", cookie).group(1)
    lifetime = datetime.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT") - datetime.utcnow()  # noqa: DTZ003
    assert 13 <= lifetime.days <= 14


def test_user_logged_in_reaches_app_listeners_for_both_kinds_of_login(app, client, make_user):
    from app import signals

    user = make_user("teacher")
    heard = []

    def listener(sender, **kwargs):
        heard.append((sender, kwargs["user"].id, kwargs["method"]))

    signals.user_logged_in.connect(listener, sender=app, weak=False)
    try:
        client.post(
            "/login",
            data={"email": user.email, "password": "wrong", "csrf_token": csrf_token_from(client)},
        )
        assert heard == []
        client.post(
            "/login",
            data={
                "email": user.email,
                "password": "password123",
                "csrf_token": csrf_token_from(client),
            },
        )
        issued = app.test_client().post(
            "/api/v1/auth/tokens", json={"email": user.email, "password": "password123"}
        )
        assert issued.status_code == 201
    finally:
        signals.user_logged_in.disconnect(listener, sender=app)
    assert heard == [(app, user.id, "password"), (app, user.id, "token")]


@pytest.mark.parametrize(
    "method, path",
    [
        ("DELETE", "/api/v1/auth/tokens/99999999999"),
        ("PATCH", "/api/v1/districts/2147483648"),
        ("GET", "/api/v1/curriculum/nodes/99999999999999999999"),
        ("GET", "/curriculum/nodes/2147483648"),
    ],
)
def test_out_of_range_integer_path_parts_are_404(client, token_for, make_user, method, path):
    headers = token_for(make_user("district_admin"))
    response = client.open(path, method=method, headers=headers, json={})
    assert response.status_code == 404


def test_openapi_documents_the_real_error_envelope(client, token_for, make_user):
    spec = client.get("/api/v1/openapi.json").json
    error_schema = spec["components"]["schemas"]["Error"]
    assert error_schema["required"] == ["error"]
    body = spec["components"]["schemas"][error_schema["properties"]["error"]["$ref"].split("/")[-1]]
    assert set(body["required"]) == {"code", "message"}
    referenced = set()
    for operations in spec["paths"].values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for status, answer in operation.get("responses", {}).items():
                if status.startswith(("4", "5")) or status == "default":
                    referenced.add(answer.get("$ref", ""))
    for ref in filter(None, referenced):
        component = spec["components"]["responses"][ref.split("/")[-1]]
        schema = component["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}, ref
    # And real errors match it.
    resolver_spec = {"components": spec["components"], **error_schema}
    for response in (
        client.get("/api/v1/curriculum/nodes/1"),
        client.post("/api/v1/auth/tokens", json={"email": 3}),
        client.get("/api/v1/me"),
    ):
        assert response.status_code >= 400
        jsonschema.validate(response.json, resolver_spec)


def test_openapi_declares_the_bearer_scheme(client):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token.",
    }
    assert {"bearerAuth": []} in spec["security"]
    assert {} in spec["security"]  # public reads need no token


def test_timestamps_carry_their_offset(client, make_user, token_for):
    headers = token_for(make_user("teacher"))
    tokens = client.get("/api/v1/auth/tokens", headers=headers).json
    assert tokens and tokens[0]["created_at"].endswith("+00:00")
    parsed = datetime.fromisoformat(tokens[0]["created_at"])
    assert parsed.utcoffset() is not None


def test_no_hand_commits_in_account_views():
    for name in ("views.py", "api.py", "auth.py"):
        source = Path(PROJECT_ROOT / "app" / "accounts" / name).read_text()
        assert "commit()" not in source.replace("send_after_commit(", ""), name
