"""Every message the server can show is in Chinese for a Chinese reader.

The messages are found in the source (tests/i18n_messages.py: raised errors, their field
messages, marks, marshmallow's and Werkzeug's own texts), and the error codes from the
code itself (every AppError subclass, every ``code=`` a raise gives, every HTTP status
the error handler names).  Each is rendered through the real error handler in zh_CN, as
an HTML page and as the JSON envelope, and the output must hold no English prose
(tests/english.py).  A new English message without a translation fails here.
"""

from __future__ import annotations

import re

import pytest
from werkzeug.exceptions import abort

from app import errors
from app.extensions import db
from tests.conftest import make_app
from tests.english import english_in, visible_text_of_html
from tests.i18n_messages import (
    ERROR_CLASSES,
    library_messages,
    scan,
    shown_messages,
    untranslated,
)

SAMPLE = "7"  # what a placeholder is filled with: a value, not a word


def _fill(msgid: str) -> str:
    return re.sub(r"%\(\w*\)s", SAMPLE, msgid).replace("%%", "%")


def _error_classes() -> dict[str, type]:
    import app.lti.errors  # noqa: F401  (registers its subclasses)
    import app.media.h5p  # noqa: F401
    import app.sharing.services.packages  # noqa: F401
    import app.xapi.services.documents  # noqa: F401
    import app.xapi.views  # noqa: F401

    found: dict[str, type] = {}
    pending = [errors.AppError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def error_cases() -> list[tuple[str, int, str, dict | None]]:
    """(code, status, message, fields) for every error the code can raise."""
    classes = _error_classes()
    cases: dict[tuple, tuple] = {}
    # Each class's own code with its default message.
    for cls in classes.values():
        default = (cls.__doc__ or cls.code).strip()
        cases[(cls.code, default)] = (cls.code, cls.status, default, None)
    # Every raise found in the source, with its class's status and its own code.
    shown = shown_messages()
    for message in scan():
        if message.cls not in ERROR_CLASSES or message.msgid not in shown:
            continue
        text = _fill(message.msgid)
        if message.cls in ("ValidationError",):
            cls = errors.Invalid
            cases[("validation_error", text)] = (
                "validation_error",
                422,
                "The submitted data is not valid.",
                {"field": [text]},
            )
            continue
        cls = classes.get(message.cls, errors.BadRequest)
        code = message.code or cls.code
        cases[(code, text)] = (code, cls.status, text, None)
    # marshmallow's and Werkzeug's texts, as they reach a response.
    for message in library_messages():
        if message.path == "marshmallow":
            text = _fill(message.msgid)
            cases[("validation_error", text)] = (
                "validation_error",
                422,
                "The submitted data is not valid.",
                {"field": [text]},
            )
    return list(cases.values())


CASES = error_cases()
HTTP_STATUSES = sorted(s for s in errors._HTTP_CODES if s not in (401,))


@pytest.fixture(scope="module")
def error_app(tmp_path_factory):
    instance = tmp_path_factory.mktemp("errors")
    application = make_app(f"sqlite:///{instance / 'errors.db'}", str(instance))

    def raise_case(number: int):
        code, status, message, fields = CASES[number]
        exc = errors.AppError(message, fields=fields, code=code)
        exc.status = status
        raise exc

    def raise_status(status: int):
        abort(status)

    application.add_url_rule("/_test/error/<int:number>", "test_error", raise_case)
    application.add_url_rule("/_test/status/<int:status>", "test_status", raise_status)
    with application.app_context():
        db.create_all()
    yield application
    with application.app_context():
        db.engine.dispose()


def test_every_shown_message_has_a_chinese_translation():
    missing = [f"{m.path}:{m.line} {m.msgid!r}" for m in untranslated()]
    assert not missing, "no zh_CN translation for:\n" + "\n".join(missing)


def test_every_error_code_is_covered():
    codes = {case[0] for case in CASES}
    class_codes = {cls.code for cls in _error_classes().values()}
    assert class_codes <= codes
    assert {"validation_error", "not_found", "forbidden", "conflict"} <= codes


def _json_texts(body: dict) -> list[str]:
    texts = [body["error"]["message"]]

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            texts.append(value)

    walk(body["error"].get("fields") or {})
    return texts


def test_each_error_renders_in_chinese_as_json(error_app):
    client = error_app.test_client()
    english = []
    for number, (code, status, message, _fields) in enumerate(CASES):
        response = client.get(
            f"/_test/error/{number}?lang=zh_CN", headers={"Accept": "application/json"}
        )
        assert response.status_code == status, (code, message)
        body = response.get_json()
        assert body["error"]["code"] == code
        for text in _json_texts(body):
            if english_in(text):
                english.append(f"{code}: {message!r} → {text!r}")
    assert not english, f"{len(english)} English messages in zh_CN JSON:\n" + "\n".join(english)


def test_each_error_renders_in_chinese_as_a_page(error_app):
    client = error_app.test_client()
    english = []
    for number, (code, status, message, _fields) in enumerate(CASES):
        response = client.get(f"/_test/error/{number}?lang=zh_CN", headers={"Accept": "text/html"})
        if status == 401:
            assert response.status_code == 302  # to the login page
            continue
        assert response.status_code == status, (code, message)
        html = response.get_data(as_text=True)
        main = html.split('<main id="main">', 1)[1].split("</main>", 1)[0]
        main = re.sub(r"(?s)<strong>.*?</strong>", " ", main)  # field names name the input
        found = english_in(visible_text_of_html(main))
        if found:
            english.append(f"{code}: {message!r} → {found}")
    assert not english, f"{len(english)} English messages in zh_CN pages:\n" + "\n".join(english)


@pytest.mark.parametrize("status", HTTP_STATUSES)
def test_http_errors_render_in_chinese(error_app, status):
    client = error_app.test_client()
    for accept in ("application/json", "text/html"):
        response = client.get(f"/_test/status/{status}?lang=zh_CN", headers={"Accept": accept})
        assert response.status_code == status
        if accept == "application/json":
            texts = _json_texts(response.get_json())
        else:
            html = response.get_data(as_text=True)
            texts = [visible_text_of_html(html.split('<main id="main">', 1)[1])]
        for text in texts:
            assert not english_in(text), (status, accept, text)


def test_english_readers_keep_english(error_app):
    client = error_app.test_client()
    number = next(i for i, case in enumerate(CASES) if case[2] == "Calendar not found.")
    response = client.get(f"/_test/error/{number}?lang=en", headers={"Accept": "application/json"})
    assert response.get_json()["error"]["message"] == "Calendar not found."
    response = client.get(
        f"/_test/error/{number}?lang=zh_CN", headers={"Accept": "application/json"}
    )
    assert response.get_json()["error"]["message"] == "未找到该教学日历。"


def test_a_message_with_values_is_translated_around_them(error_app):
    with error_app.test_request_context("/?lang=zh_CN"):
        from app.i18n import translate_message

        assert translate_message("Week 42 is not in this calendar.") == "第 42 周不在此教学日历中。"
        assert (
            translate_message("Must be greater than or equal to 1 and less than or equal to 9.")
            == "必须大于或等于 1 且小于或等于 9。"
        )
