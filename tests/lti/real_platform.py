"""A small LMS built on ``lti1p3platform`` (PyPI, an LTI 1.3 *platform* implementation
written by others), served over real HTTP on 127.0.0.1.

Everything LTI here is the library's: the OIDC login initiation URL
(``OIDCLoginAbstract.initiate_login``), the id_token it signs and posts
(``LTIAdvantageMessageLaunchAbstract.lti_launch`` with deep linking, AGS and NRPS claims),
the OAuth2 token endpoint that checks the tool's client assertion against the tool's
JWKS (``LTI1P3PlatformConfAbstract.get_access_token``), the bearer-token check of the
score endpoint (``validate_token``) and the deep linking response verification
(``validate_deeplinking_resp``).  The library has no Dynamic Registration, so the
openid-configuration and registration endpoints below are ours (glue, ~30 lines), feeding
what the tool sends into the library's ``Registration``.
"""

from __future__ import annotations

import json
import threading
import uuid

from flask import Flask, jsonify, redirect, request
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request
from markupsafe import escape
from werkzeug.serving import make_server

from tests.lti.platform import INSTRUCTOR, LEARNER, new_rsa

SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


class FlaskPlatformRequest(Request):
    def build_metadata(self, req):
        return {
            "method": req.method,
            "form_data": req.form.to_dict(),
            "get_data": req.args.to_dict(),
            "headers": dict(req.headers),
            "content_type": req.content_type,
            "path": req.path,
            "json": None,
        }


class PlatformConf(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, registration: Registration) -> None:
        self._registration = registration

    def get_registration_by_params(self, **kwargs) -> Registration:
        return self._registration


class Login(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs) -> None:
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url: str):
        return redirect(url)


class Launch(LTIAdvantageMessageLaunchAbstract):
    lms: RealLms

    def prepare_launch(self, preflight_response) -> None:
        launch = self.lms.launches[preflight_response["lti_message_hint"]]
        assert preflight_response["login_hint"] == launch["user_id"]
        self.set_user_data(launch["user_id"], launch["roles"], full_name=launch["name"])
        self.set_launch_context_claim(
            "lms-course-7", context_title="七年级数学", context_label="M7"
        )
        if launch["kind"] == "deep_link":
            self.set_dl(self.lms.url + "/deep_link_return", title="Shuyuan", extra_data="dl-data")
            return
        self.set_resource_link_claim(launch["link_id"], title="Shuyuan link")
        self.set_custom_parameters_claim(launch["custom"])
        self.set_ags(self.lms.url + "/lineitems", self.lms.url + f"/lineitems/{launch['link_id']}")
        self.set_nrps(self.lms.url + "/memberships")

    def render_launch_form(self, launch_data, **kwargs):
        return (
            f'<form method="post" action="{escape(launch_data["launch_url"])}">'
            f'<input type="hidden" name="id_token" value="{escape(launch_data["id_token"])}">'
            f'<input type="hidden" name="state" value="{escape(launch_data["state"])}"></form>'
        )


class RealLms:
    """The LMS: one registration of one tool, filled by dynamic registration."""

    def __init__(self):
        pem, _, _ = new_rsa()
        private = pem.decode()
        from cryptography.hazmat.primitives import serialization

        public = (
            serialization.load_pem_private_key(pem, password=None)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        self.launches: dict[str, dict] = {}
        self.scores: list[dict] = []
        self.deep_link_items: list[list[dict]] = []
        self.registration_token = "rt-" + uuid.uuid4().hex
        self.client_id = "real-" + uuid.uuid4().hex[:8]
        self.deployment_id = "real-dep-1"
        self.registration = (
            Registration()
            .set_client_id(self.client_id)
            .set_deployment_id(self.deployment_id)
            .set_platform_public_key(public)
            .set_platform_private_key(private)
        )
        self.app = self._make_app()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.registration.set_iss(self.url)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> RealLms:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def conf(self) -> PlatformConf:
        return PlatformConf(registration=self.registration)

    # --- what a person clicks in the LMS ---------------------------------------------

    def link(
        self,
        kind: str,
        user_id: str,
        name: str,
        teacher: bool = False,
        custom: dict | None = None,
        link_id: str = "rl-1",
    ) -> str:
        hint = "h-" + uuid.uuid4().hex
        self.launches[hint] = {
            "kind": kind,
            "user_id": user_id,
            "name": name,
            "custom": custom or {},
            "roles": [INSTRUCTOR if teacher else LEARNER],
            "link_id": link_id,
        }
        return f"{self.url}/start/{hint}"

    def _make_app(self) -> Flask:
        app = Flask("real-lms")
        lms = self

        @app.get("/.well-known/openid-configuration")
        def openid_configuration():
            return jsonify(
                {
                    "issuer": lms.url,
                    "authorization_endpoint": lms.url + "/authorize",
                    "token_endpoint": lms.url + "/token",
                    "jwks_uri": lms.url + "/jwks",
                    "registration_endpoint": lms.url + "/register",
                    "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                        "product_family_code": "lti1p3platform",
                        "version": "0.1.8",
                    },
                }
            )

        @app.post("/register")
        def register():
            if request.headers.get("Authorization") != "Bearer " + lms.registration_token:
                return jsonify({"error": "invalid_token"}), 401
            tool = request.get_json()
            config = tool["https://purl.imsglobal.org/spec/lti-tool-configuration"]
            dl = next(m for m in config["messages"] if m["type"] == "LtiDeepLinkingRequest")
            (
                lms.registration.set_oidc_login_url(tool["initiate_login_uri"])
                .set_launch_url(config["target_link_uri"])
                .set_deeplink_launch_url(dl["target_link_uri"])
                .set_tool_key_set_url(tool["jwks_uri"])
            )
            return jsonify(
                {
                    **tool,
                    "client_id": lms.client_id,
                    "https://purl.imsglobal.org/spec/lti-tool-configuration": {
                        **config,
                        "deployment_id": lms.deployment_id,
                    },
                }
            )

        @app.get("/jwks")
        def jwks():
            return jsonify(lms.conf().get_jwks())

        @app.get("/start/<hint>")
        def start(hint):
            launch = lms.launches[hint]
            login = Login(FlaskPlatformRequest(request), lms.conf())
            login.set_lti_message_hint(hint=hint)
            if launch["kind"] == "deep_link":
                login.set_deeplinking_launch_url()
            return login.initiate_login(launch["user_id"])

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize():
            launch = Launch(FlaskPlatformRequest(request), lms.conf())
            launch.lms = lms
            return launch.lti_launch()

        @app.post("/token")
        def token():
            conf = lms.conf()
            conf.get_registration()
            return jsonify(conf.get_access_token(request.form.to_dict()))

        @app.post("/lineitems/<link_id>/scores")
        def scores(link_id):
            conf = lms.conf()
            conf.get_registration()
            bearer = request.headers.get("Authorization", "")[7:]
            if not conf.validate_token(bearer, allowed_scopes=[SCORE_SCOPE]):
                return jsonify({"error": "forbidden"}), 403
            lms.scores.append({"link_id": link_id, **json.loads(request.get_data(as_text=True))})
            return jsonify({})

        @app.get("/memberships")
        def memberships():
            return jsonify(
                {"id": lms.url + "/memberships", "context": {"id": "lms-course-7"}, "members": []}
            )

        @app.post("/deep_link_return")
        def deep_link_return():
            conf = lms.conf()
            conf.get_registration()
            lms.deep_link_items.append(conf.validate_deeplinking_resp({"JWT": request.form["JWT"]}))
            return "<p>added</p>"

        return app
