"""Tenancy (region → district → school) and users with scoped roles."""

from __future__ import annotations

import enum

from flask_login import UserMixin

from app.common.models import TimestampMixin, cascading_fk, children, new_uuid, utcnow, value_enum
from app.extensions import db


class Role(enum.StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    DISTRICT_ADMIN = "district_admin"
    TEACHER = "teacher"
    STUDENT = "student"


class _OrgUnitMixin(TimestampMixin):
    """What a region, a district and a school each have: a unique code and a name."""

    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(64), nullable=False, unique=True)
    name = db.Column(db.String(200), nullable=False)
    name_en = db.Column(db.String(200))


class Region(_OrgUnitMixin, db.Model):
    __tablename__ = "regions"

    districts = db.relationship("District", back_populates="region", order_by="District.id")


class District(_OrgUnitMixin, db.Model):
    __tablename__ = "districts"

    region_id = db.Column(db.Integer, db.ForeignKey("regions.id"), nullable=False, index=True)
    # A district may require its admins to approve every publication of its teachers.
    requires_review = db.Column(db.Boolean, nullable=False, default=False)

    region = db.relationship("Region", back_populates="districts")
    schools = db.relationship("School", back_populates="district", order_by="School.id")


class School(_OrgUnitMixin, db.Model):
    __tablename__ = "schools"

    district_id = db.Column(db.Integer, db.ForeignKey("districts.id"), nullable=False, index=True)

    district = db.relationship("District", back_populates="schools")


class RoleLookups:
    """Role look-ups used by authorisation checks in services, over ``self.roles``
    (objects with ``role``, ``district_id``, ``school_id``) and the account's own
    ``school_id``/``district_id``: shared by :class:`User` and by the light
    :class:`app.accounts.principal.Principal` a bearer token resolves to on hot read
    paths, so both answer every check the same way."""

    __slots__ = ()

    def has_role(self, role: Role) -> bool:
        return any(assignment.role == role for assignment in self.roles)

    @property
    def is_platform_admin(self) -> bool:
        return self.has_role(Role.PLATFORM_ADMIN)

    @property
    def is_teacher(self) -> bool:
        return self.has_role(Role.TEACHER)

    @property
    def is_student(self) -> bool:
        return self.has_role(Role.STUDENT)

    def admin_district_ids(self) -> set[int]:
        return {
            a.district_id for a in self.roles if a.role == Role.DISTRICT_ADMIN and a.district_id
        }

    def is_district_admin(self, district_id: int | None = None) -> bool:
        ids = self.admin_district_ids()
        return bool(ids) if district_id is None else district_id in ids

    def member_school_ids(self) -> set[int]:
        ids = {a.school_id for a in self.roles if a.school_id}
        if self.school_id:
            ids.add(self.school_id)
        return ids

    def member_district_ids(self) -> set[int]:
        ids = {a.district_id for a in self.roles if a.district_id}
        if self.district_id:
            ids.add(self.district_id)
        return ids

    def role_names(self) -> list[str]:
        return sorted({str(a.role) for a in self.roles})


class User(RoleLookups, UserMixin, TimestampMixin, db.Model):
    __tablename__ = "users"

    id = db.Column(db.Integer, primary_key=True)
    # Stable public identifier (xAPI actors, LTI, exports); never the row id or email.
    public_id = db.Column(db.String(36), nullable=False, unique=True, default=new_uuid)
    # LTI-provisioned users may have no email.
    email = db.Column(db.String(254), unique=True)
    name = db.Column(db.String(200), nullable=False)
    password_hash = db.Column(db.String(255))
    locale = db.Column(db.String(10))
    school_id = db.Column(db.Integer, db.ForeignKey("schools.id"), index=True)
    district_id = db.Column(db.Integer, db.ForeignKey("districts.id"), index=True)
    is_active_account = db.Column(db.Boolean, nullable=False, default=True)
    deleted_at = db.Column(db.DateTime)
    last_login_at = db.Column(db.DateTime)

    school = db.relationship("School")
    district = db.relationship("District")
    roles = children("RoleAssignment", back_populates="user", lazy="selectin")

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.is_active_account and self.deleted_at is None

    def get_id(self) -> str:
        # Session cookies hold the public id, so a recycled row id can never log anyone in.
        return self.public_id


class RoleAssignment(db.Model):
    """A role held within an organisation: a teacher of one school, the admin of one
    district.  A user may hold several."""

    __tablename__ = "role_assignments"
    __table_args__ = (db.UniqueConstraint("user_id", "role", "district_id", "school_id"),)

    id = db.Column(db.Integer, primary_key=True)
    user_id = cascading_fk("users.id")
    role = db.Column(value_enum(Role, length=32), nullable=False)
    district_id = db.Column(db.Integer, db.ForeignKey("districts.id"), index=True)
    school_id = db.Column(db.Integer, db.ForeignKey("schools.id"), index=True)

    user = db.relationship("User", back_populates="roles")


class ApiToken(db.Model):
    """A bearer token.  Only its SHA-256 is stored; the token itself is shown once."""

    __tablename__ = "api_tokens"

    id = db.Column(db.Integer, primary_key=True)
    user_id = cascading_fk("users.id")
    name = db.Column(db.String(100), nullable=False, default="api")
    token_hash = db.Column(db.String(64), nullable=False, unique=True)
    prefix = db.Column(db.String(12), nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    expires_at = db.Column(db.DateTime)
    last_used_at = db.Column(db.DateTime)
    revoked_at = db.Column(db.DateTime)

    user = db.relationship("User")
