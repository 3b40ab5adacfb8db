"""LTI 1.3 registrations, tool keys, launch state, identities, contexts and grade outbox.

Everything a launch needs is in the database (or Redis for launch state when
``REDIS_URL`` is set), so any worker can serve any step of a launch.
"""

from __future__ import annotations

import enum

from app.common.models import JSONType, TimestampMixin, cascading_fk, children, utcnow, value_enum
from app.extensions import db


class KeyState(enum.StrEnum):
    NEXT = "next"  # published in the JWKS, not yet used for signing
    ACTIVE = "active"  # signs tool messages; published
    RETIRING = "retiring"  # no longer signs, still published during the grace period
    RETIRED = "retired"  # gone from the JWKS


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the last attempt


class LtiPlatform(TimestampMixin, db.Model):
    """One registration of Shuyuan in an LMS: (issuer, client_id)."""

    __tablename__ = "lti_platforms"
    __table_args__ = (db.UniqueConstraint("issuer", "client_id"),)

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(200), nullable=False, default="")
    issuer = db.Column(db.String(255), nullable=False, index=True)
    client_id = db.Column(db.String(255), nullable=False)
    auth_login_url = db.Column(db.String(1000), nullable=False)
    auth_token_url = db.Column(db.String(1000), nullable=False)
    key_set_url = db.Column(db.String(1000), nullable=False)
    auth_audience = db.Column(db.String(1000))
    # "manual" (admin page / CLI) or "dynamic" (LTI Dynamic Registration).
    source = db.Column(db.String(20), nullable=False, default="manual")
    product = db.Column(db.String(100))  # product_family_code from the openid configuration
    active = db.Column(db.Boolean, nullable=False, default=True)

    deployments = children("LtiDeployment", back_populates="platform", order_by="LtiDeployment.id")


class LtiDeployment(TimestampMixin, db.Model):
    """A deployment of a registration; launches count only once it is approved."""

    __tablename__ = "lti_deployments"
    __table_args__ = (db.UniqueConstraint("platform_id", "deployment_id"),)

    id = db.Column(db.Integer, primary_key=True)
    platform_id = cascading_fk("lti_platforms.id")
    deployment_id = db.Column(db.String(255), nullable=False)
    school_id = db.Column(db.Integer, db.ForeignKey("schools.id"), index=True)
    district_id = db.Column(db.Integer, db.ForeignKey("districts.id"), index=True)
    approved = db.Column(db.Boolean, nullable=False, default=False)
    approved_at = db.Column(db.DateTime)

    platform = db.relationship("LtiPlatform", back_populates="deployments")
    school = db.relationship("School")
    district = db.relationship("District")


class LtiKey(db.Model):
    """An RSA key of the tool.  Private keys never leave the database and this module."""

    __tablename__ = "lti_keys"

    id = db.Column(db.Integer, primary_key=True)
    kid = db.Column(db.String(64), nullable=False, unique=True)
    private_pem = db.Column(db.Text, nullable=False)
    public_jwk = db.Column(JSONType, nullable=False)
    state = db.Column(value_enum(KeyState), nullable=False, default=KeyState.NEXT, index=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    activated_at = db.Column(db.DateTime)
    retiring_at = db.Column(db.DateTime)
    retired_at = db.Column(db.DateTime)


class LtiLaunchData(db.Model):
    """Short-lived launch state: issued states and nonces, validated launches."""

    __tablename__ = "lti_launch_data"

    key = db.Column(db.String(255), primary_key=True)
    value = db.Column(JSONType)
    expires_at = db.Column(db.DateTime, nullable=False, index=True)


class LtiIdentity(TimestampMixin, db.Model):
    """issuer + sub → exactly one local user."""

    __tablename__ = "lti_identities"
    __table_args__ = (db.UniqueConstraint("issuer", "sub"),)

    id = db.Column(db.Integer, primary_key=True)
    issuer = db.Column(db.String(255), nullable=False)
    sub = db.Column(db.String(255), nullable=False)
    platform_id = cascading_fk("lti_platforms.id")
    user_id = cascading_fk("users.id")
    last_launch_at = db.Column(db.DateTime)

    user = db.relationship("User")


class LtiContext(TimestampMixin, db.Model):
    """An LMS course (context) of a platform, mapped to a local class."""

    __tablename__ = "lti_contexts"
    __table_args__ = (db.UniqueConstraint("platform_id", "context_id"),)

    id = db.Column(db.Integer, primary_key=True)
    platform_id = cascading_fk("lti_platforms.id")
    deployment_id = cascading_fk("lti_deployments.id")
    context_id = db.Column(db.String(255), nullable=False)
    title = db.Column(db.String(255), nullable=False, default="")
    label = db.Column(db.String(255))
    # The curriculum feature's class (no foreign key: that feature may not be installed).
    class_id = db.Column(db.Integer, index=True)
    memberships_url = db.Column(db.String(1000))
    last_roster_sync_at = db.Column(db.DateTime)
    roster_size = db.Column(db.Integer)

    platform = db.relationship("LtiPlatform")
    deployment = db.relationship("LtiDeployment")


class LtiContextMember(db.Model):
    """Who the LMS says is in a context (from launches and NRPS)."""

    __tablename__ = "lti_context_members"
    __table_args__ = (db.UniqueConstraint("context_id", "user_id"),)

    id = db.Column(db.Integer, primary_key=True)
    context_id = cascading_fk("lti_contexts.id")
    user_id = cascading_fk("users.id")
    role = db.Column(db.String(20), nullable=False)
    active = db.Column(db.Boolean, nullable=False, default=True)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class LtiGradeLink(TimestampMixin, db.Model):
    """A user's launch of a gradable resource link: where her scores go."""

    __tablename__ = "lti_grade_links"
    __table_args__ = (
        db.UniqueConstraint("platform_id", "resource_link_id", "user_id"),
        db.Index("ix_lti_grade_links_user_content", "user_id", "content_id"),
    )

    id = db.Column(db.Integer, primary_key=True)
    platform_id = cascading_fk("lti_platforms.id")
    deployment_id = cascading_fk("lti_deployments.id", index=False)
    user_id = cascading_fk("users.id", index=False)
    sub = db.Column(db.String(255), nullable=False)
    resource_link_id = db.Column(db.String(255), nullable=False)
    # content_id of the resource (or course) the link opens.
    content_id = db.Column(db.String(36), nullable=False)
    lineitem_url = db.Column(db.String(1000), nullable=False)
    scopes = db.Column(JSONType, nullable=False, default=list)


class LtiGradeOutbox(db.Model):
    """A score waiting to be (or already) posted to an LMS line item."""

    __tablename__ = "lti_grade_outbox"
    __table_args__ = (db.Index("ix_lti_grade_outbox_due", "status", "next_attempt_at"),)

    id = db.Column(db.Integer, primary_key=True)
    link_id = cascading_fk("lti_grade_links.id")
    score_given = db.Column(db.Float, nullable=False)
    score_maximum = db.Column(db.Float, nullable=False)
    activity_progress = db.Column(db.String(20), nullable=False, default="Completed")
    grading_progress = db.Column(db.String(20), nullable=False, default="FullyGraded")
    timestamp = db.Column(db.String(40), nullable=False)
    status = db.Column(value_enum(OutboxStatus), nullable=False, default=OutboxStatus.PENDING)
    attempts = db.Column(db.Integer, nullable=False, default=0)
    next_attempt_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_error = db.Column(db.String(1000))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    sent_at = db.Column(db.DateTime)

    link = db.relationship("LtiGradeLink")


class LtiRegistrationLink(db.Model):
    """A one-time Dynamic Registration link made by an administrator for one district
    (optionally one school): whoever opens it may register one LMS deployment there, and
    nowhere else.  Only the SHA-256 of the link's secret is stored."""

    __tablename__ = "lti_registration_links"

    id = db.Column(db.Integer, primary_key=True)
    token_hash = db.Column(db.String(64), nullable=False, unique=True)
    district_id = cascading_fk("districts.id")
    school_id = db.Column(db.Integer, db.ForeignKey("schools.id", ondelete="CASCADE"))
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    note = db.Column(db.String(200), nullable=False, default="")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    expires_at = db.Column(db.DateTime, nullable=False)
    used_at = db.Column(db.DateTime)
    deployment_id = db.Column(
        db.Integer, db.ForeignKey("lti_deployments.id", ondelete="SET NULL"), index=True
    )

    district = db.relationship("District")
    school = db.relationship("School")
    deployment = db.relationship("LtiDeployment")
