"""Plain helpers of the portraits and exercise tests."""

from __future__ import annotations

import re

from app.catalog import services as catalog
from app.catalog.models import Resource
from app.extensions import db
from tests.catalog.helpers import make_content

QUESTIONS = [
    {
        "id": "q1",
        "type": "single_choice",
        "prompt": "3 + (-5) = ?",
        "options": ["2", "-2", "8", "-8"],
        "answer": 1,
        "explanation": "异号相加，取绝对值较大的符号。",
        "knowledge_points": ["kp-add"],
    },
    {
        "id": "q2",
        "type": "multiple_choice",
        "prompt": "哪些是负数？",
        "options": ["-1", "0", "-0.5", "3"],
        "answer": [0, 2],
        "explanation": "小于 0 的数是负数。",
        "knowledge_points": ["kp-neg"],
    },
    {
        "id": "q3",
        "type": "true_false",
        "prompt": "0 是正数。",
        "answer": False,
        "explanation": "0 既不是正数也不是负数。",
        "knowledge_points": ["kp-neg"],
    },
    {
        "id": "q4",
        "type": "fill_blank",
        "prompt": "-3 的相反数是____。",
        "answer": ["3", "+3"],
        "explanation": "只有符号不同的两个数互为相反数。",
        "knowledge_points": ["kp-neg"],
    },
    {
        "id": "q5",
        "type": "numeric",
        "prompt": "1/3 ≈ ? (两位小数)",
        "answer": 0.33,
        "tolerance": 0.005,
        "explanation": "1 ÷ 3 = 0.333…",
        "knowledge_points": ["kp-add"],
    },
]
ALL_RIGHT = {"q1": 1, "q2": [2, 0], "q3": False, "q4": "３", "q5": "0.33"}


def make_exercise(author, questions=None, **extra) -> str:
    data = {"questions": questions if questions is not None else QUESTIONS}
    return make_content(
        author, Resource, "published", kind="exercise", title="有理数小测", data=data, **extra
    )


def edit_exercise(author, content_id: str, questions: list[dict]) -> None:
    """Publish a new version of the exercise with ``questions``."""
    catalog.update_content(author, Resource, content_id, {"data": {"questions": questions}})
    catalog.submit_content(author, Resource, content_id)
    db.session.commit()


def page_csrf(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'data-csrf="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    return found.group(1)
