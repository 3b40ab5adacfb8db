"""Primitive xAPI values: IRIs, UUIDs, language tags, timestamps, durations, versions,
and the marshmallow fields that check one such value (used by :mod:`app.xapi.schemas`).

The version the client speaks (``X-Experience-API-Version``) is read from
:data:`SPEC_VERSION` where the two specifications differ (timestamps).
"""

from __future__ import annotations

import contextvars
import re
from datetime import UTC, datetime, timedelta

from marshmallow import ValidationError, fields

SPEC_VERSION: contextvars.ContextVar[str] = contextvars.ContextVar(
    "xapi_spec_version", default="2.0.0"
)

# --- primitive checks -------------------------------------------------------------------

_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]*$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_LANG = re.compile(
    r"^(?:(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|\d{3}))?"
    r"(?:-(?:[A-Za-z\d]{5,8}|\d[A-Za-z\d]{3}))*(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z\d]{2,8})+)*"
    r"(?:-[Xx](?:-[A-Za-z\d]{1,8})+)?|[Xx](?:-[A-Za-z\d]{1,8})+|[Ii]-[A-Za-z]{2,8})$"
)
SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_DURATION = re.compile(
    r"^P(?!$)(?:\d+(?:[.,]\d+)?Y)?(?:\d+(?:[.,]\d+)?M)?(?:\d+(?:[.,]\d+)?D)?"
    r"(?:T(?=\d)(?:\d+(?:[.,]\d+)?H)?(?:\d+(?:[.,]\d+)?M)?(?:\d+(?:[.,]\d+)?S)?)?$"
)
_WEEKS = re.compile(r"^P\d+(?:[.,]\d+)?W$")
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)
_VERSION = re.compile(r"^(1\.0|2\.0)(\.\d+)?$")
MIME = re.compile(r"^[A-Za-z0-9!#$&^_.+\-]+/[A-Za-z0-9!#$&^_.+\-]+(\s*;.*)?$")


def is_iri(value) -> bool:
    return isinstance(value, str) and bool(_IRI.match(value))


def is_uuid(value) -> bool:
    return isinstance(value, str) and bool(_UUID.match(value))


def is_language_tag(value) -> bool:
    return isinstance(value, str) and bool(_LANG.match(value))


def parse_timestamp(value: str, version: str | None = None) -> datetime:
    """Parse an xAPI timestamp; raise ValueError if it is not one."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    match = _TIMESTAMP.match(value)
    if not match:
        raise ValueError(
            "must be an ISO 8601 / RFC 3339 date-time such as 2024-05-01T08:30:00.000Z"
        )
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    version = version or SPEC_VERSION.get()
    if offset and offset.startswith("-") and offset.replace(":", "") in ("-00", "-0000"):
        raise ValueError("the offset -00:00 (unknown local offset) is not allowed")
    if offset is None and version.startswith("2"):
        raise ValueError("must include a time zone offset (RFC 3339)")
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro
        )
    except ValueError as exc:
        raise ValueError(f"is not a valid date-time ({exc})") from None
    if offset and offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            raise ValueError("has an invalid offset")
        try:
            moment = moment - sign * timedelta(hours=hours, minutes=minutes)
        except OverflowError:
            # e.g. 0001-01-01T00:00:00+00:01 is in year 0 in UTC.
            raise ValueError("is outside the supported date range once read as UTC") from None
    return moment.replace(tzinfo=UTC)


def format_timestamp(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    # Not strftime("%Y"): it does not pad years below 1000 to four digits.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}."
        f"{moment.microsecond // 1000:03d}Z"
    )


# --- fields ------------------------------------------------------------------------------


class Iri(fields.Field):
    default_error_messages = {"invalid": "must be an IRI (with a scheme, e.g. https://...)."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not is_iri(value):
            raise self.make_error("invalid")
        return value


class Text(fields.Field):
    """A JSON string, nothing else (no numbers turned into strings)."""

    default_error_messages = {"invalid": "must be a string."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        return value


class Uuid(fields.Field):
    default_error_messages = {"invalid": "must be a UUID (RFC 4122), e.g. 6f1cd3e4-...-0a2b."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not is_uuid(value):
            raise self.make_error("invalid")
        return value


class StrictBool(fields.Field):
    default_error_messages = {"invalid": "must be true or false (a JSON boolean)."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Number(fields.Field):
    default_error_messages = {"invalid": "must be a JSON number."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        return value


class Integer(fields.Field):
    default_error_messages = {"invalid": "must be a non-negative integer."}

    def _deserialize(self, value, attr, data, **kwargs):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value != int(value)
            or value < 0
        ):
            raise self.make_error("invalid")
        return value


class LanguageMap(fields.Field):
    default_error_messages = {
        "invalid": "must be a language map: an object of RFC 5646 language tags to strings."
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        for key, text in value.items():
            if not is_language_tag(key):
                raise ValidationError(f"{key!r} is not an RFC 5646 language tag.")
            if not isinstance(text, str):
                raise ValidationError(f"the value for {key!r} must be a string.")
        return value


class Extensions(fields.Field):
    default_error_messages = {"invalid": "must be an object whose keys are IRIs."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        for key in value:
            if not is_iri(key):
                raise ValidationError(f"extension key {key!r} is not an IRI.")
        return value


class Timestamp(fields.Field):
    default_error_messages = {"invalid": "must be a date-time string."}

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            parse_timestamp(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return value


class Duration(fields.Field):
    default_error_messages = {
        "invalid": "must be an ISO 8601 duration such as PT1H30M or P1DT2.5S."
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not (_DURATION.match(value) or _WEEKS.match(value)):
            raise self.make_error("invalid")
        return value


class Version(fields.Field):
    default_error_messages = {"invalid": 'must be "1.0", "1.0.x", "2.0" or "2.0.x".'}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _VERSION.match(value):
            raise self.make_error("invalid")
        return value
