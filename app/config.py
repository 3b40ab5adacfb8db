"""Configuration, read from the environment here and nowhere else.

Every setting has a default that gives a working single-machine site (SQLite, a local
media folder and a Whoosh index under ``instance/``).  Production overrides them with
environment variables; see README.md for the list.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_PLUGINS = PROJECT_ROOT / "plugins" / "shuyuan_plugins"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_bool(name: str, default: bool) -> bool:
    value = _env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = _env(name)
    return int(value) if value is not None else default


def _env_list(name: str, default: list[str] | None) -> list[str] | None:
    value = _env(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def instance_path() -> Path:
    return Path(_env("SHUYUAN_INSTANCE_PATH", str(PROJECT_ROOT / "instance")))


def _load_or_create_secret_key(folder: Path) -> str:
    """Keep one random key per installation so sessions survive restarts and are
    shared by every worker, without ever putting a constant key in the code.

    Several workers may start at once on a fresh instance folder.  Each writes its
    candidate key to a private temporary file and hard-links it to ``secret_key``: the
    link either appears complete (key and all) or fails because another worker's key
    is already there, which every worker then reads.  Nobody can read a half-written
    file, and the first key linked is the one all of them keep."""
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "secret_key"
    existing = _read_key(key_file)
    if existing:
        return existing
    fd, temporary = tempfile.mkstemp(prefix=".secret_key.", dir=folder)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(temporary, key_file)
    finally:
        os.unlink(temporary)
    key = _read_key(key_file)
    if not key:
        raise RuntimeError(f"{key_file} is empty: delete it and start again")
    return key


def _read_key(key_file: Path) -> str | None:
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        return None


def normalise_database_url(url: str) -> str:
    # Hosted PostgreSQL often hands out postgres:// URLs; SQLAlchemy wants the driver named.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def load_config(overrides: dict | None = None) -> dict:
    """Build the Flask config mapping from the environment, then apply ``overrides``."""
    folder = Path((overrides or {}).get("INSTANCE_PATH") or instance_path())
    folder.mkdir(parents=True, exist_ok=True)
    database_url = normalise_database_url(
        _env("DATABASE_URL", f"sqlite:///{folder / 'shuyuan.db'}")
    )
    secret_key = _env("SECRET_KEY") or (overrides or {}).get("SECRET_KEY")
    if not secret_key:
        secret_key = _load_or_create_secret_key(folder)

    config = {
        "INSTANCE_PATH": str(folder),
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "STORAGE_URL": _env("STORAGE_URL", f"file://{folder / 'media'}"),
        "SEARCH_INDEX_DIR": _env("SEARCH_INDEX_DIR", str(folder / "search-index")),
        # "whoosh" (index folder on this host) | "postgresql" (in the database, indexed in
        # the publishing transaction); default: whoosh on SQLite, postgresql on PostgreSQL.
        "SEARCH_BACKEND": _env("SEARCH_BACKEND"),
        "REDIS_URL": _env("REDIS_URL"),
        "BABEL_DEFAULT_LOCALE": _env("SHUYUAN_DEFAULT_LOCALE", "zh_CN"),
        "BABEL_DEFAULT_TIMEZONE": _env("SHUYUAN_TIMEZONE", "Asia/Shanghai"),
        "LANGUAGES": ["zh_CN", "en"],
        "PLATFORM_NAME": _env("SHUYUAN_PLATFORM_NAME", "书院 Shuyuan"),
        # None means every plugin found; an empty list disables them all.
        "PLUGINS": _env_list("SHUYUAN_PLUGINS", None),
        "PLUGINS_FOLDER": _env("SHUYUAN_PLUGINS_FOLDER", str(SHIPPED_PLUGINS)),
        "MAX_CONTENT_LENGTH": _env_int("SHUYUAN_MAX_REQUEST_BYTES", 16 * 1024 * 1024),
        "API_TOKEN_TTL_DAYS": _env_int("SHUYUAN_API_TOKEN_TTL_DAYS", 90),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": _env("SHUYUAN_SESSION_SAMESITE", "Lax"),
        "SESSION_COOKIE_SECURE": _env_bool("SHUYUAN_SECURE_COOKIES", False),
        "REMEMBER_COOKIE_SECURE": _env_bool("SHUYUAN_SECURE_COOKIES", False),
        "BEHIND_PROXY": _env_bool("SHUYUAN_BEHIND_PROXY", False),
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "API_TITLE": "Shuyuan API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "DEMO_CONTENT_DIR": _env("SHUYUAN_CONTENT_DIR", str(PROJECT_ROOT / "content")),
        # xAPI LRS (app/xapi): public base URL (actor home pages, authority), limits.
        "XAPI_PLATFORM_URL": _env("SHUYUAN_PUBLIC_URL", "http://localhost:5000"),
        "XAPI_MAX_BATCH": _env_int("SHUYUAN_XAPI_MAX_BATCH", 1000),
        "XAPI_MAX_LIMIT": _env_int("SHUYUAN_XAPI_MAX_LIMIT", 500),
        "XAPI_MAX_ATTACHMENT_BYTES": _env_int(
            "SHUYUAN_XAPI_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024
        ),
        "XAPI_LAUNCH_TTL": _env_int("SHUYUAN_XAPI_LAUNCH_TTL", 4 * 3600),
        # LTI 1.3 (app/lti): public base URL when behind a proxy that rewrites hosts,
        # auto-approval of dynamically registered platforms, key rotation schedule,
        # grade passback retries, roster sync period, launch state in Redis.
        "LTI_BASE_URL": _env("SHUYUAN_LTI_BASE_URL"),
        "LTI_AUTO_APPROVE": _env_bool("SHUYUAN_LTI_AUTO_APPROVE", False),
        "LTI_KEY_PUBLISH_SECONDS": _env_int("SHUYUAN_LTI_KEY_PUBLISH_SECONDS", 86400),
        "LTI_KEY_GRACE_SECONDS": _env_int("SHUYUAN_LTI_KEY_GRACE_SECONDS", 7 * 86400),
        "LTI_GRADE_MAX_ATTEMPTS": _env_int("SHUYUAN_LTI_GRADE_MAX_ATTEMPTS", 8),
        "LTI_GRADE_RETRY_SECONDS": _env_int("SHUYUAN_LTI_GRADE_RETRY_SECONDS", 30),
        "LTI_ROSTER_SYNC_SECONDS": _env_int("SHUYUAN_LTI_ROSTER_SYNC_SECONDS", 86400),
        "LTI_REDIS_URL": _env("SHUYUAN_LTI_REDIS_URL"),  # default: REDIS_URL
        # Media (app/media): limits, quota, URL lifetimes, H5P unpacking limits.
        "MEDIA_MAX_UPLOAD_BYTES": _env_int("SHUYUAN_MEDIA_MAX_UPLOAD_BYTES", 4 * 1024**3),
        "MEDIA_DISTRICT_QUOTA_BYTES": _env_int("SHUYUAN_MEDIA_DISTRICT_QUOTA_BYTES", 200 * 1024**3),
        "MEDIA_SINGLE_PUT_MAX_BYTES": _env_int("SHUYUAN_MEDIA_SINGLE_PUT_MAX_BYTES", 16 * 1024**2),
        "MEDIA_PART_SIZE": _env_int("SHUYUAN_MEDIA_PART_SIZE", 8 * 1024**2),
        "MEDIA_URL_TTL": _env_int("SHUYUAN_MEDIA_URL_TTL", 900),
        "MEDIA_UPLOAD_TTL": _env_int("SHUYUAN_MEDIA_UPLOAD_TTL", 24 * 3600),
        "MEDIA_H5P_MAX_UNPACKED_BYTES": _env_int("SHUYUAN_MEDIA_H5P_MAX_UNPACKED_BYTES", 1024**3),
        "MEDIA_H5P_MAX_FILES": _env_int("SHUYUAN_MEDIA_H5P_MAX_FILES", 5000),
        "MEDIA_S3_REGION": _env("SHUYUAN_MEDIA_S3_REGION", "us-east-1"),
    }
    if overrides:
        config.update(overrides)
    if not config.get("SEARCH_BACKEND"):
        on_postgresql = str(config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql")
        config["SEARCH_BACKEND"] = "postgresql" if on_postgresql else "whoosh"
    return config
