"""A real Shuyuan server for the fuzz suite: Werkzeug's threaded server on a free port,
its own database (SQLite file or a throwaway PostgreSQL database), the demo content
loaded, and API tokens for a teacher and a district admin."""

from __future__ import annotations

import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from werkzeug.serving import make_server

from app import create_app
from app.accounts import services as accounts
from app.config import PROJECT_ROOT
from app.demo.services import load_content
from app.extensions import db
from tests.conftest import create_postgres_database

ROLE_EMAILS = {"teacher": "teacher@shuyuan.test", "district_admin": "district@shuyuan.test"}
SEED_COURSES = 4


def demo_subset(folder: Path) -> Path:
    """The demo content cut down to a few courses and the resources they use (plus the
    curriculum): every kind of row exists, and seeding stays a few seconds."""
    source = PROJECT_ROOT / "content"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "organisations.yaml", folder / "organisations.yaml")
    shutil.copytree(source / "curriculum", folder / "curriculum")
    courses = yaml.safe_load((source / "courses.yaml").read_text(encoding="utf-8"))[:SEED_COURSES]
    used = {
        item["resource"]
        for course in courses
        for section in course.get("sections") or []
        for item in section.get("items") or []
        if item.get("resource")
    }
    for name in ("resources.yaml", "resources_curriculum.yaml"):
        entries = yaml.safe_load((source / name).read_text(encoding="utf-8"))
        kept = [e for i, e in enumerate(entries) if e["content_id"] in used or i < 4]
        (folder / name).write_text(yaml.safe_dump(kept, allow_unicode=True), encoding="utf-8")
    (folder / "courses.yaml").write_text(yaml.safe_dump(courses, allow_unicode=True), "utf-8")
    # Only the accounts something refers to, and the reviewers: each costs a deliberately
    # slow password hash.
    text = "".join(p.read_text(encoding="utf-8") for p in folder.rglob("*.yaml"))
    users = [
        user
        for name in ("users.yaml", "users-teachers.yaml")
        for user in yaml.safe_load((source / name).read_text(encoding="utf-8"))
        if user["email"] in text
        or user["email"] in ROLE_EMAILS.values()
        or any(role.get("role") == "district_admin" for role in user.get("roles") or [])
    ]
    (folder / "users.yaml").write_text(yaml.safe_dump(users, allow_unicode=True), "utf-8")
    return folder


@dataclass
class FuzzServer:
    url: str
    spec: dict
    headers: dict[str, dict[str, str]] = field(default_factory=dict)


@pytest.fixture(scope="session")
def fuzz_server(backend, tmp_path_factory):
    instance = tmp_path_factory.mktemp("fuzz-instance")
    drop = None
    if backend == "sqlite":
        url = f"sqlite:///{instance / 'fuzz.db'}"
    else:
        url, drop = create_postgres_database()
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "fuzz-" + uuid.uuid4().hex,
            "STORAGE_URL": f"file://{instance}/media",
            "SEARCH_INDEX_DIR": f"{instance}/search-index",
            "REDIS_URL": None,
            "JOBS_EAGER": True,
            # Limits are tested in tests/accounts/test_ratelimit.py; here they would turn
            # the generated login attempts into 429s and hide what is behind them.
            "RATELIMIT_ENABLED": False,
        }
    )
    headers = {"anonymous": {}}
    with app.app_context():
        db.create_all()
        load_content(demo_subset(instance / "content"))
        db.session.commit()
        for role, email in ROLE_EMAILS.items():
            _, raw = accounts.issue_token(accounts.get_user_by_email(email), "fuzz")
            headers[role] = {"Authorization": f"Bearer {raw}"}
        db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    spec = app.test_client().get("/api/v1/openapi.json").json
    try:
        yield FuzzServer(url=base, spec=spec, headers=headers)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if drop is not None:
            drop()


def api_operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation of the OpenAPI document, read from an app built
    in memory (collection happens before the server starts)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": "sqlite://",
                "INSTANCE_PATH": folder,
                "SECRET_KEY": "collect",
                "REDIS_URL": None,
            }
        )
        spec = app.test_client().get("/api/v1/openapi.json").json
    methods = ("get", "put", "post", "delete", "patch")
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in methods
    ]
