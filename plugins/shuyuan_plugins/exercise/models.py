"""Tables of the exercise player: question versions, attempts and answers.

A question is stored once per distinct content (``digest``): editing a question makes a
new version, and an attempt points at the versions it was started with, so old attempts
keep the questions, answer keys and explanations they were scored against.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.hooks import db


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class QuestionVersion(db.Model):
    __tablename__ = "exercise_question_versions"
    __table_args__ = (
        db.UniqueConstraint("resource_content_id", "question_id", "version"),
        db.UniqueConstraint("resource_content_id", "question_id", "digest"),
    )

    id = db.Column(db.Integer, primary_key=True)
    resource_content_id = db.Column(db.String(36), nullable=False)
    question_id = db.Column(db.String(32), nullable=False)
    version = db.Column(db.Integer, nullable=False)
    digest = db.Column(db.String(64), nullable=False)
    body = db.Column(db.JSON, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class Attempt(db.Model):
    __tablename__ = "exercise_attempts"
    __table_args__ = (
        db.Index("ix_exercise_attempts_user_resource", "user_id", "resource_content_id"),
    )

    id = db.Column(db.String(36), primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    resource_content_id = db.Column(db.String(36), nullable=False)
    resource_version = db.Column(db.Integer, nullable=False)
    # QuestionVersion ids in the order the questions were shown.
    question_version_ids = db.Column(db.JSON, nullable=False)
    state = db.Column(db.String(12), nullable=False, default="open")  # open | submitted
    started_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    expires_at = db.Column(db.DateTime, nullable=False)
    submitted_at = db.Column(db.DateTime)
    score_raw = db.Column(db.Float)
    score_max = db.Column(db.Float)

    answers = db.relationship(
        "Answer", cascade="all, delete-orphan", passive_deletes=True, order_by="Answer.id"
    )


class Answer(db.Model):
    __tablename__ = "exercise_answers"
    __table_args__ = (db.UniqueConstraint("attempt_id", "question_version_id"),)

    id = db.Column(db.Integer, primary_key=True)
    attempt_id = db.Column(
        db.String(36), db.ForeignKey("exercise_attempts.id", ondelete="CASCADE"), nullable=False
    )
    question_version_id = db.Column(
        db.Integer, db.ForeignKey("exercise_question_versions.id"), nullable=False
    )
    # None when the question was left blank (scored wrong).
    response = db.Column(db.JSON)
    correct = db.Column(db.Boolean, nullable=False)
    points = db.Column(db.Float, nullable=False)

    question_version = db.relationship("QuestionVersion", lazy="joined")
