"""Tool keys, in one place: creation, the signing key, the JWKS, rotation.

Private keys never leave the database and this module (pylti1p3 receives the PEM of the
signing key through :func:`app.lti.tool.registration_for`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app.common.models import utcnow
from app.extensions import db
from app.lti.models import KeyState, LtiKey


def new_key_row(state: KeyState = KeyState.NEXT) -> LtiKey:
    """A new RSA-2048 key (not added to any session)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwcrypto.jwk import JWK

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk = JWK.from_pem(public_pem)
    kid = jwk.thumbprint()
    public = json.loads(jwk.export_public())
    public.update({"kid": kid, "alg": "RS256", "use": "sig"})
    key = LtiKey(kid=kid, private_pem=pem, public_jwk=public, state=state)
    if state == KeyState.ACTIVE:
        key.activated_at = utcnow()
    return key


def create_key(state: KeyState = KeyState.NEXT) -> LtiKey:
    key = new_key_row(state)
    db.session.add(key)
    db.session.flush()
    return key


def jwks() -> dict:
    """Every key a platform may meet: the next key (published before it signs), the
    active key and keys retiring during their grace period."""
    keys = db.session.execute(
        select(LtiKey)
        .where(LtiKey.state.in_([KeyState.NEXT, KeyState.ACTIVE, KeyState.RETIRING]))
        .order_by(LtiKey.id)
    ).scalars()
    published = [dict(k.public_jwk) for k in keys]
    if not published:
        published = [dict(signing_key().public_jwk)]
    return {"keys": published}


@dataclass
class RotationReport:
    created: list[str] = field(default_factory=list)
    activated: list[str] = field(default_factory=list)
    retiring: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)


def rotate_keys(
    publish_seconds: int | None = None,
    grace_seconds: int | None = None,
    now: datetime | None = None,
) -> RotationReport:
    """One step of the rotation schedule; run it daily (cron).

    1. keys retiring for longer than the grace period leave the JWKS;
    2. a ``next`` key published for at least ``publish_seconds`` starts signing and the
       previous active key starts retiring (still published, so tokens it signed verify);
    3. when no ``next`` key exists a new one is published (it signs only on a later run).
    """
    config = current_app.config
    publish = (
        config.get("LTI_KEY_PUBLISH_SECONDS", 86400) if publish_seconds is None else publish_seconds
    )
    grace = (
        config.get("LTI_KEY_GRACE_SECONDS", 7 * 86400) if grace_seconds is None else grace_seconds
    )
    now = now or utcnow()
    report = RotationReport()
    for key in db.session.execute(select(LtiKey).filter_by(state=KeyState.RETIRING)).scalars():
        if key.retiring_at <= now - timedelta(seconds=grace):
            key.state, key.retired_at = KeyState.RETIRED, now
            report.retired.append(key.kid)
    actives = list(db.session.execute(select(LtiKey).filter_by(state=KeyState.ACTIVE)).scalars())
    pending = (
        db.session.execute(
            select(LtiKey).filter_by(state=KeyState.NEXT).order_by(LtiKey.created_at, LtiKey.id)
        )
        .scalars()
        .first()
    )
    if not actives and pending is None:
        report.activated.append(create_key(KeyState.ACTIVE).kid)
    elif pending is not None and pending.created_at <= now - timedelta(seconds=publish):
        pending.state, pending.activated_at = KeyState.ACTIVE, now
        report.activated.append(pending.kid)
        for key in actives:
            key.state, key.retiring_at = KeyState.RETIRING, now
            report.retiring.append(key.kid)
        pending = None
    if pending is None:
        report.created.append(create_key(KeyState.NEXT).kid)
    db.session.flush()
    return report


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

    with Session(db.engine, expire_on_commit=False) as own:
        key = own.execute(select(LtiKey).filter_by(state=KeyState.ACTIVE)).scalars().first()
        if key is None:
            key = new_key_row(KeyState.ACTIVE)
            own.add(key)
            own.commit()
        own.expunge(key)
    return key


_PUBLIC_PEMS: dict[str, str] = {}


def public_pem(key: LtiKey) -> str:
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
