"""Client JSON, read strictly (RFC 8259), before anything else looks at it.

Python's :func:`json.loads` accepts more than JSON: ``NaN``, ``Infinity`` and numbers
such as ``1e400`` (read as infinity), and ``\\ud800`` escapes that leave a lone UTF-16
surrogate in a string.  Stored, those make every later answer that includes them invalid
JSON (or fail to encode at all), so the LRS refuses them at the door; it also refuses
nesting deeper than ``XAPI_MAX_JSON_DEPTH``, which would otherwise end in a
``RecursionError`` somewhere in validation, comparison or serialisation.
"""

from __future__ import annotations

import json
import math
import re

from flask_babel import gettext as _

from app.errors import BadRequest

DEFAULT_MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonRejected(ValueError):
    """Not standard JSON, or too deep; ``kind`` is "syntax", "depth", "number" or
    "surrogate" and ``path`` names where (``$`` is the top)."""

    def __init__(self, kind: str, path: str = "$", detail: str = ""):
        super().__init__(f"{kind} at {path}{': ' + detail if detail else ''}")
        self.kind, self.path, self.detail = kind, path, detail


def _refuse_constant(name: str):
    raise JsonRejected("number", detail=name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRejected("number", detail=text)
    return value


def loads(data: bytes | str, max_depth: int = DEFAULT_MAX_DEPTH):
    """Parse ``data`` as standard JSON; raise :class:`JsonRejected` (a ValueError)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRejected("syntax", detail=f"not UTF-8 ({exc.reason})") from None
    try:
        value = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise JsonRejected("depth") from None
    except JsonRejected:
        raise
    except ValueError as exc:
        raise JsonRejected("syntax", detail=str(exc)) from None
    check(value, max_depth)
    return value


def check(value, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Walk an already parsed value (iteratively, so depth cannot overflow the stack)
    and raise :class:`JsonRejected` for non-finite numbers, lone surrogates in strings
    or keys, and nesting deeper than ``max_depth``."""
    # Nearly every value is fine: walk it once without building a path for every node
    # (that was most of the cost, issue 14), and only when something is wrong walk it
    # again with paths, to name the place in the 400.
    if not _rejectable(value, max_depth):
        return
    _check_with_paths(value, max_depth)


def _rejectable(value, max_depth: int) -> bool:
    search = _SURROGATE.search
    isfinite = math.isfinite
    stack = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        kind = type(node)
        if kind is str:
            if search(node):
                return True
        elif kind is dict:
            if depth >= max_depth:
                return True
            for key, item in node.items():
                if type(key) is not str or search(key):
                    return True
                if type(item) in (dict, list, str, float):
                    push((item, depth + 1))
        elif kind is list:
            if depth >= max_depth:
                return True
            for item in node:
                if type(item) in (dict, list, str, float):
                    push((item, depth + 1))
        elif kind is float:
            if not isfinite(node):
                return True
        elif isinstance(node, str | float | dict | list):  # subclasses: the careful walk
            return True
    return False


def _check_with_paths(value, max_depth: int) -> None:
    stack = [(value, 0, "$")]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                raise JsonRejected("surrogate", path)
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise JsonRejected("number", path, repr(node))
        elif isinstance(node, dict | list):
            if depth >= max_depth:
                raise JsonRejected("depth", path)
            if isinstance(node, dict):
                for key, item in node.items():
                    child = f"{path}.{_printable(key)}"
                    if isinstance(key, str) and _SURROGATE.search(key):
                        raise JsonRejected("surrogate", child)
                    stack.append((item, depth + 1, child))
            else:
                stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(node))


def _printable(key) -> str:
    # A path that names a key must itself be sendable in a JSON error message.
    return _SURROGATE.sub("\ufffd", str(key))


def as_bad_request(exc: JsonRejected, where: str, limit: int | None = None) -> BadRequest:
    """The 400 answer for a rejected JSON text; ``where`` names it (body, agent, ...)."""
    at = where if exc.path == "$" else f"{where} {exc.path}"
    if exc.kind == "depth":
        message = _(
            "%(where)s is nested too deeply (at most %(limit)s levels of arrays and objects).",
            where=at,
            limit=limit or DEFAULT_MAX_DEPTH,
        )
        reason = "too deep"
    elif exc.kind == "number":
        message = _(
            "%(where)s contains NaN or Infinity (or a number too large for a double), "
            "which JSON does not allow.",
            where=at,
        )
        reason = "not a JSON number"
    elif exc.kind == "surrogate":
        message = _("%(where)s contains a lone UTF-16 surrogate; send valid Unicode.", where=at)
        reason = "lone surrogate"
    else:
        message = _("%(where)s is not valid JSON: %(detail)s.", where=where, detail=exc.detail)
        reason = "malformed JSON"
    return BadRequest(message, fields={where: [reason]})
