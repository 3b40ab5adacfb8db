"""Typed reading of an id_token: every header field and claim is type-checked before use.

An id_token is hostile input until each field has the type the LTI spec gives it: a
header or body that is a JSON list, ``aud`` as a dict, integer roles or a context claim
that is a string must end as a 400 page with an ``lti_…`` code, never as an
``AttributeError`` deep in provisioning.  :func:`read_envelope` checks what is needed to
find the registration and verify the signature (before the signature is checked);
:func:`read_claims` turns the verified body into :class:`LaunchClaims`, which is all the
launch services ever read.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from app.i18n import N_
from app.lti.errors import LaunchRefused

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"

MAX_TOKEN_CHARS = 64 * 1024  # a real id_token is a few KB; refuse before decoding
MAX_ID_CHARS = 255  # issuer, client, deployment, sub, context and link ids (column sizes)
MAX_TEXT_CHARS = 1000  # names, titles, URLs
MAX_LIST_ITEMS = 100  # roles, scopes, audiences


def _bad(claim: str) -> LaunchRefused:
    return LaunchRefused(
        N_("The id_token's %(claim)s claim has the wrong type or size."),
        "lti_bad_claim",
        claim=claim.rsplit("/", 1)[-1],
    )


def _b64json(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error, RecursionError):
        raise LaunchRefused(N_("The id_token is not a JWT."), "lti_bad_token") from None


@dataclass(frozen=True)
class Envelope:
    """What may be read from an id_token before its signature is verified."""

    header: dict
    body: dict
    kid: str
    iss: str
    audiences: list[str]
    azp: str | None

    @property
    def client_id(self) -> str:
        """The client the token is for: ``azp`` when it is one of the audiences."""
        if self.azp is not None and self.azp in self.audiences:
            return self.azp
        return self.audiences[0]


def read_envelope(token: Any) -> Envelope:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise LaunchRefused(N_("The id_token is missing or too large."), "lti_bad_token")
    parts = token.split(".")
    if len(parts) != 3:
        raise LaunchRefused(N_("The id_token is not a JWT."), "lti_bad_token")
    header, body = _b64json(parts[0]), _b64json(parts[1])
    if not isinstance(header, dict) or not isinstance(body, dict):
        raise LaunchRefused(N_("The id_token is not a JWT."), "lti_bad_token")
    if header.get("alg") != "RS256":
        raise LaunchRefused(N_("The id_token must be signed with RS256."), "lti_bad_token")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_ID_CHARS:
        raise LaunchRefused(N_("The id_token has no key id."), "lti_bad_token")
    iss = _identifier(body, "iss")
    aud = body.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if not audiences or len(audiences) > MAX_LIST_ITEMS:
        raise _bad("aud")
    for audience in audiences:
        if not isinstance(audience, str) or not audience or len(audience) > MAX_ID_CHARS:
            raise _bad("aud")
    azp = body.get("azp")
    if azp is not None and (not isinstance(azp, str) or len(azp) > MAX_ID_CHARS):
        raise _bad("azp")
    for name in ("sub", "jti"):  # PyJWT checks their types too, as a signature error
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ID_CHARS):
            raise _bad(name)
    for name in ("iat", "exp", "nbf"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _bad(name)
    return Envelope(header, body, kid, iss, list(audiences), azp)


# --- the verified body --------------------------------------------------------------------


@dataclass(frozen=True)
class ContextClaim:
    id: str
    title: str | None
    label: str | None


@dataclass(frozen=True)
class AgsClaim:
    scope: list[str]
    lineitem: str | None
    lineitems: str | None


@dataclass(frozen=True)
class NrpsClaim:
    context_memberships_url: str
    service_versions: list[str]


@dataclass(frozen=True)
class DeepLinkSettings:
    deep_link_return_url: str
    accept_types: list[str]
    accept_multiple: bool | None
    title: str | None
    text: str | None
    data: str | None

    def as_dict(self) -> dict:
        """The settings in the shape pylti1p3's ``DeepLink`` reads (JSON-safe, stored
        in the launch store between the picker's requests)."""
        return {
            "deep_link_return_url": self.deep_link_return_url,
            "accept_types": list(self.accept_types),
            "accept_multiple": self.accept_multiple,
            "title": self.title,
            "text": self.text,
            "data": self.data,
        }


@dataclass(frozen=True)
class LaunchClaims:
    iss: str
    sub: str
    nonce: str
    message_type: str
    version: str
    deployment_id: str
    roles: list[str]
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    context: ContextClaim | None = None
    resource_link_id: str | None = None
    custom: dict[str, str] = field(default_factory=dict)
    ags: AgsClaim | None = None
    nrps: NrpsClaim | None = None
    deep_linking: DeepLinkSettings | None = None


def _identifier(body: dict, name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # some platforms send numeric ids (deployment_id "1" as 1)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_CHARS:
        raise _bad(name)
    return value.strip()


def _text(body: dict, name: str, limit: int = MAX_TEXT_CHARS) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(name)
    return value[:limit]


def _strings(value: Any, name: str, required: bool = False) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or len(value) > MAX_LIST_ITEMS:
        raise _bad(name)
    if not all(isinstance(item, str) and len(item) <= MAX_TEXT_CHARS for item in value):
        raise _bad(name)
    return list(value)


def _object(body: dict, name: str) -> dict | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(name)
    return value


def _url(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > MAX_TEXT_CHARS
        or not value.startswith(("http://", "https://"))
    ):
        raise _bad(name)
    return value


def _custom(body: dict) -> dict[str, str]:
    custom = _object(body, CLAIM + "custom") or {}
    result = {}
    for key, value in custom.items():
        if isinstance(value, dict | list) or len(str(value)) > MAX_TEXT_CHARS:
            raise _bad(CLAIM + "custom")
        result[str(key)[:100]] = "" if value is None else str(value)
    return result


def read_claims(body: dict) -> LaunchClaims:
    """The verified body as :class:`LaunchClaims`, or LaunchRefused(``lti_bad_claim``)."""
    context = None
    raw_context = _object(body, CLAIM + "context")
    if raw_context is not None:
        context_id = _identifier(raw_context, "id", required=False)
        if context_id:
            context = ContextClaim(
                context_id, _text(raw_context, "title", 255), _text(raw_context, "label", 255)
            )
    link = _object(body, CLAIM + "resource_link")
    resource_link_id = _identifier(link, "id", required=False) if link is not None else None
    ags = None
    raw_ags = _object(body, AGS)
    if raw_ags is not None:
        ags = AgsClaim(
            _strings(raw_ags.get("scope"), AGS),
            _url(raw_ags.get("lineitem"), AGS),
            _url(raw_ags.get("lineitems"), AGS),
        )
    nrps = None
    raw_nrps = _object(body, NRPS)
    if raw_nrps is not None:
        url = _url(raw_nrps.get("context_memberships_url"), NRPS)
        if url:
            nrps = NrpsClaim(url, _strings(raw_nrps.get("service_versions"), NRPS))
    deep_linking = None
    raw_dl = _object(body, DL_SETTINGS)
    if raw_dl is not None:
        multiple = raw_dl.get("accept_multiple")
        data = raw_dl.get("data")
        if multiple is not None and not isinstance(multiple, bool):
            raise _bad(DL_SETTINGS)
        if data is not None and (not isinstance(data, str) or len(data) > 4096):
            raise _bad(DL_SETTINGS)
        deep_linking = DeepLinkSettings(
            _url(raw_dl.get("deep_link_return_url"), DL_SETTINGS) or "",
            _strings(raw_dl.get("accept_types"), DL_SETTINGS),
            multiple,
            _text(raw_dl, "title", 200),
            _text(raw_dl, "text", 1000),
            data,
        )
    nonce = body.get("nonce")
    if not isinstance(nonce, str) or not nonce or len(nonce) > MAX_ID_CHARS:
        raise _bad("nonce")
    email = _text(body, "email", 254)
    return LaunchClaims(
        iss=_identifier(body, "iss"),
        sub=_identifier(body, "sub"),
        nonce=nonce,
        message_type=_identifier(body, CLAIM + "message_type"),
        version=_text(body, CLAIM + "version", 20) or "",
        deployment_id=_identifier(body, CLAIM + "deployment_id"),
        roles=_strings(body.get(CLAIM + "roles"), CLAIM + "roles", required=True),
        name=_text(body, "name", 200),
        given_name=_text(body, "given_name", 100),
        family_name=_text(body, "family_name", 100),
        email=email.strip().lower() or None if email else None,
        context=context,
        resource_link_id=resource_link_id,
        custom=_custom(body),
        ags=ags,
        nrps=nrps,
        deep_linking=deep_linking,
    )


def claims_to_json(claims: LaunchClaims) -> dict:
    """JSON-safe form, to keep a validated launch in the launch store (cookie-less step)."""
    from dataclasses import asdict

    return asdict(claims)


def claims_from_json(data: dict) -> LaunchClaims:
    """Inverse of :func:`claims_to_json` (the data was written by us)."""
    values = dict(data)
    if values.get("context"):
        values["context"] = ContextClaim(**values["context"])
    if values.get("ags"):
        values["ags"] = AgsClaim(**values["ags"])
    if values.get("nrps"):
        values["nrps"] = NrpsClaim(**values["nrps"])
    if values.get("deep_linking"):
        values["deep_linking"] = DeepLinkSettings(**values["deep_linking"])
    return LaunchClaims(**values)
