"""OIDC login initiation (third-party initiated login): state, nonce, and the browser
binding of the cookie-less path."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlparse

from app.i18n import N_
from app.lti.errors import LaunchRefused
from app.lti.store import launch_store
from app.lti.tool import registered_platform

STATE_TTL = 600

# Lengths of what a login may carry: the hints are echoed into the redirect to the
# platform, and a proxy refuses (or a worker buffers) a response header of a megabyte.
# Real hints are short (a user id; Canvas's lti_message_hint is a JWT of ~1 KB).
MAX_PARAM_CHARS = {
    "iss": 255,
    "client_id": 255,
    "lti_deployment_id": 255,
    "login_hint": 1024,
    "lti_message_hint": 4096,
    "target_link_uri": 2048,
    "lti_storage_target": 100,
}


@dataclass
class LoginStart:
    state: str
    nonce: str
    auth_url: str
    storage_target: str | None
    auth_origin: str
    # Put into platform storage by the login page, read back by the cookie-less launch
    # page and checked by the server: proof that the continuing page runs in the browser
    # that started the login (never sent to the platform, never in the launch page).
    binding: str | None = None


def binding_digest(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest()


def _param(params: Mapping, name: str) -> str:
    value = params.get(name) or ""
    if not isinstance(value, str) or len(value) > MAX_PARAM_CHARS[name]:
        raise LaunchRefused(
            N_("The login request's %(name)s is too long."), "lti_bad_login", name=name
        )
    return value.strip()


def sweep_is_due() -> bool:
    """Expired states and nonces are swept by one login in 500 (and hourly by the
    scheduler's ``lti-purge`` job), so a deployment without the scheduler still sweeps."""
    return secrets.randbelow(500) == 0


def begin_login(params: Mapping, launch_url: str) -> LoginStart:
    """Validate a third-party initiated login and prepare the redirect to the platform.

    State and nonce are stored in the shared launch store (any worker can finish the
    launch) with the platform (issuer + client) they were issued for; the caller binds
    the state to the browser by a cookie or, when the platform offers
    ``lti_storage_target``, through platform storage.
    """
    values = {name: _param(params, name) for name in MAX_PARAM_CHARS}
    if not values["iss"]:
        raise LaunchRefused(N_("The login request has no issuer (iss)."), "lti_bad_login")
    if not values["login_hint"]:
        raise LaunchRefused(N_("The login request has no login_hint."), "lti_bad_login")
    platform = registered_platform(values["iss"], values["client_id"] or None)
    state = "state-" + uuid.uuid4().hex
    nonce = secrets.token_urlsafe(24)
    storage_target = values["lti_storage_target"] or None
    binding = secrets.token_urlsafe(24) if storage_target else None
    store = launch_store()
    store.relax_durability()
    if sweep_is_due():
        store.purge_expired()
    # State and nonce in one INSERT, or one Redis round trip.
    store.put_many(
        {
            "state-" + state: {
                "nonce": nonce,
                "platform_id": platform.id,
                "storage_target": storage_target,
                "binding": binding_digest(binding) if binding else None,
            },
            "nonce-" + nonce: {"state": state},
        },
        STATE_TTL,
    )
    auth = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": launch_url,
        "state": state,
        "nonce": nonce,
        "login_hint": values["login_hint"],
    }
    if values["lti_message_hint"]:
        auth["lti_message_hint"] = values["lti_message_hint"]
    separator = "&" if "?" in platform.auth_login_url else "?"
    parsed = urlparse(platform.auth_login_url)
    return LoginStart(
        state,
        nonce,
        platform.auth_login_url + separator + urlencode(auth),
        storage_target,
        f"{parsed.scheme}://{parsed.netloc}",
        binding,
    )
