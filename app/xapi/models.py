"""Learning Record Store tables.

Statements are append-only: the full statement (as returned in ``exact`` format) is kept
as JSON, and the properties queries filter on are copied into indexed columns.  Long
identifiers (IRIs, agent identifiers) are indexed through their SHA-1 so that B-tree keys
stay small whatever the IRI length.  Every row carries its tenant: ``district_id`` (never
null) and ``school_id`` (null for district-wide clients and district-level emission).

Query order is ``(stored, id)``; every query index ends with those two columns so a page
is an index range scan that stops after ``limit`` rows (keyset pagination for ``more``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index

from app.common.models import JSONType, TimestampMixin, cascading_fk, utcnow
from app.extensions import db

BigId = BigInteger().with_variant(db.Integer(), "sqlite")


class LrsClient(TimestampMixin, db.Model):
    """Credentials of an xAPI client (HTTP Basic key/secret), scoped to one tenant."""

    __tablename__ = "xapi_clients"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(200), nullable=False)
    key = db.Column(db.String(64), nullable=False, unique=True)
    # SHA-256 of the random secret (the secret has 256 bits of entropy, so no slow hash).
    secret_hash = db.Column(db.String(64), nullable=False)
    district_id = db.Column(db.Integer, db.ForeignKey("districts.id"), nullable=False, index=True)
    school_id = db.Column(db.Integer, db.ForeignKey("schools.id"), index=True)
    scopes = db.Column(JSONType, nullable=False, default=list)
    revoked_at = db.Column(db.DateTime)
    # The xAPI version this client last spoke (X-Experience-API-Version); used to answer a
    # request that omits the header in the version the client is evidently using.
    last_version = db.Column(db.String(8), nullable=False, default="2.0.0")
    # The authority put on statements this client stores.
    authority = db.Column(JSONType, nullable=False)

    district = db.relationship("District")
    school = db.relationship("School")


class Statement(db.Model):
    __tablename__ = "xapi_statements"
    __table_args__ = (
        db.UniqueConstraint("district_id", "statement_id"),
        Index("ix_xapi_statements_page", "district_id", "stored", "id"),
        Index("ix_xapi_statements_actor", "district_id", "actor_hash", "stored", "id"),
        Index("ix_xapi_statements_verb", "district_id", "verb_hash", "stored", "id"),
        Index("ix_xapi_statements_object", "district_id", "object_hash", "stored", "id"),
        Index("ix_xapi_statements_registration", "district_id", "registration", "stored", "id"),
        Index("ix_xapi_statements_school", "school_id", "stored", "id"),
    )

    id = db.Column(BigId, primary_key=True, autoincrement=True)
    statement_id = db.Column(db.String(36), nullable=False)
    district_id = db.Column(db.Integer, db.ForeignKey("districts.id"), nullable=False)
    school_id = db.Column(db.Integer, db.ForeignKey("schools.id"))
    client_id = db.Column(db.Integer, db.ForeignKey("xapi_clients.id", ondelete="SET NULL"))
    # SHA-1 of the actor's identifier (see services.agent_key), the verb IRI, the object
    # (activity IRI, agent identifier or referenced statement id).
    actor_hash = db.Column(db.String(40), nullable=False)
    verb_hash = db.Column(db.String(40), nullable=False)
    object_type = db.Column(db.String(16), nullable=False)
    object_hash = db.Column(db.String(40), nullable=False)
    # StatementRef objects: the referenced statement id (voiding, statements about statements).
    object_ref = db.Column(db.String(36))
    registration = db.Column(db.String(36))
    stored = db.Column(db.DateTime, nullable=False)
    timestamp = db.Column(db.DateTime, nullable=False)
    voided = db.Column(db.Boolean, nullable=False, default=False)
    is_voiding = db.Column(db.Boolean, nullable=False, default=False)
    # Version the statement was sent with (its "version" property, defaulted).
    version = db.Column(db.String(16), nullable=False)
    has_attachments = db.Column(db.Boolean, nullable=False, default=False)
    # The statement as stored ("exact" format); column "data" ("full" is reserved in SQL).
    full = db.Column("data", JSONType, nullable=False)

    __mapper_args__ = {"eager_defaults": False}


# Statements that point at other statements are rare; this partial index lets queries find
# the ones targeting a matching statement without scanning the table.
Index(
    "ix_xapi_statements_refs",
    Statement.district_id,
    Statement.stored,
    Statement.id,
    postgresql_where=Statement.object_type == "StatementRef",
    sqlite_where=Statement.object_type == "StatementRef",
)
# The agent filter also matches statements whose object is that agent: few of them, so a
# partial index keeps that branch of the query off the (activity-filled) object index.
Index(
    "ix_xapi_statements_agent_object",
    Statement.district_id,
    Statement.object_hash,
    Statement.stored,
    Statement.id,
    postgresql_where=Statement.object_type.in_(("Agent", "Group")),
    sqlite_where=Statement.object_type.in_(("Agent", "Group")),
)
Index(
    "ix_xapi_statements_target",
    Statement.district_id,
    Statement.object_ref,
    postgresql_where=Statement.object_ref.isnot(None),
    sqlite_where=Statement.object_ref.isnot(None),
)


class StatementRelation(db.Model):
    """Agents and activities a statement mentions anywhere (for related_agents /
    related_activities queries)."""

    __tablename__ = "xapi_statement_relations"
    __table_args__ = (
        Index("ix_xapi_statement_relations_key", "district_id", "key_hash", "statement_pk"),
    )

    id = db.Column(BigId, primary_key=True, autoincrement=True)
    statement_pk = db.Column(
        BigId, db.ForeignKey("xapi_statements.id", ondelete="CASCADE"), nullable=False, index=True
    )
    district_id = db.Column(db.Integer, nullable=False)
    # "agent" or "activity"
    kind = db.Column(db.String(8), nullable=False)
    key_hash = db.Column(db.String(40), nullable=False)


class Attachment(db.Model):
    """Attachment content, shared by every statement of the tenant naming its SHA-2."""

    __tablename__ = "xapi_attachments"
    __table_args__ = (db.UniqueConstraint("district_id", "sha2"),)

    id = db.Column(db.Integer, primary_key=True)
    district_id = db.Column(db.Integer, db.ForeignKey("districts.id"), nullable=False)
    sha2 = db.Column(db.String(128), nullable=False)
    content_type = db.Column(db.String(255), nullable=False)
    content = db.Column(db.LargeBinary, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class Document(db.Model):
    """State, Activity Profile and Agent Profile documents."""

    __tablename__ = "xapi_documents"
    __table_args__ = (
        db.UniqueConstraint(
            "tenant", "kind", "activity_hash", "agent_hash", "registration", "doc_id"
        ),
        Index(
            "ix_xapi_documents_scope",
            "tenant",
            "kind",
            "activity_hash",
            "agent_hash",
            "registration",
            "updated",
        ),
    )

    id = db.Column(db.Integer, primary_key=True)
    # "d<district id>" or "s<school id>": documents are private to the client's tenant.
    tenant = db.Column(db.String(24), nullable=False)
    kind = db.Column(db.String(16), nullable=False)  # state | activity_profile | agent_profile
    activity_hash = db.Column(db.String(40), nullable=False, default="")
    agent_hash = db.Column(db.String(40), nullable=False, default="")
    registration = db.Column(db.String(36), nullable=False, default="")
    doc_id = db.Column(db.Text, nullable=False)
    content_type = db.Column(db.String(255), nullable=False)
    content = db.Column(db.LargeBinary, nullable=False)
    etag = db.Column(db.String(64), nullable=False)
    updated = db.Column(db.DateTime, nullable=False, default=utcnow)


class Activity(db.Model):
    """Canonical definition of an activity per tenant (Activities resource)."""

    __tablename__ = "xapi_activities"
    __table_args__ = (db.UniqueConstraint("district_id", "activity_hash"),)

    id = db.Column(db.Integer, primary_key=True)
    district_id = db.Column(db.Integer, db.ForeignKey("districts.id"), nullable=False)
    activity_hash = db.Column(db.String(40), nullable=False)
    activity_id = db.Column(db.Text, nullable=False)
    definition = db.Column(JSONType)
    updated = db.Column(db.DateTime, nullable=False, default=utcnow)


class ForwardTarget(TimestampMixin, db.Model):
    """A district's external LRS that receives a copy of its statements."""

    __tablename__ = "xapi_forward_targets"

    id = db.Column(db.Integer, primary_key=True)
    district_id = db.Column(db.Integer, db.ForeignKey("districts.id"), nullable=False, unique=True)
    endpoint = db.Column(db.String(500), nullable=False)
    username = db.Column(db.String(200), nullable=False, default="")
    password = db.Column(db.String(500), nullable=False, default="")
    version = db.Column(db.String(10), nullable=False, default="1.0.3")
    active = db.Column(db.Boolean, nullable=False, default=True)


class OutboxEntry(db.Model):
    """A statement waiting to be forwarded; deleted once the external LRS accepted it."""

    __tablename__ = "xapi_outbox"
    __table_args__ = (Index("ix_xapi_outbox_due", "next_attempt_at", "id"),)

    id = db.Column(BigId, primary_key=True, autoincrement=True)
    target_id = cascading_fk("xapi_forward_targets.id")
    statement_pk = db.Column(
        BigId, db.ForeignKey("xapi_statements.id", ondelete="CASCADE"), nullable=False
    )
    attempts = db.Column(db.Integer, nullable=False, default=0)
    next_attempt_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_error = db.Column(db.Text)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
