"""Every message the server may show a person, found in the source (not a hand-kept list).

Scans ``app/`` and ``plugins/`` with :mod:`ast` for

- ``raise X("…")`` / ``X(message="…")`` of an error class (any class whose name is one of
  the AppError family, marshmallow's ``ValidationError``, LTI's ``LaunchRefused``),
- the messages inside ``fields={…: ["…"]}`` of those raises,
- ``N_("…")`` marks,

and turns each into the catalogue ``msgid`` it must have: a plain string as it is, an
f-string with each ``{expression}`` replaced by ``%(name)s`` (``name`` from the
expression: ``{kind!r}`` → ``%(kind)s``, ``{node.title}`` → ``%(title)s``), which is the
form :func:`app.core.messages.translate_message` matches at run time.

Run ``python -m tests.i18n_messages`` to list the messages the zh_CN catalogues lack.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("app", "plugins")

ERROR_CLASSES = {
    "AppError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "Conflict",
    "Invalid",
    "UnsupportedMediaType",
    "PayloadTooLarge",
    "TooManyRequests",
    "PreconditionFailed",
    "MethodNotAllowed",
    "JobsUnavailable",
    "H5PError",
    "PackageRefused",
    "ValidationError",
    "LaunchRefused",
}


# Calls that mark or translate a message for the catalogue.
MARKERS = {"N_", "_", "gettext", "lazy_gettext"}


@dataclass(frozen=True)
class Message:
    msgid: str
    cls: str
    code: str | None
    path: str
    line: int


def _name(expression: ast.expr) -> str:
    if isinstance(expression, ast.Name):
        return expression.id
    if isinstance(expression, ast.Attribute):
        return expression.attr
    if isinstance(expression, ast.Call):
        return _name(expression.func)
    if isinstance(expression, ast.Subscript):
        return _name(expression.value)
    return "value"


def msgid_of(node: ast.expr) -> str | None:
    """The catalogue id of a message expression, or None when it is not literal text."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value).replace("%", "%%"))
            elif isinstance(value, ast.FormattedValue):
                parts.append(f"%({_name(value.value)})s")
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = msgid_of(node.left), msgid_of(node.right)
        if left is not None and right is not None:
            return left + right
    return None


def _class_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _field_messages(node: ast.expr):
    if isinstance(node, ast.Dict):
        for value in node.values:
            yield from _field_messages(value)
    elif isinstance(node, ast.List | ast.Tuple):
        for element in node.elts:
            yield from _field_messages(element)
    else:
        text = msgid_of(node)
        if text:
            yield text


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def scan() -> list[Message]:
    found: list[Message] = []
    for source in SOURCES:
        for path in sorted((ROOT / source).rglob("*.py")):
            if "translations" in path.parts:
                continue
            relative = str(path.relative_to(ROOT))
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name in ERROR_CLASSES:
                    # An error raised without a message shows its class's docstring.
                    doc = ast.get_docstring(node, clean=False)
                    if doc and node.name not in ("ValidationError", "LaunchRefused"):
                        found.append(Message(doc.strip(), node.name, None, relative, node.lineno))
                    continue
                if not isinstance(node, ast.Call):
                    continue
                cls = _class_name(node)
                if cls in MARKERS and node.args:
                    text = msgid_of(node.args[0])
                    if text:
                        found.append(Message(text, cls, None, relative, node.lineno))
                    continue
                if cls not in ERROR_CLASSES:
                    continue
                message = node.args[0] if node.args else _keyword(node, "message")
                code_node = _keyword(node, "code")
                if cls == "LaunchRefused" and code_node is None and len(node.args) > 1:
                    code_node = node.args[1]
                code = (
                    code_node.value
                    if isinstance(code_node, ast.Constant) and isinstance(code_node.value, str)
                    else None
                )
                text = msgid_of(message) if message is not None else None
                if text:
                    found.append(Message(text, cls, code, relative, node.lineno))
                fields = _keyword(node, "fields")
                if cls == "ValidationError" and message is not None:
                    fields = message if isinstance(message, ast.Dict | ast.List) else None
                if fields is not None:
                    for field_text in _field_messages(fields):
                        found.append(Message(field_text, cls, code, relative, node.lineno))
    return found


def _format_to_placeholders(text: str) -> str:
    """marshmallow's ``{max}`` → the catalogue's ``%(max)s``."""
    text = re.sub(r"\{\{(\w+)\}\}", r"{\1}", text.replace("%", "%%"))
    return re.sub(r"\{(\w+)(![rsa])?\}", r"%(\1)s", text)


def library_messages() -> list[Message]:
    """English messages that marshmallow's fields and validators and Werkzeug's HTTP
    errors put in a response (read from the libraries, so a new one is noticed)."""
    import marshmallow.fields
    import marshmallow.validate
    from werkzeug.exceptions import default_exceptions

    from app.errors import _HTTP_CODES

    found = []
    for name in dir(marshmallow.fields):
        field = getattr(marshmallow.fields, name)
        if isinstance(field, type) and issubclass(field, marshmallow.fields.Field):
            for text in getattr(field, "default_error_messages", {}).values():
                found.append(Message(_format_to_placeholders(text), name, None, "marshmallow", 0))
    for name in dir(marshmallow.validate):
        validator = getattr(marshmallow.validate, name)
        if isinstance(validator, type) and issubclass(validator, marshmallow.validate.Validator):
            for attribute in dir(validator):
                if attribute.startswith("message") or attribute.endswith("_message"):
                    text = getattr(validator, attribute)
                    if isinstance(text, str):
                        found.append(
                            Message(_format_to_placeholders(text), name, None, "marshmallow", 0)
                        )
    for status in _HTTP_CODES:
        exception = default_exceptions.get(status)
        if exception is not None and exception.description:
            found.append(Message(exception.description, exception.__name__, None, "werkzeug", 0))
    return found


def _shown(msgid: str) -> bool:
    """Text a person reads: letters outside the placeholders."""
    return bool(re.search(r"[A-Za-z]{2,}", re.sub(r"%\(\w*\)s", "", msgid)))


def shown_messages() -> dict[str, Message]:
    """Distinct messages a person can see (ids that are only machine codes left out)."""
    result: dict[str, Message] = {}
    for message in scan() + library_messages():
        if _shown(message.msgid):
            result.setdefault(message.msgid, message)
    return result


def chinese_catalogue() -> dict[str, str]:
    from babel.messages.pofile import read_po

    merged: dict[str, str] = {}
    patterns = ["app/translations", "app/*/translations", "plugins/shuyuan_plugins/*/translations"]
    for pattern in patterns:
        for folder in sorted(ROOT.glob(pattern)):
            po = folder / "zh_CN" / "LC_MESSAGES" / "messages.po"
            if not po.exists():
                continue
            with po.open("rb") as handle:
                for entry in read_po(handle):
                    if entry.id and entry.string and not isinstance(entry.id, tuple):
                        merged.setdefault(entry.id, entry.string)
    return merged


def untranslated() -> list[Message]:
    catalogue = chinese_catalogue()
    return [m for msgid, m in sorted(shown_messages().items()) if msgid not in catalogue]


if __name__ == "__main__":
    missing = untranslated()
    for message in missing:
        print(f"{message.path}:{message.line}\t{message.cls}\t{message.msgid!r}")
    print(f"{len(missing)} of {len(shown_messages())} messages lack a zh_CN translation")
