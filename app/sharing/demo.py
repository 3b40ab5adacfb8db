"""Sharing demo content (``content/sharing/sharing.yaml``), loaded by ``flask content
load`` after the main content: two more regions (Tianjin Hexi's extended courses, Wuhan
Jiang'an's grade 7 maths), their catalogs and releases, and Hangzhou subscriptions — one
with release 2 waiting, so the diff page shows something after ``make run``.
Idempotent: everything is keyed by codes, emails, content ids and catalog uids."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from app.accounts import services as accounts
from app.accounts.models import District, Role, School
from app.catalog import services as catalog_services
from app.catalog.models import Resource
from app.extensions import db
from app.sharing.models import SharedCatalog, Subscription
from app.sharing.services import catalogs, subscriptions


def _by_code(model, code):
    return db.session.execute(select(model).filter_by(code=code)).scalar_one_or_none()


def _admin_of(district: District):
    from app.accounts.models import RoleAssignment

    row = db.session.execute(
        select(RoleAssignment)
        .filter_by(role=Role.DISTRICT_ADMIN, district_id=district.id)
        .order_by(RoleAssignment.id)
        .limit(1)
    ).scalar_one_or_none()
    if row is None:
        raise ValueError(f"district {district.code} has no admin")
    return row.user


def _resource(entry: dict, report) -> None:
    content_id = entry["content_id"]
    exists = db.session.execute(
        select(Resource.id).filter_by(content_id=content_id).limit(1)
    ).first()
    report.add("shared resources", exists is None)
    if exists:
        return
    author = accounts.get_user_by_email(entry["author"])
    data = {k: v for k, v in entry.items() if k not in ("content_id", "author")}
    data.setdefault("visibility", "district")
    obj = catalog_services.create_content(author, Resource, data)
    obj.content_id = content_id
    db.session.flush()
    catalog_services.submit_content(author, Resource, content_id)


def load(folder: Path, report, tick) -> None:
    from app.demo.services import read_yaml

    path = folder / "sharing" / "sharing.yaml"
    if not path.exists():
        return
    data = read_yaml(path)
    for region_data in data["regions"]:
        region = accounts.ensure_region(
            region_data["code"], region_data["name"], region_data.get("name_en")
        )
        for district_data in region_data["districts"]:
            district = _by_code(District, district_data["code"]) or accounts.ensure_district(
                region, district_data["code"], district_data["name"], district_data["name_en"]
            )
            for school_data in district_data.get("schools", []):
                if _by_code(School, school_data["code"]) is None:
                    accounts.ensure_school(
                        district, school_data["code"], school_data["name"], school_data["name_en"]
                    )
    for user_data in data["users"]:
        if accounts.get_user_by_email(user_data["email"]) is not None:
            continue
        school = _by_code(School, user_data.get("school"))
        district = _by_code(District, user_data.get("district"))
        user = accounts.create_user(
            user_data["email"],
            user_data["name"],
            user_data["password"],
            school=school,
            district=district,
        )
        scope = {"school": school} if school else {"district": district}
        accounts.assign_role(user, Role(user_data["role"]), **scope)
        tick("users")
    deferred = {cid for c in data["catalogs"] for r in c["releases"] for cid in r.get("add", [])}
    entries = {e["content_id"]: e for e in data["resources"]}
    for entry in data["resources"]:
        if entry["content_id"] not in deferred:
            _resource(entry, report)
            tick("resources")
    for catalog_data in data["catalogs"]:
        existing = db.session.execute(
            select(SharedCatalog).filter_by(uid=catalog_data["uid"])
        ).scalar_one_or_none()
        report.add("shared catalogs", existing is None)
        if existing is not None:
            continue
        district = _by_code(District, catalog_data["district"])
        admin = _admin_of(district)
        shared = catalogs.create_catalog(admin, district.id, catalog_data)
        shared.uid = catalog_data["uid"]
        db.session.flush()
        for number, release in enumerate(catalog_data["releases"], start=1):
            for content_id, change in (release.get("revise") or {}).items():
                author = accounts.get_user_by_email(entries[content_id]["author"])
                catalog_services.update_content(author, Resource, content_id, change)
                catalog_services.submit_content(author, Resource, content_id)
            for content_id in release.get("add", []):
                _resource(entries[content_id], report)
            catalogs.publish_release(admin, shared, release["notes"], allow_refusals=True)
            if number == 1:
                _subscribe(data, shared)
        tick("catalogs")


def _subscribe(data: dict, shared: SharedCatalog) -> None:
    """Subscriptions to a catalog, made right after its first release (so "accept: 1"
    accepts it and later releases wait)."""
    for entry in data.get("subscriptions", []):
        if entry["catalog"] != shared.uid:
            continue
        district = _by_code(District, entry["district"])
        if db.session.execute(
            select(Subscription).filter_by(subscriber_district_id=district.id, catalog_id=shared.id)
        ).first():
            continue
        admin = _admin_of(district)
        sub = subscriptions.subscribe(
            admin, district.id, shared, entry.get("filters"), entry.get("auto_accept", False)
        )
        if sub.status == "pending":
            subscriptions.decide(_admin_of(shared.district), sub, True)
        if entry.get("accept"):
            subscriptions.accept(admin, sub, entry["accept"])


def register() -> None:
    from app.demo.services import register_loader

    register_loader("sharing", load)
