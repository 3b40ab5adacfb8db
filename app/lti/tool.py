"""The pylti1p3 side: tool configuration from the database and a message launch that
closes the gaps of the library (typed claims, replays, aud/azp, alg, timestamps, the
state bound to the platform it was issued for).

pylti1p3 validates the message; this module decides which registrations, deployments and
nonces exist.  Every failure is a :class:`app.lti.errors.LaunchRefused` (a 4xx page with
an ``lti_…`` code), never a bare ``Exception``.
"""

from __future__ import annotations

import binascii
import json
import threading
import time

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from flask import current_app
from jwt.algorithms import RSAAlgorithm
from jwt.api_jws import PyJWS
from jwt.exceptions import DecodeError, InvalidKeyError
from jwt.utils import base64url_decode, base64url_encode
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskRequest
from pylti1p3.deployment import Deployment
from pylti1p3.exception import LtiException
from pylti1p3.registration import Registration
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.accounts.models import School
from app.extensions import db
from app.i18n import N_
from app.lti.claims import (
    CLAIM,
    MAX_ID_CHARS,
    Envelope,
    LaunchClaims,
    read_claims,
    read_envelope,
)
from app.lti.errors import LaunchRefused
from app.lti.models import LtiDeployment, LtiPlatform
from app.lti.registry_cache import cached_row
from app.lti.services import keys
from app.lti.store import SharedLaunchDataStorage, launch_store

_BASE64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class _JWS(PyJWS):
    """PyJWT's JWS with its segment check done by ``bytes.translate``.

    PyJWT checks that every byte of the id_token's three segments is of the base64url
    alphabet with a Python generator, one step per byte: about 2,200 steps and 0.05 ms
    of CPU per launch, 12 % of a profiled returning login + launch (issue 14, sixth
    pass).  ``translate(None, alphabet)`` deletes the alphabet's bytes in C; anything
    left is a byte outside it, the same test.  Everything else is PyJWT's code as of
    2.15 (padding rules, the round trip through encode that refuses non-canonical
    segments), and ``tests/lti/test_attacks.py`` compares the two on edge cases."""

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        stripped = segment.rstrip(b"=")
        padding = len(segment) - len(stripped)
        if padding > 2 or (padding and len(segment) % 4 != 0):
            raise DecodeError(f"Invalid {name} padding")
        if len(stripped) % 4 == 1 or stripped.translate(None, _BASE64URL_ALPHABET):
            raise DecodeError(f"Invalid {name} padding")
        try:
            decoded = base64url_decode(stripped)
        except (TypeError, binascii.Error) as err:
            raise DecodeError(f"Invalid {name} padding") from err
        if base64url_encode(decoded) != stripped:
            raise DecodeError(f"Invalid {name} padding")
        return decoded


_JWT = jwt.PyJWT()
_JWT._jws = _JWS()


def registration_for(platform: LtiPlatform, with_keys: bool = True) -> Registration:
    """pylti1p3's registration; the tool's signing key only when the caller signs
    (deep linking, services), not for validating a launch."""
    registration = (
        Registration()
        .set_issuer(platform.issuer)
        .set_client_id(platform.client_id)
        .set_auth_login_url(platform.auth_login_url)
        .set_auth_token_url(platform.auth_token_url)
        .set_key_set_url(platform.key_set_url)
    )
    if with_keys:
        key = keys.signing_key()
        registration.set_tool_private_key(key.private_pem).set_tool_public_key(keys.public_pem(key))
    if platform.auth_audience:
        registration.set_auth_audience(platform.auth_audience)
    return registration


# Platform key sets (public keys) kept in this process for a short while in front of the
# shared cache in the launch store, which costs a database read per launch otherwise
# (issue 14).  An unknown kid still goes to the platform (get_public_key), so a key
# rotation is seen at once; the memo only saves reads of a key set that works.
_JWKS_MEMO: dict[str, tuple[float, dict]] = {}
_JWKS_MEMO_LOCK = threading.Lock()


def _jwks_memo_get(key: str) -> dict | None:
    seconds = current_app.config.get("LTI_JWKS_MEMO_SECONDS", 60)
    with _JWKS_MEMO_LOCK:
        entry = _JWKS_MEMO.get(key)
    if entry is None or time.monotonic() - entry[0] > seconds:
        return None
    return entry[1]


def _jwks_memo_put(key: str, key_set: dict) -> None:
    with _JWKS_MEMO_LOCK:
        if len(_JWKS_MEMO) > 1000:  # one entry per platform key set URL; bounded anyway
            _JWKS_MEMO.clear()
        _JWKS_MEMO[key] = (time.monotonic(), key_set)


def find_platform(
    issuer: str | None, client_id: str | None, also: tuple[tuple, ...] = ()
) -> LtiPlatform | None:
    """The active platform of ``issuer`` (and ``client_id``), or None; cached on Redis
    (app/lti/registry_cache.py; ``also``: cache entries read in the same round trip)."""
    if not issuer:
        return None
    return cached_row(
        ("platform", issuer, client_id or None), lambda: _read_platform(issuer, client_id), also
    )


def _deployment_key(platform_id, deployment_id: str) -> tuple:
    return ("deployment", platform_id, deployment_id)


def _read_platform(issuer: str, client_id: str | None) -> LtiPlatform | None:
    statement = select(LtiPlatform).filter_by(issuer=issuer, active=True)
    if client_id:
        statement = statement.filter_by(client_id=client_id)
    rows = list(db.session.execute(statement.order_by(LtiPlatform.id)).scalars())
    # Without a client_id the issuer must be unambiguous.
    if len(rows) != 1 and not client_id:
        return None
    return rows[0] if rows else None


def registered_platform(
    issuer: str | None, client_id: str | None, also: tuple[tuple, ...] = ()
) -> LtiPlatform:
    """:func:`find_platform`, refusing the login or launch of an unknown platform."""
    platform = find_platform(issuer, client_id, also)
    if platform is None:
        raise LaunchRefused(
            N_(
                "This learning platform is not registered with Shuyuan "
                "(unknown issuer or client id)."
            ),
            "lti_unknown_platform",
        )
    return platform


class DatabaseToolConf(ToolConfAbstract):
    """pylti1p3 tool configuration read from ``lti_platforms`` / ``lti_deployments``.

    One issuer may have many client ids (Canvas), so the "many clients" look-ups are
    used; an unknown issuer or client raises ``LtiException`` (never a bare Exception).
    """

    def __init__(self):
        self.platform: LtiPlatform | None = None
        self.deployment: LtiDeployment | None = None
        # Cache entries the launch will want after the platform's (read with it).
        self.read_ahead: tuple[tuple, ...] = ()

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def find_registration_by_issuer(self, iss: str, *args, **kwargs) -> Registration:
        return self.find_registration_by_params(iss, None)

    def find_registration_by_params(
        self, iss: str, client_id: str | None, *args, **kwargs
    ) -> Registration:
        platform = registered_platform(iss, client_id, self.read_ahead)
        self.platform = platform
        return registration_for(platform, with_keys=False)

    def find_deployment(self, iss: str, deployment_id: str) -> Deployment | None:
        return self.find_deployment_by_params(iss, deployment_id, None)

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str | None, *args, **kwargs
    ) -> Deployment | None:
        platform = self.platform or find_platform(iss, client_id)
        if platform is None:
            raise LaunchRefused(N_("Unknown issuer."), "lti_unknown_platform")
        # The launch provisions into the deployment's school and district and the xAPI
        # statement names them: read with the deployment (one statement, not three).
        platform_id = platform.id

        def read() -> LtiDeployment | None:
            return db.session.execute(
                select(LtiDeployment)
                .options(
                    joinedload(LtiDeployment.school).joinedload(School.district),
                    joinedload(LtiDeployment.district),
                )
                .filter_by(platform_id=platform_id, deployment_id=str(deployment_id))
            ).scalar_one_or_none()

        row = cached_row(_deployment_key(platform_id, str(deployment_id)), read)
        if row is None:
            raise LaunchRefused(
                N_("This deployment is not registered with Shuyuan."), "lti_unknown_deployment", 403
            )
        if not row.approved:
            raise LaunchRefused(
                N_("This deployment is waiting for approval by a Shuyuan administrator."),
                "lti_deployment_not_approved",
                403,
            )
        self.deployment = row
        return Deployment().set_deployment_id(row.deployment_id)

    def get_jwks(self, iss=None, client_id=None, **kwargs):
        return keys.jwks()


# --- message launch -------------------------------------------------------------------


class ShuyuanMessageLaunch(FlaskMessageLaunch):
    """pylti1p3's launch with the checks the library leaves out.

    Order: state (issued by us, bound to this browser by cookie or platform storage) →
    JWT format, header and routing claims type-checked (:func:`read_envelope`) →
    registration, which must be the platform the state was issued for → signature with
    exp/iat required → aud/azp → every claim type-checked (:func:`read_claims`) →
    deployment (known and approved) → message claims → nonce issued for this state and
    consumed once (last, so a token refused for any other reason can be retried by its
    own browser; a consumed nonce is never restored, see ``nonce_consumed``).
    """

    state_record: dict | None = None
    cookie_less: bool = False
    nonce_consumed: bool = False
    envelope: Envelope | None = None
    claims: LaunchClaims | None = None

    def __init__(self, request, tool_config, **kwargs):
        super().__init__(
            request, tool_config, launch_data_storage=SharedLaunchDataStorage(), **kwargs
        )
        self._jwt_verify_options = {"verify_aud": False, "require": ["exp", "iat"]}

    def validate(self):
        if self._restored:
            raise LtiException("Can't validate restored launch")
        self._validated = True
        try:
            self.validate_state()
            self.validate_jwt_format()
            self.validate_registration()
            self.validate_jwt_signature()
            self._validate_audience()
            self.claims = read_claims(self._jwt["body"])
            self.validate_deployment()
            self.validate_message()
            self.validate_nonce()
            return self
        except Exception:
            self._validated = False
            raise

    def validate_state(self):
        state = self._get_request_param("state")
        if not state or not isinstance(state, str) or len(state) > 100:
            raise LaunchRefused(
                N_("The launch has no state: start it again from your course."), "lti_missing_state"
            )
        record = launch_store().get("state-" + state)
        if record is None:
            raise LaunchRefused(
                N_("The launch state is unknown or expired: start it again from your course."),
                "lti_bad_state",
            )
        cookie = self._cookie_service.get_cookie(state)
        if cookie == state:
            self.cookie_less = False
        elif record.get("storage_target") and record.get("binding") and not cookie:
            # Cookie-less: the launch page proves with the binding kept in platform
            # storage that it runs in the browser that logged in (views.launch_continue).
            self.cookie_less = True
        else:
            raise LaunchRefused(
                N_(
                    "The launch state does not match this browser. Your browser may block "
                    "cookies in frames: open the link in a new window."
                ),
                "lti_state_mismatch",
            )
        self.state_record = record
        return self

    def validate_jwt_format(self):
        token = self._get_request_param("id_token")
        if not token:
            raise LaunchRefused(N_("The launch has no id_token."), "lti_bad_token")
        self.envelope = read_envelope(token)
        self._jwt = {"header": self.envelope.header, "body": self.envelope.body}
        return self

    def validate_registration(self):
        # The deployment this launch names, for the platform its state was issued for
        # (which the check below requires), read from the cache with the platform: one
        # round trip (the token is not verified yet: only a cache key is made of it).
        deployment_id = self.envelope.body.get(CLAIM + "deployment_id")
        if isinstance(deployment_id, int) and not isinstance(deployment_id, bool):
            deployment_id = str(deployment_id)  # as read_claims reads it
        if isinstance(deployment_id, str) and 0 < len(deployment_id) <= MAX_ID_CHARS:
            self._tool_config.read_ahead = (
                _deployment_key(self.state_record.get("platform_id"), deployment_id.strip()),
            )
        super().validate_registration()
        # A state is issued for one registration (issuer + client): a token for another
        # client of the same issuer cannot finish it.
        if self.platform.id != self.state_record.get("platform_id"):
            raise LaunchRefused(
                N_("The launch state was issued for another registration of this platform."),
                "lti_state_mismatch",
            )
        return self

    def get_iss(self) -> str:
        return self.envelope.iss

    def get_client_id(self) -> str:
        return self.envelope.client_id

    def validate_jwt_signature(self):
        # pylti1p3's own, with PyJWT's module-level decoder replaced by :data:`_JWT`.
        try:
            public_key, key_alg = self.get_public_key()
            try:
                _JWT.decode(
                    self._get_id_token(),
                    public_key,
                    algorithms=[key_alg],
                    options=self._jwt_verify_options,
                )
            except jwt.InvalidTokenError as e:
                raise LtiException(f"Can't decode id_token: {e}") from e
            return self
        except LtiException as exc:
            message = str(exc)
            if "expired" in message.lower():
                raise LaunchRefused(N_("The id_token has expired."), "lti_expired") from exc
            if (
                "not yet valid" in message.lower()
                or "immature" in message.lower()
                or "iat" in message.lower()
            ):
                raise LaunchRefused(
                    N_("The id_token is not yet valid."), "lti_not_yet_valid"
                ) from exc
            raise LaunchRefused(
                N_("The id_token signature could not be verified."), "lti_bad_signature"
            ) from exc

    def get_public_key(self):
        """The platform's key for this token, from the shared JWKS cache when it has the
        token's kid, else fetched (and cached for every worker)."""
        cache_key = "platform-jwks-" + (self._registration.get_key_set_url() or "")
        cached = _jwks_memo_get(cache_key)
        if cached is None:
            cached = launch_store().get(cache_key)
            if _is_key_set(cached):
                _jwks_memo_put(cache_key, cached)
        if _is_key_set(cached):
            self._registration.set_key_set(cached)
            try:
                return self._token_key(cached)
            except LtiException:
                # Unknown kid: the platform may have rotated its keys; fetch once more.
                self._registration.set_key_set(None)
        key_set = self.fetch_public_key(self._registration.get_key_set_url())
        if not _is_key_set(key_set):
            raise LaunchRefused(
                N_("The platform's public keys could not be read."), "lti_bad_signature"
            )
        self._registration.set_key_set(key_set)
        result = self._token_key(key_set)
        ttl = current_app.config.get("LTI_JWKS_CACHE_SECONDS", 300)
        launch_store().put(cache_key, key_set, ttl)
        _jwks_memo_put(cache_key, key_set)
        return result

    def _token_key(self, key_set: dict):
        """(public key, alg) of the key set's key for this token's kid, as pylti1p3's
        ``get_public_key`` finds it — but the loaded key object, made once per key (a
        JWK's content is the key: a rotated key is another entry), instead of the JWK
        converted to PEM and the PEM parsed again on every launch (0.15 ms)."""
        header = self._jwt.get("header", {})
        kid, alg = header.get("kid"), header.get("alg")
        if not kid or not alg:
            raise LtiException("JWT KID or ALG not found")
        for key in key_set["keys"]:
            if key.get("kid") == kid and key.get("alg", "RS256") == alg:
                return _loaded_key(key), alg
        raise LtiException("Unable to find public key")

    def save_launch_data(self):
        # pylti1p3 would keep the whole id_token body for MessageLaunch.from_cache; the
        # launch is finished in this request (or a cookie-less continuation that stores
        # its own record), so nothing is written here.
        return self

    def _validate_audience(self):
        envelope = self.envelope
        client_id = self._registration.get_client_id()
        if client_id not in envelope.audiences:
            raise LaunchRefused(
                N_("The id_token is not meant for this tool (aud)."), "lti_bad_audience"
            )
        if (len(envelope.audiences) > 1 or envelope.azp is not None) and envelope.azp != client_id:
            raise LaunchRefused(
                N_("The id_token is not meant for this tool (azp)."), "lti_bad_audience"
            )
        now = time.time()
        iat = envelope.body.get("iat") or 0
        if iat > now + 60:
            raise LaunchRefused(N_("The id_token is not yet valid."), "lti_not_yet_valid")
        if iat < now - current_app.config.get("LTI_MAX_TOKEN_AGE", 3600):
            raise LaunchRefused(N_("The id_token is too old."), "lti_expired")
        return self

    def validate_nonce(self):
        nonce = self.claims.nonce
        if self.state_record.get("nonce") != nonce:
            issued = launch_store().get("nonce-" + nonce)
            if issued is None:
                raise LaunchRefused(
                    N_("The id_token's nonce was never issued, or was already used."),
                    "lti_bad_nonce",
                )
            raise LaunchRefused(
                N_("The id_token's nonce belongs to another launch."), "lti_bad_nonce"
            )
        if launch_store().take("nonce-" + nonce) is None:
            raise LaunchRefused(
                N_("This launch was already used (replayed id_token)."), "lti_replay"
            )
        self.nonce_consumed = True
        return self

    def validate_deployment(self):
        self._tool_config.find_deployment_by_params(
            self.envelope.iss, self.claims.deployment_id, self.envelope.client_id
        )
        return self

    def validate_message(self):
        try:
            return super().validate_message()
        except LaunchRefused:
            raise
        except LtiException as exc:
            raise LaunchRefused(
                N_("The launch message is not valid: %(reason)s"),
                "lti_bad_message",
                reason=str(exc)[:200],
            ) from exc
        except (AttributeError, TypeError) as exc:
            # pylti1p3's validators read optional claims as dicts; an explicit null
            # where an object belongs (typed as absent by read_claims) trips them.
            raise LaunchRefused(
                N_("The launch message is not valid: %(reason)s"),
                "lti_bad_message",
                reason="malformed claim",
            ) from exc

    @property
    def platform(self) -> LtiPlatform:
        return self._tool_config.platform

    @property
    def deployment(self) -> LtiDeployment:
        return self._tool_config.deployment


_KEYS: dict[str, object] = {}  # JWK (canonical JSON) -> loaded public key
_KEYS_LOCK = threading.Lock()


def _loaded_key(jwk: dict):
    text = json.dumps(jwk, sort_keys=True)
    with _KEYS_LOCK:
        key = _KEYS.get(text)
    if key is None:
        try:
            key = RSAAlgorithm.from_jwk(jwk)  # the envelope admits RS256 only
        except (InvalidKeyError, ValueError, TypeError, KeyError) as exc:
            raise LtiException("Can't convert JWT key to PEM format") from exc
        if isinstance(key, RSAPrivateKey):  # a key set that publishes "d" by mistake
            key = key.public_key()
        with _KEYS_LOCK:
            if len(_KEYS) > 1000:  # a few keys per platform; bounded anyway
                _KEYS.clear()
            _KEYS[text] = key
    return key


def _is_key_set(value) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("keys"), list)
        and all(isinstance(key, dict) for key in value["keys"])
    )


def flask_request(**kwargs) -> FlaskRequest:
    return FlaskRequest(**kwargs)
