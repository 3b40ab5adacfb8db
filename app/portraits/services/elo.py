"""Elo ratings for knowledge points with too little data for BKT (Pelánek 2016).

P(right) = σ(θ_student + θ_student,skill − b_item).  After an answer with outcome c
(1 right, 0 wrong) and prediction P: θ_student += K(n)·(c − P) and
θ_student,skill += K(n)·(c − P) for the student, b_item −= K(n)·(c − P) for the item,
with the uncertainty function K(n) = a / (1 + b·n) of the number n of earlier updates.
The mastery shown for a sparse skill is σ(θ_student + θ_student,skill): the chance of
answering an item of average difficulty right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

K_A = 0.8
K_B = 0.05


def k_factor(count: int) -> float:
    return K_A / (1.0 + K_B * count)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))


@dataclass
class Rating:
    value: float = 0.0
    count: int = 0


def update(student: Rating, student_skill: Rating, item: Rating, correct: bool) -> float:
    """Apply one answer in place; returns the prediction made before it."""
    predicted = sigmoid(student.value + student_skill.value - item.value)
    error = (1.0 if correct else 0.0) - predicted
    student.value += k_factor(student.count) * error
    student_skill.value += k_factor(student_skill.count) * error
    item.value -= k_factor(item.count) * error
    student.count += 1
    student_skill.count += 1
    item.count += 1
    return predicted


def mastery(student: Rating, student_skill: Rating) -> float:
    return sigmoid(student.value + student_skill.value)
