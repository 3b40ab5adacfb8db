# ruff: noqa: S704  (every value put in the HTML below is escaped)
"""Exercises: single/multiple choice, true/false, fill-in and numeric questions, scored on
the server (the format is documented in :mod:`shuyuan_plugins.exercise.questions`).

The page shows the questions without their answers; the player starts an attempt
(``POST /plugins/exercise/<content_id>/attempts``), submits it
(``POST /plugins/exercise/attempts/<id>/submit``) and then shows right/wrong with the
explanations.  Each answer is reported as xAPI ``answered`` (the question as object,
``result.success``/``response``, its knowledge points in the context) and the attempt as
``completed`` with the score, which the LTI feature forwards to the LMS gradebook when
the student came from one.  Plain HTML form controls: works with a keyboard and on a
phone.
"""

from __future__ import annotations

from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup, escape

from app import hooks

from . import attempts, models  # noqa: F401  (tables on the metadata)
from . import questions as q
from .views import bp


def _texts() -> dict:
    """Translated, escaped labels (extracted by pybabel; f-strings hide calls from it)."""
    return {
        "submit": escape(_("Submit answers")),
        "again": escape(_("Try again")),
        "login": escape(_("Log in to answer this exercise.")),
        "malformed": escape(_("This exercise is malformed and cannot be answered.")),
        "true": escape(_("True")),
        "false": escape(_("False")),
        "your_answer": escape(_("Your answer")),
        "number": escape(_("A number")),
        "right": escape(_("Right")),
        "wrong": escape(_("Wrong")),
        "answer_label": escape(_("Answer: ")),
        "score_label": escape(_("Score: ")),
    }


def _question_html(index: int, question: dict, text: dict) -> str:
    name = f"q-{escape(question['id'])}"
    legend = (
        f'<legend><span class="exercise-number">{escape(_("Question %(n)s", n=index))}</span> '
        f"{escape(question['prompt'])}</legend>"
    )
    kind = question["type"]
    if kind in q.CHOICE_TYPES:
        input_type = "radio" if kind == "single_choice" else "checkbox"
        body = "".join(
            f'<label class="exercise-option"><input type="{input_type}" name="{name}" '
            f'value="{i}"> {escape(option)}</label>'
            for i, option in enumerate(question["options"])
        )
    elif kind == "true_false":
        body = (
            f'<label class="exercise-option"><input type="radio" name="{name}" value="true">'
            f' {text["true"]}</label><label class="exercise-option"><input type="radio" '
            f'name="{name}" value="false"> {text["false"]}</label>'
        )
    elif kind == "numeric":
        body = (
            f'<label>{text["your_answer"]} <input type="text" inputmode="decimal" '
            f'name="{name}" autocomplete="off" aria-label="{text["number"]}"></label>'
        )
    else:
        body = (
            f'<label>{text["your_answer"]} <input type="text" name="{name}" '
            f'autocomplete="off" maxlength="{q.MAX_TEXT_ANSWER}"></label>'
        )
    return (
        f'<fieldset class="exercise-question" data-question="{escape(question["id"])}" '
        f'data-type="{kind}">{legend}{body}'
        f'<div class="exercise-feedback" role="status" aria-live="polite"></div></fieldset>'
    )


def player(resource, context=None) -> str:
    if resource.kind != "exercise":
        return ""
    text = _texts()
    try:
        questions = q.load_exercise(resource.data or {})
    except q.ValidationError:
        return Markup(f'<p class="meta player-empty">{text["malformed"]}</p>')
    locale = str(get_locale() or "zh_CN")
    if hooks.current_actor() is None:
        page = hooks.content_url("resource", resource.content_id, external=False)
        login = escape(url_for("accounts.login", next=page))
        login_link = f'<p><a class="button" href="{login}">{text["login"]}</a></p>'
    else:
        login_link = ""
    shown = [q.public_view(question, locale) for question in questions]
    fieldsets = "".join(_question_html(i + 1, s, text) for i, s in enumerate(shown))
    start = url_for("exercise_plugin.start", content_id=resource.content_id)
    submit = url_for("exercise_plugin.submit", attempt_id="ATTEMPT")
    script = url_for("exercise_plugin.static", filename="exercise.js")
    style = url_for("exercise_plugin.static", filename="exercise.css")
    return Markup(
        f'<link rel="stylesheet" href="{escape(style)}">{login_link}'
        f'<form class="exercise-player" data-start="{escape(start)}" '
        f'data-submit="{escape(submit)}" data-again="{text["again"]}" '
        f'data-submit-label="{text["submit"]}" data-right="{text["right"]}" '
        f'data-wrong="{text["wrong"]}" data-answer-label="{text["answer_label"]}" '
        f'data-score-label="{text["score_label"]}" novalidate>'
        f"{fieldsets}"
        f'<p class="exercise-score" role="status" aria-live="polite"></p>'
        f'<button type="submit" class="button exercise-submit"'
        f"{' disabled' if login_link else ''}>{text['submit']}</button></form>"
        f'{hooks.player_script()}<script src="{escape(script)}"></script>'
    )


def _export(sender, user=None, **kwargs):
    return attempts.export_for(user)


def _erase(sender, user=None, **kwargs):
    return attempts.erase_for(user)


def register(ctx: hooks.PluginContext) -> None:
    ctx.register_blueprint(bp)
    ctx.register_player(hooks.ContentType(kind="exercise", label="Exercise", player=player))
    ctx.connect(hooks.signals.personal_data_export, _export)
    ctx.connect(hooks.signals.personal_data_erase, _erase)
