"""Ed25519 instance keys and HTTP Message Signatures (RFC 9421) on feeds and requests.

Signing and verifying are done by the ``http-message-signatures`` library; this module
only chooses what is covered and where keys come from:

- responses (feed pages) cover ``@status``, ``content-type`` and ``content-digest``
  (RFC 9530, so the body is signed) with the tag ``shuyuan-feed``;
- requests (subscription requests, feed fetches) cover ``@method``, ``@target-uri``,
  ``content-digest`` and the ``shuyuan-origin`` header, tag ``shuyuan-request``.

A peer's public keys are read from ``<origin>/.well-known/shuyuan-keys`` — only for an
origin on the ``SHARING_PEERS`` allow-list — and remembered; a signature made with any
other key is refused ("wrong key").
"""

from __future__ import annotations

import datetime
import hashlib
import logging

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from flask import current_app
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.common.models import utcnow
from app.common.transaction import savepoint
from app.extensions import db
from app.sharing.models import InstanceKey, PeerKey

log = logging.getLogger(__name__)

FEED_TAG = "shuyuan-feed"
REQUEST_TAG = "shuyuan-request"
RESPONSE_COMPONENTS = ("@status", "content-type", "content-digest")
REQUEST_COMPONENTS = ("@method", "@target-uri", "content-digest", "shuyuan-origin")
WELL_KNOWN = "/.well-known/shuyuan-keys"


class FederationRefused(Exception):
    """A peer or a feed was refused; ``reason`` says why (logged, stored, shown)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def normalise_origin(origin: str) -> str:
    return (origin or "").rstrip("/")


def allowed_origin(origin) -> str:
    """The origin if it is on the allow-list; refused otherwise (never fetched)."""
    if not isinstance(origin, str):
        raise FederationRefused("origin is not on the allow-list")
    clean = normalise_origin(origin)
    peers = {normalise_origin(p) for p in current_app.config.get("SHARING_PEERS") or []}
    if clean not in peers:
        raise FederationRefused(f"origin {clean[:100]!r} is not on the allow-list")
    return clean


def own_origin() -> str:
    return normalise_origin(current_app.config["SHARING_ORIGIN"])


# --- own keys ------------------------------------------------------------------------------


def _new_key_row() -> dict:
    private = ed25519.Ed25519PrivateKey.generate()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return {
        "kid": hashlib.sha256(public_pem.encode()).hexdigest()[:32],
        "private_pem": private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "public_pem": public_pem,
        "active": True,
        "created_at": utcnow(),
    }


def create_key() -> InstanceKey:
    """A new signing key in the caller's unit of work (CLI rotation)."""
    key = InstanceKey(**_new_key_row())
    db.session.add(key)
    db.session.flush()
    return key


def ensure_key() -> None:
    """Make sure a signing key exists and is *committed*: a peer verifies our signature
    by reading our well-known URL, which another worker serves from the database, so a
    key still inside this request's transaction would be invisible to it.  Call before
    the unit of work writes anything (on SQLite a writer holds the one write lock)."""
    # no_autoflush: pending changes of the request (a token's last-use time) must not be
    # flushed here, or on SQLite this session would hold the write lock that the
    # separate connection below then waits for in vain.
    with db.session.no_autoflush:
        exists = db.session.execute(select(InstanceKey.id).filter_by(active=True).limit(1)).first()
    if exists is None:
        with db.engine.begin() as connection:
            connection.execute(InstanceKey.__table__.insert().values(**_new_key_row()))


def signing_key() -> InstanceKey:
    """The newest active key."""
    key = db.session.execute(
        select(InstanceKey).filter_by(active=True).order_by(InstanceKey.id.desc()).limit(1)
    ).scalar_one_or_none()
    if key is None:
        ensure_key()
        return signing_key()
    return key


def published_keys() -> dict:
    keys = db.session.execute(
        select(InstanceKey).filter_by(active=True).order_by(InstanceKey.id)
    ).scalars()
    return {
        "origin": own_origin(),
        "keys": [{"kid": k.kid, "alg": "ed25519", "public_pem": k.public_pem} for k in keys],
    }


class _OutgoingResponse:
    """A Flask response in the shape the signer reads (a plain header mapping)."""

    def __init__(self, response):
        self.status_code = response.status_code
        self.headers = {"Content-Type": response.headers["Content-Type"]}


# Loaded signers are kept per key id: parsing the PEM and building the signer on every
# feed page was a measurable part of a sync (bench/sharing_profile.py).  The newest key
# is still looked up each time (two columns), so a rotation takes effect at once.
_SIGNERS: dict[str, HTTPMessageSigner] = {}


def _signer() -> tuple[str, HTTPMessageSigner]:
    row = db.session.execute(
        select(InstanceKey.kid, InstanceKey.private_pem)
        .filter_by(active=True)
        .order_by(InstanceKey.id.desc())
        .limit(1)
    ).first()
    if row is None:
        ensure_key()
        return _signer()
    signer = _SIGNERS.get(row.kid)
    if signer is None:
        private = serialization.load_pem_private_key(row.private_pem.encode(), password=None)

        class Resolver(HTTPSignatureKeyResolver):
            def resolve_private_key(self, key_id: str):
                return private

            def resolve_public_key(self, key_id: str):  # pragma: no cover - never verifies
                return private.public_key()

        signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=Resolver())
        _SIGNERS[row.kid] = signer
    return row.kid, signer


def sign_response(response, body: bytes) -> None:
    """Sign a Flask response in place (adds Content-Digest, Signature-Input, Signature)."""
    kid, signer = _signer()
    message = _OutgoingResponse(response)
    signer.sign(
        message,
        key_id=kid,
        label="shuyuan",
        tag=FEED_TAG,
        covered_component_ids=RESPONSE_COMPONENTS,
        body=body,
    )
    for name in ("Content-Digest", "Signature-Input", "Signature"):
        response.headers[name] = message.headers[name]


def current_signer() -> tuple[str, HTTPMessageSigner]:
    """(key id, signer) of this instance's newest key, for a caller that signs many
    requests from threads that should not touch the database (the mirror's downloads:
    with SQLite, a key lookup waited for the main thread's commit).  A key rotated after
    this call takes effect at the caller's next call."""
    return _signer()


def sign_request(request, body: bytes, signer: tuple[str, HTTPMessageSigner] | None = None):
    """Sign an outgoing ``requests.PreparedRequest`` in place (with ``signer``, from
    :func:`current_signer`, or the newest key)."""
    kid, signer = signer or _signer()
    request.headers["Shuyuan-Origin"] = own_origin()
    signer.sign(
        request,
        key_id=kid,
        label="shuyuan",
        tag=REQUEST_TAG,
        covered_component_ids=REQUEST_COMPONENTS,
        body=body,
    )


# --- peers' keys ---------------------------------------------------------------------------


def _fetch_peer_keys(origin: str) -> dict[str, str]:
    try:
        response = requests.get(origin + WELL_KNOWN, timeout=10, allow_redirects=False)
    except requests.RequestException as exc:
        raise FederationRefused(f"cannot read the keys of {origin}: {type(exc).__name__}") from None
    if response.status_code != 200 or len(response.content) > 64 * 1024:
        raise FederationRefused(f"the keys of {origin} are unavailable")
    try:
        data = response.json()
        keys = {
            k["kid"]: k["public_pem"]
            for k in data["keys"]
            if isinstance(k, dict) and isinstance(k.get("kid"), str) and k.get("alg") == "ed25519"
        }
    except (ValueError, KeyError, TypeError):
        raise FederationRefused(f"the keys of {origin} are malformed") from None
    if normalise_origin(data.get("origin", "")) != origin:
        raise FederationRefused(f"the keys at {origin} name another origin")
    return {kid: pem for kid, pem in keys.items() if isinstance(pem, str) and len(kid) <= 64}


def peer_key(origin: str, kid: str) -> str:
    """The public key ``kid`` of an allowed peer; fetched from its well-known URL the
    first time (and when an unknown kid shows up: key rotation)."""
    origin = allowed_origin(origin)
    known = db.session.get(PeerKey, (origin, kid)) if isinstance(kid, str) else None
    if known is not None:
        return known.public_pem
    fresh = _fetch_peer_keys(origin)
    for fresh_kid, pem in fresh.items():
        if db.session.get(PeerKey, (origin, fresh_kid)) is None:
            try:
                with savepoint():
                    db.session.add(PeerKey(origin=origin, kid=fresh_kid, public_pem=pem))
                    db.session.flush()
            except IntegrityError:
                pass  # another request of the same peer stored it meanwhile: same key
    if kid not in fresh:
        raise FederationRefused(f"signed with a key {origin} does not publish")
    return fresh[kid]


class _PeerKeys(HTTPSignatureKeyResolver):
    def __init__(self, origin: str):
        self.origin = origin

    def resolve_public_key(self, key_id: str):
        return peer_key(self.origin, key_id).encode()

    def resolve_private_key(self, key_id: str):  # pragma: no cover - never signs
        # This resolver only verifies a peer's signatures; our own signing has its own
        # resolver with our key.  Asked to sign, it refuses instead of guessing a key.
        raise FederationRefused("a peer's key resolver cannot sign")


def _verify(message, origin: str, tag: str, components, body: bytes) -> str:
    max_age = datetime.timedelta(seconds=current_app.config["SHARING_SIGNATURE_MAX_AGE"])
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519, key_resolver=_PeerKeys(origin)
    )
    try:
        results = verifier.verify(
            message, max_age=max_age, expect_tag=tag, require_components=components, body=body
        )
    except FederationRefused:
        raise
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        raise FederationRefused(f"bad signature: {str(exc)[:200]}") from None
    except Exception as exc:  # malformed headers the library did not anticipate
        raise FederationRefused(f"bad signature: {type(exc).__name__}") from None
    return results[0].parameters["keyid"]


def verify_response(response, origin: str) -> None:
    """Check a feed page fetched from ``origin`` (a ``requests.Response``)."""
    _verify(response, origin, FEED_TAG, RESPONSE_COMPONENTS, response.content)


class _IncomingRequest:
    """The incoming Flask request in the shape the verifier reads."""

    def __init__(self, flask_request, public_url: str):
        self.method = flask_request.method
        self.url = public_url
        self.headers = dict(flask_request.headers)


def verify_request(flask_request) -> str:
    """Check a signed request from a peer; returns the peer's origin."""
    origin = allowed_origin(flask_request.headers.get("Shuyuan-Origin", ""))
    # The URL the peer signed is ours as the public sees it, not the socket address.
    url = own_origin() + flask_request.full_path.rstrip("?")
    _verify(
        _IncomingRequest(flask_request, url),
        origin,
        REQUEST_TAG,
        REQUEST_COMPONENTS,
        flask_request.get_data(),
    )
    return origin
