"""The smallest LTI 1.3 tool made of bare pylti1p3 calls (the baseline of bench/lti.py).

Configuration from ``BARE_LTI_CONFIG`` (a JSON file: issuer, client_id, deployment_id,
auth_login_url, auth_token_url, key_set (the platform's JWKS inline, so no fetch per
launch), tool_private_key).  State and nonce live in pylti1p3's defaults: a state cookie
and the (signed cookie) Flask session.  Run: ``gunicorn -w 2 bench.lti_bare_tool:app``.
"""

from __future__ import annotations

import json
import os

from flask import Flask, request
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.tool_config import ToolConfDict

app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ.get("BARE_SECRET_KEY", "bench-bare-tool")
_settings = json.loads(open(os.environ["BARE_LTI_CONFIG"]).read())  # noqa: SIM115


def tool_conf() -> ToolConfDict:
    conf = ToolConfDict(
        {
            _settings["issuer"]: [
                {
                    "default": True,
                    "client_id": _settings["client_id"],
                    "auth_login_url": _settings["auth_login_url"],
                    "auth_token_url": _settings["auth_token_url"],
                    "key_set_url": None,
                    "key_set": _settings["key_set"],
                    "deployment_ids": [_settings["deployment_id"]],
                }
            ]
        }
    )
    conf.set_private_key(
        _settings["issuer"], _settings["tool_private_key"], client_id=_settings["client_id"]
    )
    return conf


@app.route("/healthz")
def healthz():
    return "ok"


@app.route("/lti/login", methods=["GET", "POST"])
def login():
    oidc = FlaskOIDCLogin(FlaskRequest(), tool_conf())
    return oidc.redirect(request.host_url.rstrip("/") + "/lti/launch")


@app.route("/lti/launch", methods=["POST"])
def launch():
    message_launch = FlaskMessageLaunch(FlaskRequest(), tool_conf())
    data = message_launch.get_launch_data()
    return f"launched {data['sub']}"
