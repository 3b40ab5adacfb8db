"""Load demo and seed content from ``content/`` (YAML), idempotently.

Each feature can add a loader for its own part of the content folder with
:func:`register_loader`; ``flask content load`` runs them in registration order.
Everything is keyed by stable identifiers (codes, emails, content ids), so a second run
finds everything present and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import yaml
from sqlalchemy import func, select

from app.accounts import services as accounts
from app.accounts.models import District, Role, School, User
from app.catalog import services as catalog
from app.catalog.models import Course, Resource, State
from app.extensions import db


@dataclass
class LoadReport:
    created: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, created: bool) -> None:
        bucket = self.created if created else self.skipped
        bucket[kind] = bucket.get(kind, 0) + 1

    def summary(self) -> str:
        made = ", ".join(f"{v} {k}" for k, v in sorted(self.created.items())) or "nothing"
        kept = ", ".join(f"{v} {k}" for k, v in sorted(self.skipped.items())) or "nothing"
        return f"created {made}; already present {kept}"


Loader = Callable[[Path, LoadReport, Callable[[str], None]], None]
_LOADERS: list[tuple[str, Loader]] = []


def register_loader(name: str, loader: Loader) -> None:
    """Add a feature's loader; ``loader(folder, report, tick)`` must be idempotent."""
    if name not in [n for n, _ in _LOADERS]:
        _LOADERS.append((name, loader))


def read_yaml(path: Path):
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def database_is_empty() -> bool:
    return db.session.execute(select(func.count(User.id))).scalar_one() == 0


def _load_organisations(folder: Path, report: LoadReport, tick) -> None:
    data = read_yaml(folder / "organisations.yaml")
    region_data = data["region"]
    region = accounts.ensure_region(
        region_data["code"], region_data["name"], region_data.get("name_en")
    )
    for district_data in data["districts"]:
        exists = db.session.execute(
            select(District).filter_by(code=district_data["code"])
        ).scalar_one_or_none()
        district = exists or accounts.ensure_district(
            region,
            district_data["code"],
            district_data["name"],
            district_data.get("name_en"),
            district_data.get("requires_review", False),
        )
        report.add("districts", exists is None)
        for school_data in district_data.get("schools", []):
            school = db.session.execute(
                select(School).filter_by(code=school_data["code"])
            ).scalar_one_or_none()
            if school is None:
                accounts.ensure_school(
                    district, school_data["code"], school_data["name"], school_data.get("name_en")
                )
            report.add("schools", school is None)
        tick("organisations")


def _load_users(folder: Path, report: LoadReport, tick) -> None:
    for path in sorted(folder.glob("users*.yaml")):
        for user_data in read_yaml(path) or []:
            user = accounts.get_user_by_email(user_data["email"])
            report.add("users", user is None)
            if user is None:
                school = _school(user_data.get("school"))
                district = _district(user_data.get("district"))
                user = accounts.create_user(
                    user_data["email"],
                    user_data["name"],
                    user_data["password"],
                    school=school,
                    district=district,
                    locale=user_data.get("locale"),
                )
                for role_data in user_data.get("roles", []):
                    accounts.assign_role(
                        user,
                        Role(role_data["role"]),
                        school=_school(role_data.get("school")),
                        district=_district(role_data.get("district")),
                    )
            tick("users")


def _school(code: str | None) -> School | None:
    if not code:
        return None
    return db.session.execute(select(School).filter_by(code=code)).scalar_one()


def _district(code: str | None) -> District | None:
    if not code:
        return None
    return db.session.execute(select(District).filter_by(code=code)).scalar_one()


class ContentError(Exception):
    """A content file entry that cannot be loaded; the message names the file and entry."""


# How an entry ends up: published (through district review when the district requires
# it), left waiting for review, or left as a draft.
PUBLISH_MODES = {
    True: "publish",
    False: "draft",
    "publish": "publish",
    "review": "review",
    "draft": "draft",
}


def _publish(author: User, model, content_id: str, mode: str) -> None:
    if mode == "draft":
        return
    row = catalog.submit_content(author, model, content_id)
    if row.state == State.IN_REVIEW and mode == "publish":
        admin = next((a.user for a in _district_admins(row.district_id)), None)
        if admin is None:
            raise ContentError(
                f"{model.__name__} {content_id}: its district requires review and has no admin"
            )
        catalog.approve_content(admin, model, content_id)


def _district_admins(district_id: int):
    from app.accounts.models import RoleAssignment

    return (
        db.session.execute(
            select(RoleAssignment)
            .filter_by(role=Role.DISTRICT_ADMIN, district_id=district_id)
            .order_by(RoleAssignment.id)
        )
        .scalars()
        .all()
    )


def _plain(value):
    """YAML turns some timestamps into datetimes; the API schemas want ISO strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _input_data(entry: dict, model) -> dict:
    """Validate an entry with the same input schema as the JSON API."""
    from marshmallow import ValidationError

    from app.catalog import schemas

    data = _plain(entry)
    for section in data.get("sections") or []:
        for item in section.get("items") or []:
            if "resource" in item:
                item["resource_id"] = item.pop("resource")
    schema = schemas.CourseCreateSchema() if model is Course else schemas.ResourceCreateSchema()
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ContentError(f"invalid fields {exc.messages}") from None


def _load_items(folder: Path, pattern: str, model, report: LoadReport, tick) -> None:
    from app.errors import AppError

    kind_name = model.__tablename__
    for path in sorted(folder.glob(pattern)):
        for entry in read_yaml(path) or []:
            entry = dict(entry)
            content_id = str(entry.pop("content_id", "") or "")
            where = f"{path.name}: {model.__name__.lower()} {content_id or '(no content_id)'}"
            mode = PUBLISH_MODES.get(entry.pop("publish", True))
            email = entry.pop("author", None)
            if len(content_id) != 36 or mode is None:
                raise ContentError(
                    f"{where}: needs a 36-character content_id and publish true, false or review"
                )
            exists = db.session.execute(
                select(model.id).filter_by(content_id=content_id).limit(1)
            ).first()
            report.add(kind_name, exists is None)
            if exists is None:
                author = accounts.get_user_by_email(email) if email else None
                if author is None:
                    raise ContentError(f"{where}: unknown author {email!r}")
                try:
                    data = _input_data(entry, model)
                    obj = catalog.create_content(author, model, data)
                    obj.content_id = content_id
                    db.session.flush()
                    _publish(author, model, content_id, mode)
                except AppError as exc:
                    fields = getattr(exc, "fields", None)
                    raise ContentError(f"{where}: {exc}{f' {fields}' if fields else ''}") from None
                except ContentError as exc:
                    raise ContentError(f"{where}: {exc}") from None
            tick(kind_name)


def _load_catalog(folder: Path, report: LoadReport, tick) -> None:
    # Every resources*.yaml before any courses*.yaml: course items refer to resources.
    _load_items(folder, "resources*.yaml", Resource, report, tick)
    _load_items(folder, "courses*.yaml", Course, report, tick)


register_loader("organisations", _load_organisations)
register_loader("users", _load_users)
register_loader("catalog", _load_catalog)


def load_content(folder: Path, tick: Callable[[str], None] = lambda name: None) -> LoadReport:
    """Run every registered loader over ``folder``.  The caller commits."""
    report = LoadReport()
    for _name, loader in _LOADERS:
        loader(folder, report, tick)
    db.session.flush()
    return report


def count_entries(folder: Path) -> int:
    """How many ticks a load makes, for the progress bar."""
    total = 0
    for pattern in ("users*.yaml", "resources*.yaml", "courses*.yaml"):
        for path in sorted(folder.glob(pattern)):
            total += len(read_yaml(path) or [])
    organisations = folder / "organisations.yaml"
    if organisations.exists():
        total += len(read_yaml(organisations)["districts"])
    return total
