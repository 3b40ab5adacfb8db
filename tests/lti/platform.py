"""A simulated LMS (LTI 1.3 platform) served over real HTTP on 127.0.0.1.

It has its own RSA keys and JWKS, an OIDC authorization endpoint that signs id_tokens,
an OAuth2 token endpoint that checks the tool's client assertion against the tool's
JWKS, AGS line item score endpoints, an NRPS membership endpoint, an openid
configuration with a registration endpoint (Dynamic Registration) and a deep linking
return endpoint that verifies the tool's response with the tool's JWKS.

Tests prepare a launch (who, which message, which claims, which tampering) and get back
an ``lti_message_hint``; the tool's login redirects the "browser" (a requests.Session)
to ``/auth``, which answers with the auto-posting form a real LMS sends.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.jwk import JWK
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_rsa():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk = json.loads(JWK.from_pem(public_pem).export_public())
    kid = "sim-" + uuid.uuid4().hex[:8]
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return pem, jwk, kid


@dataclass
class PreparedLaunch:
    sub: str = "stu-1"
    name: str = "Li Lei"
    email: str | None = None
    roles: list[str] = field(default_factory=lambda: [LEARNER])
    message_type: str = "LtiResourceLinkRequest"
    custom: dict = field(default_factory=dict)
    context_id: str | None = "course-1"
    context_title: str = "Grade 7 Chinese"
    resource_link_id: str = "link-1"
    deployment_id: str | None = None
    with_ags: bool = True
    with_nrps: bool = True
    # tamper(claims, header) -> (claims, header, signing_pem or None for alg=none)
    tamper: Any = None
    extra: dict = field(default_factory=dict)


class FormParser(HTMLParser):
    """Collects every form (id, method, action) with its named inputs."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {
                "id": attrs.get("id"),
                "method": (attrs.get("method") or "get").lower(),
                "action": attrs.get("action"),
                "fields": {},
            }
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and attrs.get("name"):
            self._current["fields"][attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def parse_form(html: str, form_id: str | None = None) -> tuple[str, dict]:
    """(action, fields) of the form with ``form_id``, else of the first POST form that is
    not the page header's logout form."""
    parser = FormParser()
    parser.feed(html)
    for form in parser.forms:
        if form_id is not None:
            if form["id"] == form_id:
                return form["action"], form["fields"]
        elif form["method"] == "post" and not (form["action"] or "").endswith("/logout"):
            return form["action"], form["fields"]
    return None, {}


class Platform:
    def __init__(self, client_id: str = "shuyuan-client", deployment_id: str = "dep-1"):
        self.pem, self.jwk, self.kid = new_rsa()
        self.private_key = serialization.load_pem_private_key(self.pem, password=None)
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.prepared: dict[str, PreparedLaunch] = {}
        self.tokens: dict[str, dict] = {}
        self.scores: list[dict] = []
        self.score_failures = 0  # answer this many score posts with 503
        self.score_requests = 0  # score posts received, failed ones included
        # When set, the first ``parties`` score posts wait for each other: two deliverers
        # are then provably posting at the same time.
        self.score_barrier: threading.Barrier | None = None
        self.deep_link_responses: list[dict] = []
        self.registrations: list[dict] = []
        self.registration_token = "reg-" + secrets.token_hex(8)
        self.members: list[dict] = []
        self.tool_jwks_url: str | None = None
        self.auth_requests: list[dict] = []
        self.requested_paths: list[str] = []  # every path asked for, in order
        self.lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.issuer = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Platform:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    # --- registration data for the tool ------------------------------------------------

    @property
    def auth_url(self) -> str:
        return self.url + "/auth"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def jwks_url(self) -> str:
        return self.url + "/jwks"

    def registration(self, school_code: str, **extra) -> dict:
        data = {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "deployment_id": self.deployment_id,
            "auth_login_url": self.auth_url,
            "auth_token_url": self.token_url,
            "key_set_url": self.jwks_url,
            "school": school_code,
            "name": "Simulated LMS",
        }
        data.update(extra)
        return data

    # --- launches ----------------------------------------------------------------------

    def prepare(self, **kwargs) -> str:
        hint = "hint-" + uuid.uuid4().hex
        self.prepared[hint] = PreparedLaunch(**kwargs)
        return hint

    def login_params(self, hint: str, **extra) -> dict:
        prepared = self.prepared[hint]
        params = {
            "iss": self.issuer,
            "login_hint": prepared.sub,
            "lti_message_hint": hint,
            "target_link_uri": "ignored",
            "client_id": self.client_id,
            "lti_deployment_id": prepared.deployment_id or self.deployment_id,
        }
        params.update(extra)
        return params

    def claims_for(self, prepared: PreparedLaunch, nonce: str) -> dict:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": prepared.sub,
            "nonce": nonce,
            "iat": now,
            "exp": now + 300,
            "name": prepared.name,
            CLAIM + "message_type": prepared.message_type,
            CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": prepared.deployment_id or self.deployment_id,
            CLAIM + "roles": prepared.roles,
            CLAIM + "target_link_uri": "ignored",
        }
        if prepared.email:
            claims["email"] = prepared.email
        if prepared.context_id:
            claims[CLAIM + "context"] = {
                "id": prepared.context_id,
                "title": prepared.context_title,
                "label": prepared.context_title[:10],
            }
        if prepared.custom:
            claims[CLAIM + "custom"] = prepared.custom
        if prepared.message_type == "LtiResourceLinkRequest":
            claims[CLAIM + "resource_link"] = {"id": prepared.resource_link_id, "title": "Link"}
            if prepared.with_ags:
                claims[AGS] = {
                    "scope": [
                        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                    ],
                    "lineitems": f"{self.url}/ctx/{prepared.context_id}/lineitems",
                    "lineitem": (
                        f"{self.url}/ctx/{prepared.context_id}/lineitems/{prepared.resource_link_id}"
                    ),
                }
        else:
            claims[DL] = {
                "deep_link_return_url": self.url + "/deep_link_return",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe"],
                "accept_multiple": True,
                "data": "opaque-data-123",
            }
        if prepared.with_nrps and prepared.context_id:
            claims[NRPS] = {
                "context_memberships_url": f"{self.url}/ctx/{prepared.context_id}/memberships",
                "service_versions": ["2.0"],
            }
        claims.update(prepared.extra)
        return claims

    def sign(self, claims: dict, header: dict | None = None, pem: bytes | None = None) -> str:
        header = dict(header or {"kid": self.kid})
        if pem is None and header.get("alg") == "none":
            head = dict(header)
            return b64(json.dumps(head).encode()) + "." + b64(json.dumps(claims).encode()) + "."
        if pem is None or pem is self.pem:
            key = self.private_key  # parsed once: loading a PEM costs more than signing
        else:
            key = serialization.load_pem_private_key(pem, password=None)
        return jwt.encode(claims, key, algorithm="RS256", headers=header)

    # --- the "browser" side helpers -----------------------------------------------------

    def launch(
        self,
        browser: requests.Session,
        tool_url: str,
        hint: str,
        login_method: str = "GET",
        **login_extra,
    ) -> requests.Response:
        """login → redirect to /auth → signed id_token → POST /lti/launch (not followed)."""
        params = self.login_params(hint, **login_extra)
        if login_method == "POST":
            response = browser.post(tool_url + "/lti/login", data=params, allow_redirects=False)
        else:
            response = browser.get(tool_url + "/lti/login", params=params, allow_redirects=False)
        if response.status_code != 302:
            return response
        action, fields = self.authorize(browser, response.headers["Location"])
        return browser.post(action, data=fields, allow_redirects=False)

    def authorize(self, browser: requests.Session, auth_url: str) -> tuple[str, dict]:
        page = browser.get(auth_url)
        assert page.status_code == 200, page.text[:300]
        return parse_form(page.text)

    # --- HTTP endpoints ----------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            response = self._route(request)
        except Exception as exc:  # a simulator bug shows up in the test, not as a hang
            response = Response(f"simulator error: {type(exc).__name__}: {exc}", status=500)
        return response(environ, start_response)

    def _json(self, data, status=200):
        return Response(json.dumps(data), status=status, mimetype="application/json")

    def _route(self, request: Request) -> Response:
        path = request.path
        self.requested_paths.append(path)
        if path == "/redirect-to-config":
            return Response(
                "", status=302, headers={"Location": "/.well-known/openid-configuration"}
            )
        if path == "/jwks":
            return self._json({"keys": [self.jwk]})
        if path == "/.well-known/openid-configuration":
            return self._json(self.openid_configuration())
        if path == "/register" and request.method == "POST":
            return self._register(request)
        if path == "/auth":
            return self._auth(request)
        if path == "/course-page":
            return self._course_page(request)
        if path == "/token" and request.method == "POST":
            return self._token(request)
        if path.startswith("/ctx/") and path.endswith("/scores") and request.method == "POST":
            return self._score(request)
        if path.startswith("/ctx/") and path.endswith("/memberships"):
            return self._memberships(request)
        if path == "/deep_link_return" and request.method == "POST":
            return self._deep_link_return(request)
        return Response("not found", status=404)

    def openid_configuration(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.auth_url,
            "token_endpoint": self.token_url,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "jwks_uri": self.jwks_url,
            "registration_endpoint": self.url + "/register",
            "scopes_supported": ["openid"],
            "response_types_supported": ["id_token"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "simulated-lms",
                "version": "1.0",
                "messages_supported": [
                    {"type": "LtiResourceLinkRequest"},
                    {"type": "LtiDeepLinkingRequest"},
                ],
            },
        }

    def _register(self, request: Request) -> Response:
        if request.headers.get("Authorization") != "Bearer " + self.registration_token:
            return self._json({"error": "invalid_token"}, 401)
        data = request.get_json(force=True)
        for required in (
            "initiate_login_uri",
            "redirect_uris",
            "jwks_uri",
            "https://purl.imsglobal.org/spec/lti-tool-configuration",
        ):
            if required not in data:
                return self._json({"error": "invalid_client_metadata", "missing": required}, 400)
        self.registrations.append(data)
        self.tool_jwks_url = data["jwks_uri"]
        answer = dict(data)
        answer["client_id"] = self.client_id
        answer["https://purl.imsglobal.org/spec/lti-tool-configuration"] = dict(
            data["https://purl.imsglobal.org/spec/lti-tool-configuration"],
            deployment_id=self.deployment_id,
        )
        return self._json(answer)

    def _auth(self, request: Request) -> Response:
        params = request.values
        self.auth_requests.append(dict(params))
        for name in (
            "scope",
            "response_type",
            "client_id",
            "redirect_uri",
            "login_hint",
            "state",
            "nonce",
        ):
            if not params.get(name):
                return Response(f"missing {name}", status=400)
        if params["client_id"] != self.client_id or params["response_mode"] != "form_post":
            return Response("bad client or response mode", status=400)
        prepared = self.prepared.get(params.get("lti_message_hint", ""))
        if prepared is None or prepared.sub != params["login_hint"]:
            return Response("unknown message hint", status=400)
        claims = self.claims_for(prepared, params["nonce"])
        header = {"kid": self.kid}
        pem = self.pem
        if prepared.tamper is not None:
            claims, header, pem = prepared.tamper(claims, header, pem)
        token = self.sign(claims, header, pem)
        html = (
            f'<html><body><form method="post" action="{params["redirect_uri"]}">'
            f'<input type="hidden" name="id_token" value="{token}">'
            f'<input type="hidden" name="state" value="{params["state"]}"></form>'
            "<script>document.forms[0].submit();</script></body></html>"
        )
        return Response(html, mimetype="text/html")

    def _course_page(self, request: Request) -> Response:
        """An LMS course page: the tool in an iframe, and LTI postMessage storage
        (``lti.put_data`` / ``lti.get_data``) for it, as Sakai offers with ``_parent``."""
        src = request.args["tool_login"]
        html = f"""<html><body><h1>LMS course</h1>
<iframe name="tool" id="tool" src="{src}" width="900" height="600"></iframe>
<script>
window.ltiStore = {{}}; window.ltiLog = [];
window.addEventListener("message", function (event) {{
  var data = event.data || {{}};
  window.ltiLog.push(data.subject);
  if (data.subject === "lti.put_data") {{
    window.ltiStore[event.origin + "|" + data.key] = data.value;
    event.source.postMessage({{subject: "lti.put_data.response", message_id: data.message_id,
                              key: data.key, value: data.value}}, event.origin);
  }} else if (data.subject === "lti.get_data") {{
    var value = window.ltiStore[event.origin + "|" + data.key];
    event.source.postMessage({{subject: "lti.get_data.response", message_id: data.message_id,
                              key: data.key, value: value}}, event.origin);
  }}
}});
</script></body></html>"""
        return Response(html, mimetype="text/html")

    def _tool_keys(self) -> dict:
        return requests.get(self.tool_jwks_url, timeout=5).json()

    def verify_tool_jwt(self, token: str, audience: str) -> dict:
        header = jwt.get_unverified_header(token)
        for key in self._tool_keys()["keys"]:
            if key.get("kid") == header.get("kid"):
                public = jwt.PyJWK(key).key
                return jwt.decode(token, public, algorithms=["RS256"], audience=audience)
        raise ValueError(f"tool key {header.get('kid')} is not in the tool's JWKS")

    def _token(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return self._json({"error": "unsupported_grant_type"}, 400)
        try:
            claims = self.verify_tool_jwt(form.get("client_assertion", ""), self.token_url)
        except Exception as exc:
            return self._json({"error": "invalid_client", "detail": str(exc)}, 401)
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            return self._json({"error": "invalid_client"}, 401)
        token = "at-" + secrets.token_hex(12)
        self.tokens[token] = {"scopes": form.get("scope", "").split()}
        return self._json(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": 3600,
                "scope": form.get("scope", ""),
            }
        )

    def _authorised(self, request: Request, scope: str) -> bool:
        header = request.headers.get("Authorization", "")
        token = self.tokens.get(header[7:]) if header.startswith("Bearer ") else None
        return token is not None and scope in token["scopes"]

    def _score(self, request: Request) -> Response:
        if not self._authorised(request, "https://purl.imsglobal.org/spec/lti-ags/scope/score"):
            return self._json({"error": "unauthorized"}, 401)
        with self.lock:
            self.score_requests += 1
            number = self.score_requests
        barrier = self.score_barrier
        if barrier is not None and number <= barrier.parties:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=20)
        with self.lock:
            if self.score_failures > 0:
                self.score_failures -= 1
                return Response("LMS temporarily unavailable", status=503)
            body = json.loads(request.get_data(as_text=True))
            body["lineitem"] = request.path[: -len("/scores")]
            self.scores.append(body)
        return self._json({}, 200)

    def _memberships(self, request: Request) -> Response:
        if not self._authorised(
            request, "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
        ):
            return self._json({"error": "unauthorized"}, 401)
        context_id = request.path.split("/")[2]
        return Response(
            json.dumps({"id": request.url, "context": {"id": context_id}, "members": self.members}),
            mimetype="application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
        )

    def _deep_link_return(self, request: Request) -> Response:
        token = request.form.get("JWT", "")
        try:
            claims = self.verify_tool_jwt(token, self.issuer)
            error = None
        except Exception as exc:
            claims, error = {}, f"{type(exc).__name__}: {exc}"
        self.deep_link_responses.append({"claims": claims, "error": error, "token": token})
        return Response(
            "<html><body>content added</body></html>",
            mimetype="text/html",
            status=200 if error is None else 400,
        )


def login_query(platform: Platform, hint: str) -> str:
    return urlencode(platform.login_params(hint))
