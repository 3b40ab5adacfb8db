"""The pylti1p3 side: tool configuration from the database, shared launch storage, and a
message launch that closes the gaps of the library (replays, aud/azp, alg, timestamps).

pylti1p3 validates the message; this module decides which registrations, deployments and
nonces exist.  Every failure is an :class:`pylti1p3.exception.LtiException` (turned into a
4xx page by the views), never a bare ``Exception``.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import jwt
from flask import current_app
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskRequest
from pylti1p3.deployment import Deployment
from pylti1p3.exception import LtiException
from pylti1p3.launch_data_storage.base import LaunchDataStorage
from pylti1p3.registration import Registration
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy import delete, select

from app.common.models import utcnow
from app.extensions import db
from app.lti.models import KeyState, LtiDeployment, LtiKey, LtiLaunchData, LtiPlatform


def N_(message: str) -> str:
    """Marks a message for the catalogue; it is translated where it is shown."""
    return message


class LaunchRefused(LtiException):
    """A launch refused for a reason worth telling the user (status and code attached)."""

    def __init__(self, message: str, code: str = "lti_refused", status: int = 400):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


# --- shared launch storage -----------------------------------------------------------


class LaunchStore:
    """Key → JSON value with expiry, shared by every worker (database, or Redis).

    ``take`` removes and returns a value atomically: a nonce or state can be consumed by
    exactly one request even when two workers receive the same id_token at once.
    """

    def __init__(self, redis_url: str | None = None):
        self._redis = None
        if redis_url:
            from redis import Redis

            self._redis = Redis.from_url(redis_url)

    def put(self, key: str, value: Any, ttl: int, new: bool = False) -> None:
        """Store ``value``; ``new`` says the key is fresh and random (no look-up needed)."""
        if self._redis is not None:
            self._redis.set("shuyuan:lti:" + key, json.dumps(value), ex=max(int(ttl), 1))
            return
        row = None if new else db.session.get(LtiLaunchData, key)
        if row is None:
            row = LtiLaunchData(key=key)
            db.session.add(row)
        row.value = value
        row.expires_at = utcnow() + timedelta(seconds=ttl)
        db.session.flush()

    def get(self, key: str) -> Any:
        if self._redis is not None:
            raw = self._redis.get("shuyuan:lti:" + key)
            return json.loads(raw) if raw is not None else None
        row = db.session.get(LtiLaunchData, key)
        if row is None or row.expires_at < utcnow():
            return None
        return row.value

    def take(self, key: str) -> Any:
        """Remove ``key``; return its value if this call removed a live entry, else None."""
        if self._redis is not None:
            raw = self._redis.getdel("shuyuan:lti:" + key)
            return json.loads(raw) if raw is not None else None
        # One DELETE ... RETURNING: of two workers taking the same key, exactly one gets
        # the row back (PostgreSQL and SQLite >= 3.35 both support it).
        found = db.session.execute(
            delete(LtiLaunchData)
            .where(LtiLaunchData.key == key)
            .returning(LtiLaunchData.value, LtiLaunchData.expires_at),
            execution_options={"synchronize_session": False},
        ).first()
        if found is None or found.expires_at < utcnow():
            return None
        return found.value

    def purge_expired(self) -> int:
        if self._redis is not None:
            return 0
        result = db.session.execute(
            delete(LtiLaunchData).where(LtiLaunchData.expires_at < utcnow())
        )
        return result.rowcount or 0


def launch_store() -> LaunchStore:
    app = current_app._get_current_object()
    store = app.extensions.get("shuyuan_lti_store")
    if store is None:
        store = LaunchStore(app.config.get("LTI_REDIS_URL") or app.config.get("REDIS_URL"))
        app.extensions["shuyuan_lti_store"] = store
    return store


class SharedLaunchDataStorage(LaunchDataStorage):
    """pylti1p3's launch data storage on :class:`LaunchStore`.

    Keys are random (launch ids), so no per-browser session prefix is needed; launches
    therefore work without any cookie.
    """

    def get_session_cookie_name(self):
        return None

    def can_set_keys_expiration(self) -> bool:
        return True

    def get_value(self, key: str):
        return launch_store().get(self._prepare_key(key))

    def set_value(self, key: str, value, exp: int | None = None) -> None:
        launch_store().put(self._prepare_key(key), value, exp or 86400)

    def check_value(self, key: str) -> bool:
        return launch_store().get(self._prepare_key(key)) is not None


# --- tool configuration ---------------------------------------------------------------


def signing_key() -> LtiKey:
    """The active key, creating the first one on first use."""
    key = (
        db.session.execute(
            select(LtiKey)
            .filter_by(state=KeyState.ACTIVE)
            .order_by(LtiKey.activated_at.desc(), LtiKey.id.desc())
        )
        .scalars()
        .first()
    )
    if key is None:
        key = bootstrap_key()
    return key


def bootstrap_key() -> LtiKey:
    """Create and commit the first tool key in its own transaction, so that a platform
    fetching our JWKS while this request is still open (it may be verifying the very
    token we are about to sign) already finds it.  Returns a detached row (this
    request's own snapshot may not see it yet)."""
    from sqlalchemy.orm import Session

    from app.lti.services import new_key_row

    with Session(db.engine, expire_on_commit=False) as own:
        key = own.execute(select(LtiKey).filter_by(state=KeyState.ACTIVE)).scalars().first()
        if key is None:
            key = new_key_row(KeyState.ACTIVE)
            own.add(key)
            own.commit()
        own.expunge(key)
    return key


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
        key = signing_key()
        registration.set_tool_private_key(key.private_pem).set_tool_public_key(_public_pem(key))
    if platform.auth_audience:
        registration.set_auth_audience(platform.auth_audience)
    return registration


_PUBLIC_PEMS: dict[str, str] = {}


def _public_pem(key: LtiKey) -> str:
    """The public half of a tool key, derived once per process (a pure function of the
    immutable key row; loading an RSA private key costs far more than a launch)."""
    cached = _PUBLIC_PEMS.get(key.kid)
    if cached is None:
        from cryptography.hazmat.primitives import serialization

        private = serialization.load_pem_private_key(
            key.private_pem.encode(), password=None, unsafe_skip_rsa_key_validation=True
        )
        cached = (
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        _PUBLIC_PEMS[key.kid] = cached
    return cached


def find_platform(issuer: str | None, client_id: str | None) -> LtiPlatform | None:
    if not issuer:
        return None
    statement = select(LtiPlatform).filter_by(issuer=issuer, active=True)
    if client_id:
        statement = statement.filter_by(client_id=client_id)
    rows = list(db.session.execute(statement.order_by(LtiPlatform.id)).scalars())
    # Without a client_id the issuer must be unambiguous.
    if len(rows) != 1 and not client_id:
        return None
    return rows[0] if rows else None


class DatabaseToolConf(ToolConfAbstract):
    """pylti1p3 tool configuration read from ``lti_platforms`` / ``lti_deployments``.

    One issuer may have many client ids (Canvas), so the "many clients" look-ups are
    used; an unknown issuer or client raises ``LtiException`` (never a bare Exception).
    """

    def __init__(self):
        self.platform: LtiPlatform | None = None
        self.deployment: LtiDeployment | None = None

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def find_registration_by_issuer(self, iss: str, *args, **kwargs) -> Registration:
        return self.find_registration_by_params(iss, None)

    def find_registration_by_params(
        self, iss: str, client_id: str | None, *args, **kwargs
    ) -> Registration:
        platform = find_platform(iss, client_id)
        if platform is None:
            raise LaunchRefused(
                N_(
                    "This learning platform is not registered with Shuyuan "
                    "(unknown issuer or client id)."
                ),
                "lti_unknown_platform",
            )
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
        row = db.session.execute(
            select(LtiDeployment).filter_by(
                platform_id=platform.id, deployment_id=str(deployment_id)
            )
        ).scalar_one_or_none()
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
        from app.lti.services import jwks

        return jwks()


# --- message launch -------------------------------------------------------------------

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


class ShuyuanMessageLaunch(FlaskMessageLaunch):
    """pylti1p3's launch with the checks the library leaves out.

    Order: state (issued by us, bound to this browser by cookie or platform storage) →
    JWT format → header (kid, RS256 only) → registration → signature with exp/iat/nbf
    required → aud/azp → nonce issued for this state and consumed once → deployment
    (known and approved) → message claims.
    """

    state_record: dict | None = None
    cookie_less: bool = False

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
            self._validate_header()
            self.validate_registration()
            self.validate_jwt_signature()
            self._validate_audience()
            self.validate_nonce()
            self.validate_deployment()
            self.validate_message()
            self.save_launch_data()
            return self
        except Exception:
            self._validated = False
            raise

    def validate_state(self):
        state = self._get_request_param("state")
        if not state:
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
        elif record.get("storage_target") and not cookie:
            # Cookie-less: the launch page compares the state kept in platform storage
            # before the launch completes (see views.launch_continue).
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

    def _validate_header(self):
        header = self._jwt.get("header", {})
        if header.get("alg") != "RS256":
            raise LaunchRefused(N_("The id_token must be signed with RS256."), "lti_bad_token")
        if not header.get("kid"):
            raise LaunchRefused(N_("The id_token has no key id."), "lti_bad_token")

    def validate_jwt_signature(self):
        try:
            return super().validate_jwt_signature()
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
        cached = launch_store().get(cache_key)
        if cached is not None:
            self._registration.set_key_set(cached)
            try:
                return super().get_public_key()
            except LtiException:
                # Unknown kid: the platform may have rotated its keys; fetch once more.
                self._registration.set_key_set(None)
        result = super().get_public_key()
        key_set = self._registration.get_key_set()
        if key_set is not None:
            ttl = current_app.config.get("LTI_JWKS_CACHE_SECONDS", 300)
            launch_store().put(cache_key, key_set, ttl)
        return result

    def save_launch_data(self):
        # pylti1p3 would keep the whole id_token body for MessageLaunch.from_cache; the
        # launch is finished in this request (or a cookie-less continuation that stores
        # its own record), so nothing is written here.
        return self

    def _validate_audience(self):
        body = self._jwt.get("body", {})
        client_id = self._registration.get_client_id()
        aud = body.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if client_id not in audiences:
            raise LaunchRefused(
                N_("The id_token is not meant for this tool (aud)."), "lti_bad_audience"
            )
        azp = body.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != client_id:
            raise LaunchRefused(
                N_("The id_token is not meant for this tool (azp)."), "lti_bad_audience"
            )
        now = time.time()
        iat = body.get("iat") or 0
        if iat > now + 60:
            raise LaunchRefused(N_("The id_token is not yet valid."), "lti_not_yet_valid")
        if iat < now - current_app.config.get("LTI_MAX_TOKEN_AGE", 3600):
            raise LaunchRefused(N_("The id_token is too old."), "lti_expired")
        return self

    def get_client_id(self) -> str:
        body = self._jwt.get("body", {})
        aud = body.get("aud")
        if isinstance(aud, list):
            azp = body.get("azp")
            return azp if azp in aud else (aud[0] if aud else "")
        return aud

    def validate_nonce(self):
        nonce = self._jwt.get("body", {}).get("nonce")
        if not nonce:
            raise LaunchRefused(N_("The id_token has no nonce."), "lti_bad_nonce")
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
        return self

    def validate_deployment(self):
        deployment_id = self._jwt.get("body", {}).get(CLAIM + "deployment_id")
        if not deployment_id:
            raise LaunchRefused(N_("The id_token has no deployment_id."), "lti_bad_token")
        return super().validate_deployment()

    def validate_message(self):
        try:
            return super().validate_message()
        except LaunchRefused:
            raise
        except LtiException as exc:
            raise LaunchRefused(
                f"The launch message is not valid: {exc}", "lti_bad_message"
            ) from exc

    # Access for views/services.
    def body(self) -> dict:
        return dict(self._jwt.get("body", {}))

    @property
    def platform(self) -> LtiPlatform:
        return self._tool_config.platform

    @property
    def deployment(self) -> LtiDeployment:
        return self._tool_config.deployment


def flask_request(**kwargs) -> FlaskRequest:
    return FlaskRequest(**kwargs)


def decode_unverified(token: str) -> dict:
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return {}
