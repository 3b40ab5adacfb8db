"""A fast acceptance check for the common shapes of statements (issue 14).

Marshmallow's nested schemas cost about 0.1 ms per statement object they load (a
statement is 10-12 of them): 70 % of a batch's CPU in the profile of docs/xapi.md.
:func:`valid` checks the same rules as :mod:`app.xapi.schemas` in plain Python, but only
ever *accepts*: it returns True when the statement certainly passes every check of
:class:`app.xapi.schemas.StatementSchema`, and False when it does not or when the shape
is one it leaves to marshmallow (SubStatements, attachments, interaction activities,
2.0 context agents and groups, Group authorities).  On False the schema runs as before,
so every rejection, and its message, still comes from marshmallow.

Mirrored from the schemas, field by field: every object is a JSON object with no
unknown property and no ``null`` value (marshmallow fields refuse ``None``), required
properties are present, and each value has the type and form its field checks.
``tests/xapi/test_fastcheck.py`` compares the two on random mutations of statements:
whatever this module accepts, the schema accepts.
"""

from __future__ import annotations

import re

from app.xapi.primitives import (
    _DURATION,
    _VERSION,
    _WEEKS,
    SHA1,
    is_iri,
    is_language_tag,
    is_uuid,
    parse_timestamp,
)

VOIDED_VERB = "http://adlnet.gov/expapi/verbs/voided"
# The schema's mbox check (``schemas._check_mbox``), the same pattern.
_MBOX = re.compile(r"^mailto:[^@\s]+@[^@\s]+$")

_ACCOUNT_KEYS = frozenset({"homePage", "name"})
_AGENT_KEYS = frozenset({"objectType", "name", "mbox", "mbox_sha1sum", "openid", "account"})
_GROUP_KEYS = _AGENT_KEYS | {"member"}
_IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
_VERB_KEYS = frozenset({"id", "display"})
_DEFINITION_KEYS = frozenset({"name", "description", "type", "moreInfo", "extensions"})
_ACTIVITY_KEYS = frozenset({"objectType", "id", "definition"})
_REF_KEYS = frozenset({"objectType", "id"})
_SCORE_KEYS = frozenset({"scaled", "raw", "min", "max"})
_RESULT_KEYS = frozenset({"score", "success", "completion", "response", "duration", "extensions"})
_CONTEXT_ACTIVITIES_KEYS = frozenset({"parent", "grouping", "category", "other"})
_CONTEXT_KEYS = frozenset(
    {
        "registration",
        "instructor",
        "team",
        "contextActivities",
        "revision",
        "platform",
        "language",
        "statement",
        "extensions",
    }
)
_STATEMENT_KEYS = frozenset(
    {
        "id",
        "actor",
        "verb",
        "object",
        "result",
        "context",
        "timestamp",
        "stored",
        "authority",
        "version",
    }
)


def valid(statement, version: str) -> bool:
    """True only if ``statement`` passes :class:`app.xapi.schemas.StatementSchema` (and
    :func:`app.xapi.schemas.validate_statement`'s own checks) for ``version``."""
    try:
        return _statement(statement, version)
    except Exception:  # any surprise in a hostile value: let the schema answer
        return False


def _plain(value, keys: frozenset) -> bool:
    """A JSON object with only ``keys`` and no null value."""
    if type(value) is not dict:
        return False
    return all(key in keys and item is not None for key, item in value.items())


def _text(value) -> bool:
    return type(value) is str


def _number(value) -> bool:
    return type(value) is int or type(value) is float


def _language_map(value) -> bool:
    if type(value) is not dict:
        return False
    for key, text in value.items():
        if type(text) is not str or not is_language_tag(key):
            return False
    return True


def _extensions(value) -> bool:
    if type(value) is not dict:
        return False
    return all(is_iri(key) for key in value)


def _agent(value) -> bool:
    if not _plain(value, _AGENT_KEYS):
        return False
    if value.get("objectType", "Agent") != "Agent":
        return False
    return _identified(value, exactly_one=True)


def _identified(value: dict, exactly_one: bool) -> bool:
    """The name and the inverse functional identifiers of an Agent or Group."""
    if "name" in value and not _text(value["name"]):
        return False
    present = 0
    if "mbox" in value:
        present += 1
        mbox = value["mbox"]
        if type(mbox) is not str or not _MBOX.match(mbox):
            return False
    if "mbox_sha1sum" in value:
        present += 1
        if type(value["mbox_sha1sum"]) is not str or not SHA1.match(value["mbox_sha1sum"]):
            return False
    if "openid" in value:
        present += 1
        if not is_iri(value["openid"]):
            return False
    if "account" in value:
        present += 1
        account = value["account"]
        if not _plain(account, _ACCOUNT_KEYS) or len(account) != 2:
            return False
        if not is_iri(account["homePage"]) or not _text(account["name"]):
            return False
    return present == 1 if exactly_one else present <= 1


def _group(value) -> bool:
    if not _plain(value, _GROUP_KEYS) or value.get("objectType") != "Group":
        return False
    if not _identified(value, exactly_one=False):
        return False
    members = value.get("member")
    if members is not None and (type(members) is not list or not all(map(_agent, members))):
        return False
    # An anonymous Group must list its members.
    return any(key in value for key in _IFIS) or bool(members)


def _actor(value) -> bool:
    if type(value) is dict and value.get("objectType") == "Group":
        return _group(value)
    return _agent(value)


def _activity(value) -> bool:
    if not _plain(value, _ACTIVITY_KEYS):
        return False
    if "objectType" in value and value["objectType"] != "Activity":
        return False
    if not is_iri(value.get("id")):
        return False
    if "definition" in value:
        # Interaction activities (interactionType, components) are left to the schema.
        definition = value["definition"]
        if not _plain(definition, _DEFINITION_KEYS):
            return False
        for key in ("name", "description"):
            if key in definition and not _language_map(definition[key]):
                return False
        for key in ("type", "moreInfo"):
            if key in definition and not is_iri(definition[key]):
                return False
        if "extensions" in definition and not _extensions(definition["extensions"]):
            return False
    return True


def _statement_ref(value) -> bool:
    return (
        _plain(value, _REF_KEYS)
        and value.get("objectType") == "StatementRef"
        and is_uuid(value.get("id"))
    )


def _object(value) -> bool:
    kind = value.get("objectType", "Activity") if type(value) is dict else "Activity"
    if kind == "Activity":
        return _activity(value)
    if kind == "Agent":
        return _agent(value)
    if kind == "Group":
        return _group(value)
    if kind == "StatementRef":
        return _statement_ref(value)
    return False  # SubStatement, or a wrong objectType: the schema decides and explains


def _score(value) -> bool:
    if not _plain(value, _SCORE_KEYS) or not all(_number(v) for v in value.values()):
        return False
    if "scaled" in value and not -1 <= value["scaled"] <= 1:
        return False
    low, high = value.get("min"), value.get("max")
    if low is not None and high is not None and low >= high:
        return False
    if "raw" in value:
        if low is not None and value["raw"] < low:
            return False
        if high is not None and value["raw"] > high:
            return False
    return True


def _result(value) -> bool:
    if not _plain(value, _RESULT_KEYS):
        return False
    if "score" in value and not _score(value["score"]):
        return False
    for key in ("success", "completion"):
        if key in value and type(value[key]) is not bool:
            return False
    if "response" in value and not _text(value["response"]):
        return False
    if "duration" in value:
        duration = value["duration"]
        if type(duration) is not str or not (_DURATION.match(duration) or _WEEKS.match(duration)):
            return False
    return "extensions" not in value or _extensions(value["extensions"])


def _context(value, object_is_activity: bool) -> bool:
    # contextAgents / contextGroups (2.0; refused in 1.0.3) are left to the schema.
    if not _plain(value, _CONTEXT_KEYS):
        return False
    if "registration" in value and not is_uuid(value["registration"]):
        return False
    if "instructor" in value and not _actor(value["instructor"]):
        return False
    if "team" in value and not _group(value["team"]):
        return False
    for key in ("revision", "platform"):
        if key in value and (not object_is_activity or not _text(value[key])):
            return False
    if "language" in value and not is_language_tag(value["language"]):
        return False
    if "statement" in value and not _statement_ref(value["statement"]):
        return False
    if "extensions" in value and not _extensions(value["extensions"]):
        return False
    if "contextActivities" in value:
        activities = value["contextActivities"]
        if not _plain(activities, _CONTEXT_ACTIVITIES_KEYS):
            return False
        for item in activities.values():
            if type(item) is list:
                if not all(_activity(a) for a in item):
                    return False
            elif not _activity(item):
                return False
    return True


def _timestamp(value, version: str) -> bool:
    if type(value) is not str:
        return False
    try:
        parse_timestamp(value, version)
    except ValueError:
        return False
    return True


def _statement(statement, version: str) -> bool:
    # Attachments and a statement-level objectType are left to the schema.
    if not _plain(statement, _STATEMENT_KEYS):
        return False
    if "id" in statement and not is_uuid(statement["id"]):
        return False
    if not _actor(statement.get("actor")):
        return False
    verb = statement.get("verb")
    if not _plain(verb, _VERB_KEYS) or not is_iri(verb.get("id")):
        return False
    if "display" in verb and not _language_map(verb["display"]):
        return False
    obj = statement.get("object")
    if not _object(obj):
        return False
    if verb["id"] == VOIDED_VERB and obj.get("objectType") != "StatementRef":
        return False
    if "result" in statement and not _result(statement["result"]):
        return False
    if "context" in statement:
        object_is_activity = obj.get("objectType", "Activity") == "Activity"
        if not _context(statement["context"], object_is_activity):
            return False
    for key in ("timestamp", "stored"):
        if key in statement and not _timestamp(statement[key], version):
            return False
    # A Group authority has rules of its own (two members, anonymous): the schema's.
    if "authority" in statement and not _agent(statement["authority"]):
        return False
    version_value = statement.get("version")
    if version_value is None:
        return "version" not in statement
    return type(version_value) is str and bool(_VERSION.match(version_value))
