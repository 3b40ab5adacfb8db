"""Is it the same statement? (idempotent re-posts, signed statements) and the JWS check
of signed statements."""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import re

import jwt
from cryptography import x509

from app.errors import BadRequest
from app.xapi import jsontext, schemas


def _comparable(statement: dict) -> dict:
    """A statement reduced for "same statement?" checks: ignore what the LRS adds."""
    data = copy.deepcopy(statement)
    for key in ("authority", "stored", "version", "id"):
        data.pop(key, None)
    if "timestamp" in data:
        with contextlib.suppress(ValueError):
            data["timestamp"] = schemas.format_timestamp(
                schemas.parse_timestamp(data["timestamp"], "1.0.3")
            )
    _lower_ids(data)
    _normalise_context_activities(data)
    for holder in (data, data.get("object") if isinstance(data.get("object"), dict) else {}):
        result = holder.get("result")
        if isinstance(result, dict) and isinstance(result.get("duration"), str):
            result["duration"] = _truncate_duration(result["duration"])
    return data


def _truncate_duration(value: str) -> str:
    """Durations compare to 0.01 s precision."""

    def cut(match):
        whole, fraction = match.group(1), (match.group(2) or "")
        fraction = fraction[:2].rstrip("0")
        return f"{whole}.{fraction}S" if fraction else f"{whole}S"

    return re.sub(r"(\d+)(?:[.,](\d+))?S$", cut, value)


def _normalise_context_activities(statement: dict) -> None:
    """Context activity lists are always returned as arrays (single objects are wrapped)."""
    for holder in (
        statement,
        statement.get("object") if isinstance(statement.get("object"), dict) else None,
    ):
        if not holder:
            continue
        activities = (holder.get("context") or {}).get("contextActivities")
        if isinstance(activities, dict):
            for key, value in list(activities.items()):
                if not isinstance(value, list):
                    activities[key] = [value]


def _lower_ids(data):
    if isinstance(data, dict):
        obj = data.get("object")
        if (
            isinstance(obj, dict)
            and obj.get("objectType") == "StatementRef"
            and isinstance(obj.get("id"), str)
        ):
            obj["id"] = obj["id"].lower()
        for key, value in data.items():
            if key == "registration" and isinstance(value, str):
                data[key] = value.lower()
            else:
                _lower_ids(value)
    elif isinstance(data, list):
        for item in data:
            _lower_ids(item)


def same_statement(new: dict, stored: dict) -> bool:
    a, b = _comparable(new), _comparable(stored)
    if "timestamp" not in new:
        b.pop("timestamp", None)
    return a == b


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def verify_signature(statement: dict, jws: bytes, index: int) -> None:
    """Check a signed statement's JWS (xAPI 'Signed Statements')."""
    where = f"statement[{index}].attachments"
    try:
        text = jws.decode("ascii").strip()
        header_b64, payload_b64, signature_b64 = text.split(".")
        header = jsontext.loads(_b64url(header_b64))
        payload = jsontext.loads(_b64url(payload_b64))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadRequest(
            f"{where}: the signature is not a JWS in compact serialization.",
            fields={where: ["malformed JWS"]},
        ) from None
    if not isinstance(header, dict) or header.get("alg") not in ("RS256", "RS384", "RS512"):
        raise BadRequest(
            f"{where}: the JWS algorithm must be RS256, RS384 or RS512.",
            fields={where: ["bad alg"]},
        )
    if not isinstance(payload, dict):
        raise BadRequest(
            f"{where}: the JWS payload is not a statement.", fields={where: ["bad payload"]}
        )
    original = copy.deepcopy(statement)
    original["attachments"] = [
        a for a in original.get("attachments", []) if a.get("usageType") != schemas.SIGNATURE_USAGE
    ]
    if not original["attachments"]:
        original.pop("attachments")
    payload_copy = copy.deepcopy(payload)
    if isinstance(payload_copy.get("attachments"), list):
        payload_copy["attachments"] = [
            a
            for a in payload_copy["attachments"]
            if not isinstance(a, dict) or a.get("usageType") != schemas.SIGNATURE_USAGE
        ]
        if not payload_copy["attachments"]:
            payload_copy.pop("attachments")
    if (
        "id" in payload_copy
        and "id" in original
        and str(payload_copy["id"]).lower() != str(original["id"]).lower()
    ):
        raise BadRequest(
            f"{where}: the signed payload has another statement id.",
            fields={where: ["payload differs"]},
        )
    if not same_statement(payload_copy, original):
        raise BadRequest(
            f"{where}: the JWS payload does not match the statement.",
            fields={where: ["payload differs"]},
        )
    certificates = header.get("x5c")
    if certificates:
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode(certificates[0]))
            jwt.api_jws.PyJWS().decode_complete(
                text, key=cert.public_key(), algorithms=[header["alg"]]
            )
        except Exception:
            raise BadRequest(
                f"{where}: the JWS signature does not verify with its x5c certificate.",
                fields={where: ["bad signature"]},
            ) from None
