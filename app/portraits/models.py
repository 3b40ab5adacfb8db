"""Tables of the portraits feature.

Evidence (``Observation``, ``Usage``, ``EngagementDay``, ``Interest``) is extracted from
the LRS; the model state (``SkillParams``, ``Mastery``, ``EloRating``) belongs to a
``Generation``: incremental updates write into the active one, a rebuild fills a new one
and switches when complete, so an interrupted rebuild leaves the previous one served.
"""

from __future__ import annotations

from sqlalchemy import BigInteger

from app.common.models import JSONType, cascading_fk, utcnow
from app.extensions import db

BigId = BigInteger().with_variant(db.Integer(), "sqlite")


class Generation(db.Model):
    __tablename__ = "portraits_generations"

    id = db.Column(db.Integer, primary_key=True)
    # building → active → retired; failed when a rebuild gave up.
    state = db.Column(db.String(12), nullable=False, default="building", index=True)
    started_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    finished_at = db.Column(db.DateTime)
    skills_total = db.Column(db.Integer, nullable=False, default=0)
    skills_done = db.Column(db.Integer, nullable=False, default=0)
    # Observations up to this id are in the build; later ones are replayed at the switch.
    max_observation_id = db.Column(BigId, nullable=False, default=0)


class Observation(db.Model):
    """One scored answer on one skill (a knowledge point, or its exactMatchOf group)."""

    __tablename__ = "portraits_observations"
    __table_args__ = (
        db.UniqueConstraint("statement_id", "skill"),
        db.Index("ix_portraits_observations_skill", "skill", "user_id", "id"),
        db.Index("ix_portraits_observations_user", "user_id", "id"),
    )

    id = db.Column(BigId, primary_key=True, autoincrement=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    skill = db.Column(db.String(64), nullable=False)
    # The knowledge point the evidence named (skill is its canonical equivalent).
    knowledge_point = db.Column(db.String(64), nullable=False)
    item = db.Column(db.String(40), nullable=False)  # sha1 of the question activity id
    resource_content_id = db.Column(db.String(36))
    correct = db.Column(db.Boolean, nullable=False)
    kind = db.Column(db.String(12), nullable=False, default="answer")  # answer | resource
    statement_id = db.Column(db.String(36), nullable=False)
    at = db.Column(db.DateTime, nullable=False)


class Usage(db.Model):
    """A student used a (non-exercise) resource: the basis of "this helped others"."""

    __tablename__ = "portraits_usage"

    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    resource_content_id = db.Column(db.String(36), primary_key=True)
    first_at = db.Column(db.DateTime, nullable=False)
    last_at = db.Column(db.DateTime, nullable=False)
    seconds = db.Column(db.Float, nullable=False, default=0.0)
    completed = db.Column(db.Boolean, nullable=False, default=False)


class EngagementDay(db.Model):
    __tablename__ = "portraits_engagement"

    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day = db.Column(db.Date, primary_key=True)
    seconds = db.Column(db.Float, nullable=False, default=0.0)
    events = db.Column(db.Integer, nullable=False, default=0)
    completions = db.Column(db.Integer, nullable=False, default=0)
    answers = db.Column(db.Integer, nullable=False, default=0)


class Interest(db.Model):
    """Time and events per extended-course category (or a plugin's dimension)."""

    __tablename__ = "portraits_interests"

    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    category = db.Column(db.String(64), primary_key=True)
    seconds = db.Column(db.Float, nullable=False, default=0.0)
    events = db.Column(db.Integer, nullable=False, default=0)


class SkillParams(db.Model):
    __tablename__ = "portraits_skill_params"

    generation_id = db.Column(
        db.Integer, db.ForeignKey("portraits_generations.id", ondelete="CASCADE"), primary_key=True
    )
    skill = db.Column(db.String(64), primary_key=True)
    method = db.Column(db.String(8), nullable=False)  # bkt | elo
    prior = db.Column(db.Float, nullable=False)
    learn = db.Column(db.Float, nullable=False)
    guess = db.Column(db.Float, nullable=False)
    slip = db.Column(db.Float, nullable=False)
    answers = db.Column(db.Integer, nullable=False, default=0)
    students = db.Column(db.Integer, nullable=False, default=0)
    loglik = db.Column(db.Float)


class Mastery(db.Model):
    __tablename__ = "portraits_mastery"
    __table_args__ = (db.Index("ix_portraits_mastery_user", "generation_id", "user_id"),)

    generation_id = db.Column(
        db.Integer, db.ForeignKey("portraits_generations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    skill = db.Column(db.String(64), primary_key=True)
    p_known = db.Column(db.Float, nullable=False)
    method = db.Column(db.String(8), nullable=False)
    answers = db.Column(db.Integer, nullable=False, default=0)
    correct = db.Column(db.Integer, nullable=False, default=0)
    last_observation_id = db.Column(BigId, nullable=False, default=0)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class EloRating(db.Model):
    __tablename__ = "portraits_elo"

    generation_id = db.Column(
        db.Integer, db.ForeignKey("portraits_generations.id", ondelete="CASCADE"), primary_key=True
    )
    kind = db.Column(db.String(8), primary_key=True)  # student | skill | item
    key = db.Column(db.String(80), primary_key=True)  # "12", "12:<skill>", item hash
    value = db.Column(db.Float, nullable=False, default=0.0)
    count = db.Column(db.Integer, nullable=False, default=0)


class ResourceGain(db.Model):
    """What a resource did for a skill among students who used it while not mastering it:
    ``helped`` of ``users`` answered the next question on the skill right."""

    __tablename__ = "portraits_resource_gain"

    generation_id = db.Column(
        db.Integer, db.ForeignKey("portraits_generations.id", ondelete="CASCADE"), primary_key=True
    )
    resource_content_id = db.Column(db.String(36), primary_key=True)
    skill = db.Column(db.String(64), primary_key=True)
    users = db.Column(db.Integer, nullable=False, default=0)
    helped = db.Column(db.Integer, nullable=False, default=0)


class Snapshot(db.Model):
    """A student's portrait on one day (kept for trends)."""

    __tablename__ = "portraits_snapshots"

    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day = db.Column(db.Date, primary_key=True)
    mastery = db.Column(JSONType, nullable=False, default=dict)  # skill -> p_known
    average = db.Column(db.Float)


class Feedback(db.Model):
    """A student's reaction to a recommendation (also sent as xAPI)."""

    __tablename__ = "portraits_feedback"
    __table_args__ = (db.Index("ix_portraits_feedback_user", "user_id", "resource_content_id"),)

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    resource_content_id = db.Column(db.String(36), nullable=False)
    skill = db.Column(db.String(64))
    action = db.Column(db.String(16), nullable=False)  # clicked | not_useful | known
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class Assignment(db.Model):
    """A teacher assigned a resource to a group of her class."""

    __tablename__ = "portraits_assignments"

    id = db.Column(db.Integer, primary_key=True)
    class_id = cascading_fk("school_classes.id")
    resource_content_id = db.Column(db.String(36), nullable=False)
    skill = db.Column(db.String(64))
    student_ids = db.Column(JSONType, nullable=False, default=list)
    assigned_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class IngestCursor(db.Model):
    """How far the LRS has been read (statement primary key)."""

    __tablename__ = "portraits_cursor"

    name = db.Column(db.String(32), primary_key=True)
    position = db.Column(BigId, nullable=False, default=0)


class Forgotten(db.Model):
    """A student whose learning data was erased: statements up to ``at`` are never read
    into portraits again (the LRS keeps its own records under the xAPI feature's rules)."""

    __tablename__ = "portraits_forgotten"

    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    at = db.Column(db.DateTime, nullable=False, default=utcnow)
