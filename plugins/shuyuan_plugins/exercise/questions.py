"""The exercise format stored in ``Resource.data`` of ``kind: exercise`` resources, its
validation, the public view sent to the browser (no answers) and scoring.

Format (YAML as in ``content/resources.yaml``)::

    data:
      questions:
        - id: q1                        # unique in the exercise: letters, digits, _ and -
          type: single_choice           # single_choice | multiple_choice | true_false
                                        # | fill_blank | numeric
          prompt: 京剧的四大行当是哪四个？  # plain text (never HTML)
          options: [生旦净丑, ...]       # choice types only, 2 to 10 options
          answer: 0                     # single_choice: option index; multiple_choice: a
                                        # list of indexes; true_false: true/false;
                                        # fill_blank: a string or a list of accepted
                                        # strings; numeric: a number
          tolerance: 0.01               # numeric only (absolute, default 0)
          explanation: ...              # shown after submission
          knowledge_points: [<CASE item identifier>, ...]   # optional alignment
          points: 1                     # optional weight (default 1)
          translations: {en: {prompt: ..., options: [...], explanation: ...}}   # optional
          setup: {...}                  # optional, player-specific (e.g. a Go position)

Fill-in answers compare after Unicode NFKC normalisation, trimming, collapsing spaces and
case folding, so full-width digits and letters match their ASCII forms.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

TYPES = ("single_choice", "multiple_choice", "true_false", "fill_blank", "numeric")
CHOICE_TYPES = ("single_choice", "multiple_choice")
MAX_QUESTIONS = 200
MAX_TEXT_ANSWER = 200


class _TranslationSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    prompt = fields.String(validate=validate.Length(max=2000))
    options = fields.List(fields.String(validate=validate.Length(max=500)))
    explanation = fields.String(validate=validate.Length(max=4000))


class QuestionSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(
        required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,32}$", error="Not a valid id.")
    )
    type = fields.String(required=True, validate=validate.OneOf(TYPES))
    prompt = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    options = fields.List(fields.String(validate=validate.Length(min=1, max=500)))
    answer = fields.Raw(required=True, allow_none=False)
    tolerance = fields.Float(validate=validate.Range(min=0), allow_nan=False)
    explanation = fields.String(validate=validate.Length(max=4000), load_default="")
    knowledge_points = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        validate=validate.Length(max=20),
        load_default=list,
    )
    points = fields.Float(
        validate=validate.Range(min=0, min_inclusive=False, max=100), load_default=1.0
    )
    translations = fields.Dict(
        keys=fields.String(validate=validate.Length(max=8)),
        values=fields.Nested(_TranslationSchema),
        load_default=dict,
    )
    setup = fields.Dict(load_default=dict)

    @validates_schema
    def _answer_matches_type(self, data, **kwargs):
        kind, answer, options = data.get("type"), data.get("answer"), data.get("options")
        if kind in CHOICE_TYPES:
            if not options or not 2 <= len(options) <= 10:
                raise ValidationError("2 to 10 options.", "options")
            indexes = [answer] if kind == "single_choice" else answer
            if kind == "multiple_choice" and (not isinstance(answer, list) or not answer):
                raise ValidationError("A non-empty list of option indexes.", "answer")
            for index in indexes:
                if not _is_int(index) or not 0 <= index < len(options):
                    raise ValidationError("An option index.", "answer")
        elif kind == "true_false":
            if not isinstance(answer, bool):
                raise ValidationError("true or false.", "answer")
        elif kind == "fill_blank":
            accepted = answer if isinstance(answer, list) else [answer]
            if not accepted or not all(
                isinstance(a, str) and 0 < len(a) <= MAX_TEXT_ANSWER for a in accepted
            ):
                raise ValidationError("A string or a list of strings.", "answer")
        elif kind == "numeric" and not _is_number(answer):
            raise ValidationError("A number.", "answer")


class ExerciseSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    questions = fields.List(
        fields.Nested(QuestionSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_QUESTIONS),
    )

    @validates_schema
    def _unique_ids(self, data, **kwargs):
        ids = [q["id"] for q in data.get("questions", [])]
        if len(ids) != len(set(ids)):
            raise ValidationError("Question ids must be unique.", "questions")


def _is_int(value) -> bool:
    # bool is an int in Python: True must not silently mean option 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def load_exercise(data) -> list[dict]:
    """The validated questions of a resource's ``data``; raises ValidationError."""
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["An object."]})
    return ExerciseSchema().load(data)["questions"]


def digest(question: dict) -> str:
    """A stable fingerprint of everything that affects scoring or display."""
    canonical = json.dumps(question, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def localised(question: dict, locale: str | None) -> dict:
    """Prompt, options and explanation in ``locale`` when a translation exists."""
    out = dict(question)
    if locale and not locale.startswith("zh"):
        extra = (question.get("translations") or {}).get(locale[:2]) or {}
        for key in ("prompt", "explanation"):
            if extra.get(key):
                out[key] = extra[key]
        if extra.get("options") and len(extra["options"]) == len(question.get("options") or []):
            out["options"] = extra["options"]
    return out


def public_view(question: dict, locale: str | None = None) -> dict:
    """What the browser may see before submitting: never the answer or explanation."""
    shown = localised(question, locale)
    out = {"id": shown["id"], "type": shown["type"], "prompt": shown["prompt"]}
    if shown["type"] in CHOICE_TYPES:
        out["options"] = list(shown["options"])
    if shown.get("setup"):
        out["setup"] = shown["setup"]
    return out


# --- responses ------------------------------------------------------------------------------


class ResponseError(ValueError):
    """A response of the wrong shape for its question (reported as 422); the argument
    names what was expected: index, indexes, boolean, text or number."""


def check_response(question: dict, response):
    """The response in canonical form, or ResponseError."""
    kind = question["type"]
    if kind == "single_choice":
        if not _is_int(response) or not 0 <= response < len(question["options"]):
            raise ResponseError("index")
        return response
    if kind == "multiple_choice":
        if not isinstance(response, list) or len(response) > len(question["options"]):
            raise ResponseError("indexes")
        if not all(_is_int(i) and 0 <= i < len(question["options"]) for i in response):
            raise ResponseError("indexes")
        return sorted(set(response))
    if kind == "true_false":
        if not isinstance(response, bool):
            raise ResponseError("boolean")
        return response
    if kind == "fill_blank":
        if not isinstance(response, str) or len(response) > MAX_TEXT_ANSWER:
            raise ResponseError("text")
        return response
    # numeric: a number, or text that is one (a phone keyboard sends text)
    if isinstance(response, str) and len(response) <= 40:
        try:
            response = float(normalise_text(response).replace(",", ""))
        except ValueError:
            raise ResponseError("number") from None
    if not _is_number(response):
        raise ResponseError("number")
    return response


def normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", " ", text).strip().casefold()


def is_correct(question: dict, response) -> bool:
    kind, answer = question["type"], question["answer"]
    if kind == "single_choice":
        return response == answer
    if kind == "multiple_choice":
        return sorted(set(response)) == sorted(set(answer))
    if kind == "true_false":
        return response is answer
    if kind == "fill_blank":
        accepted = answer if isinstance(answer, list) else [answer]
        return normalise_text(response) in {normalise_text(a) for a in accepted}
    tolerance = question.get("tolerance") or 0.0
    return abs(float(response) - float(answer)) <= tolerance + 1e-9


def xapi_response(question: dict, response) -> str:
    """The response in the xAPI cmi.interaction syntax of the question's type."""
    kind = question["type"]
    if kind == "multiple_choice":
        return "[,]".join(str(i) for i in response)
    if kind == "true_false":
        return "true" if response else "false"
    if kind == "numeric":
        return repr(float(response)).removesuffix(".0")
    return str(response)


INTERACTION_TYPES = {
    "single_choice": "choice",
    "multiple_choice": "choice",
    "true_false": "true-false",
    "fill_blank": "fill-in",
    "numeric": "numeric",
}
