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
from datetime import timedelta
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


class StartupError(RuntimeError):
    """A setting or the machine makes starting impossible; the message says what to fix."""


def ensure_writable_folder(folder: Path) -> None:
    """Create ``folder`` and prove it writable now, so a read-only instance folder is one
    clear error at start rather than a traceback at the first upload or login."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(
            f"The instance folder {folder} is not writable ({exc.strerror or exc}). "
            "Shuyuan keeps its secret key, SQLite database, media and search index there: "
            "make it writable for this user or set SHUYUAN_INSTANCE_PATH to another folder."
        ) from None


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


def _cache_settings(config: dict) -> None:
    redis_url = config.get("CACHE_REDIS_URL") or config.get("REDIS_URL")
    if not config.get("CACHE_TYPE"):
        config["CACHE_TYPE"] = "RedisCache" if redis_url else "SimpleCache"
    if config["CACHE_TYPE"] == "RedisCache":
        config["CACHE_REDIS_URL"] = redis_url
        config.setdefault("CACHE_DEFAULT_TIMEOUT", config["CACHE_SECONDS"])
    else:
        config.setdefault("CACHE_DEFAULT_TIMEOUT", config["CACHE_LOCAL_SECONDS"])
    # Entries belong to one database: two sites (or two test runs) on one Redis never
    # read each other's pages.
    from hashlib import sha256

    database = str(config["SQLALCHEMY_DATABASE_URI"]).encode()
    config.setdefault("CACHE_KEY_PREFIX", f"shuyuan:{sha256(database).hexdigest()[:12]}:")


SUPPORTED_DATABASES = ("sqlite", "postgresql")


def check_database_url(url: str) -> None:
    """A DATABASE_URL that cannot work is one line at start, not a traceback later."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StartupError(
            "DATABASE_URL is not a database URL; expected e.g. "
            "postgresql://user:password@host:5432/shuyuan or sqlite:////srv/shuyuan/shuyuan.db."
        ) from None
    if parsed.get_backend_name() not in SUPPORTED_DATABASES:
        raise StartupError(
            f"DATABASE_URL names the database type '{parsed.get_backend_name()}'; Shuyuan runs "
            "on PostgreSQL (postgresql://...) or SQLite (sqlite:///...)."
        )


def load_config(overrides: dict | None = None) -> dict:
    """Build the Flask config mapping from the environment, then apply ``overrides``."""
    folder = Path((overrides or {}).get("INSTANCE_PATH") or instance_path())
    ensure_writable_folder(folder)
    database_url = normalise_database_url(
        _env("DATABASE_URL", f"sqlite:///{folder / 'shuyuan.db'}")
    )
    check_database_url(database_url)
    secret_key = _env("SECRET_KEY") or (overrides or {}).get("SECRET_KEY")
    if not secret_key:
        secret_key = _load_or_create_secret_key(folder)

    config = {
        "INSTANCE_PATH": str(folder),
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        # No ping before every checkout (a round trip on every request, seen in the list
        # API's profile): a connection the database dropped fails its request once (503,
        # "try again"), SQLAlchemy then discards the pool's connections and the next
        # request reconnects.  Connections are renewed after 30 minutes anyway.
        # SHUYUAN_DB_PRE_PING=1 restores the ping (e.g. behind a pooler that drops idle
        # connections silently).
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_pre_ping": _env_bool("SHUYUAN_DB_PRE_PING", False),
            "pool_recycle": 1800,
        },
        "STORAGE_URL": _env("STORAGE_URL", f"file://{folder / 'media'}"),
        "SEARCH_INDEX_DIR": _env("SEARCH_INDEX_DIR", str(folder / "search-index")),
        # "whoosh" (index folder on this host) | "postgresql" (in the database, indexed in
        # the publishing transaction); default: whoosh on SQLite, postgresql on PostgreSQL.
        "SEARCH_BACKEND": _env("SEARCH_BACKEND"),
        "REDIS_URL": _env("REDIS_URL"),
        # Flask-Caching (app/common/cache.py): catalog pages, list counts, and on Redis
        # only API token lookups (app/accounts/token_cache.py).  On Redis (default when
        # REDIS_URL is set) every process shares it and an invalidation is seen at once
        # everywhere; without Redis each process keeps its own SimpleCache, whose entries
        # live only CACHE_LOCAL_SECONDS, so a publish reaches the other worker processes
        # of a host within that time (docs/operations.md).  A revoked token is refused at
        # once on both.  SHUYUAN_CACHE_TYPE=NullCache turns the cache off.
        "CACHE_TYPE": _env("SHUYUAN_CACHE_TYPE"),
        "CACHE_REDIS_URL": _env("SHUYUAN_CACHE_REDIS_URL"),
        "CACHE_SECONDS": _env_int("SHUYUAN_CACHE_SECONDS", 300),
        "CACHE_LOCAL_SECONDS": _env_int("SHUYUAN_CACHE_LOCAL_SECONDS", 10),
        "CACHE_THRESHOLD": 5000,
        # Operations (app/ops): log format, metrics across gunicorn workers, the timetable.
        "JOBS_QUEUE": _env("SHUYUAN_JOBS_QUEUE", "shuyuan"),
        "JOBS_RETRIES": _env_int("SHUYUAN_JOBS_RETRIES", 3),
        # Without Redis: worker threads in each web process, the delays (seconds) before
        # retries of a failed job (also RQ's), how long an exiting process drains them.
        "JOBS_THREADS": _env_int("SHUYUAN_JOBS_THREADS", 2),
        "JOBS_RETRY_INTERVALS": (10, 60, 300),
        "JOBS_SHUTDOWN_SECONDS": _env_int("SHUYUAN_JOBS_SHUTDOWN_SECONDS", 20),
        # A command run once (`flask content load`) waits for its jobs, but for a failing
        # job's retries only this long in all (the first retry, 10 s, fits): it then names
        # the jobs left and the command that catches up, rather than sit through 6 minutes
        # of back-off.
        "JOBS_CLI_RETRY_WAIT_SECONDS": _env_int("SHUYUAN_JOBS_CLI_RETRY_WAIT_SECONDS", 15),
        "JOBS_MAINTENANCE_SECONDS": _env_int("SHUYUAN_JOBS_MAINTENANCE_SECONDS", 60),
        "LOG_FORMAT": _env("SHUYUAN_LOG_FORMAT", "text"),
        "METRICS_MULTIPROC_DIR": _env("PROMETHEUS_MULTIPROC_DIR"),
        # "name=seconds,..." overrides intervals of `flask ops jobs`; 0 disables one.
        "SCHEDULE_SECONDS": {
            name.strip(): int(seconds)
            for name, _, seconds in (
                item.partition("=") for item in _env_list("SHUYUAN_SCHEDULE", []) or []
            )
            if seconds.strip().isdigit()
        },
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
        # "Keep me logged in": not sent on cross-site subresource requests or posts, and it
        # ends after two weeks rather than Flask-Login's default of a year.
        "REMEMBER_COOKIE_SAMESITE": _env("SHUYUAN_SESSION_SAMESITE", "Lax"),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_DURATION": timedelta(days=_env_int("SHUYUAN_REMEMBER_DAYS", 14)),
        # Security headers (app/core/headers.py).  CSP_EXTRA_ORIGINS: origins pages may
        # load media from, talk to or frame, beyond this site and S3 storage.
        "REFERRER_POLICY": _env("SHUYUAN_REFERRER_POLICY", "strict-origin-when-cross-origin"),
        "CSP_EXTRA_ORIGINS": _env_list("SHUYUAN_CSP_EXTRA_ORIGINS", []),
        # Brute-force protection (app/common/ratelimit.py, app/accounts/throttle.py): counters
        # live in Redis when REDIS_URL is set (shared by every worker), else in memory.
        "RATELIMIT_ENABLED": _env_bool("SHUYUAN_RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": _env("SHUYUAN_RATELIMIT_STORAGE_URI"),  # default: REDIS_URL
        "RATELIMIT_LOGIN": _env("SHUYUAN_RATELIMIT_LOGIN", "30 per minute;300 per hour"),
        "RATELIMIT_TOKENS": _env("SHUYUAN_RATELIMIT_TOKENS", "30 per minute;300 per hour"),
        "RATELIMIT_XAPI_AUTH_FAILURES": _env(
            "SHUYUAN_RATELIMIT_XAPI_AUTH_FAILURES", "20 per minute;200 per hour"
        ),
        "RATELIMIT_LTI_REGISTER": _env(
            "SHUYUAN_RATELIMIT_LTI_REGISTER", "10 per minute;60 per hour"
        ),
        # Failed logins per account (any email, known or not): each window that fills up
        # locks the account's password login until it frees, so lockouts grow with
        # persistence (5 in 15 minutes, then 10 an hour, then 20 a day).
        "LOGIN_FAILURE_LIMITS": _env(
            "SHUYUAN_LOGIN_FAILURE_LIMITS", "5 per 15 minutes;10 per hour;20 per day"
        ),
        "BEHIND_PROXY": _env_bool("SHUYUAN_BEHIND_PROXY", False),
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "API_TITLE": "Shuyuan API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        # Every operation accepts a bearer token, or none (public reads).
        "API_SPEC_OPTIONS": {"security": [{"bearerAuth": []}, {}]},
        "DEMO_CONTENT_DIR": _env("SHUYUAN_CONTENT_DIR", str(PROJECT_ROOT / "content")),
        # xAPI LRS (app/xapi): public base URL (actor home pages, authority), limits.
        "XAPI_PLATFORM_URL": _env("SHUYUAN_PUBLIC_URL", "http://localhost:5000"),
        "XAPI_MAX_BATCH": _env_int("SHUYUAN_XAPI_MAX_BATCH", 1000),
        "XAPI_MAX_LIMIT": _env_int("SHUYUAN_XAPI_MAX_LIMIT", 500),
        "XAPI_MAX_ATTACHMENT_BYTES": _env_int(
            "SHUYUAN_XAPI_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024
        ),
        "XAPI_LAUNCH_TTL": _env_int("SHUYUAN_XAPI_LAUNCH_TTL", 4 * 3600),
        # Deeper JSON (statements, documents, agent parameters) is refused with 400.
        "XAPI_MAX_JSON_DEPTH": _env_int("SHUYUAN_XAPI_MAX_JSON_DEPTH", 64),
        # LTI 1.3 (app/lti): public base URL when behind a proxy that rewrites hosts,
        # auto-approval of deployments registered through an admin's one-time link (they
        # land in the link's district/school only), key rotation schedule,
        # grade passback retries, roster sync period, launch state in Redis.
        "LTI_BASE_URL": _env("SHUYUAN_LTI_BASE_URL"),
        "LTI_AUTO_APPROVE": _env_bool("SHUYUAN_LTI_AUTO_APPROVE", False),
        "LTI_KEY_PUBLISH_SECONDS": _env_int("SHUYUAN_LTI_KEY_PUBLISH_SECONDS", 86400),
        "LTI_KEY_GRACE_SECONDS": _env_int("SHUYUAN_LTI_KEY_GRACE_SECONDS", 7 * 86400),
        "LTI_GRADE_MAX_ATTEMPTS": _env_int("SHUYUAN_LTI_GRADE_MAX_ATTEMPTS", 8),
        "LTI_GRADE_RETRY_SECONDS": _env_int("SHUYUAN_LTI_GRADE_RETRY_SECONDS", 30),
        "LTI_ROSTER_SYNC_SECONDS": _env_int("SHUYUAN_LTI_ROSTER_SYNC_SECONDS", 86400),
        "LTI_REDIS_URL": _env("SHUYUAN_LTI_REDIS_URL"),  # default: REDIS_URL
        # Dynamic registration fetches URLs named by whoever holds a registration link:
        # only public addresses, except these hosts (an on-premises LMS) or, with
        # ALLOW_PRIVATE, any; timeout in seconds.
        "LTI_REGISTRATION_ALLOW_HOSTS": _env_list("SHUYUAN_LTI_REGISTRATION_ALLOW_HOSTS", []),
        "LTI_REGISTRATION_ALLOW_PRIVATE": _env_bool(
            "SHUYUAN_LTI_REGISTRATION_ALLOW_PRIVATE", False
        ),
        "LTI_REGISTRATION_TIMEOUT": _env_int("SHUYUAN_LTI_REGISTRATION_TIMEOUT", 5),
        # Sharing (app/sharing): this instance's public origin in signed feeds, the
        # remote instance origins it may talk to (never any other URL), feed limits.
        "SHARING_ORIGIN": _env("SHUYUAN_SHARING_ORIGIN")
        or _env("SHUYUAN_PUBLIC_URL", "http://localhost:5000"),
        "SHARING_PEERS": _env_list("SHUYUAN_SHARING_PEERS", []),
        # 1,000 items ≈ 0.5 MB: few signed round trips per release, far below the page cap.
        "SHARING_PAGE_SIZE": _env_int("SHUYUAN_SHARING_PAGE_SIZE", 1000),
        "SHARING_MAX_PAGE_BYTES": _env_int("SHUYUAN_SHARING_MAX_PAGE_BYTES", 4 * 1024**2),
        "SHARING_MAX_PAGES": _env_int("SHUYUAN_SHARING_MAX_PAGES", 200),
        "SHARING_SIGNATURE_MAX_AGE": _env_int("SHUYUAN_SHARING_SIGNATURE_MAX_AGE", 300),
        # School edge node (docs/operations.md): the upstream instance it mirrors, the
        # local hours mirroring may run ("22:00-06:00", empty = any time), the download
        # bandwidth limit in bytes per second (0 = none), the largest media object it
        # accepts from a peer, and where unfinished downloads wait to be resumed.
        "EDGE_UPSTREAM": (_env("SHUYUAN_EDGE_UPSTREAM") or "").rstrip("/") or None,
        "EDGE_MIRROR_WINDOW": _env("SHUYUAN_EDGE_MIRROR_WINDOW", ""),
        "EDGE_BANDWIDTH_LIMIT": _env_int("SHUYUAN_EDGE_BANDWIDTH_LIMIT", 0),
        # Media objects fetched at once (the limit above is shared by all of them).
        "EDGE_MIRROR_PARALLEL": _env_int("SHUYUAN_EDGE_MIRROR_PARALLEL", 3),
        "SHARING_MAX_MEDIA_BYTES": _env_int("SHUYUAN_SHARING_MAX_MEDIA_BYTES", 4 * 1024**3),
        "SHARING_PARTIAL_DIR": _env("SHUYUAN_SHARING_PARTIAL_DIR", str(folder / "sharing-partial")),
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
        # Seconds to connect to / wait for S3 before a request answers 503, and retries
        # of a refused connection or a 5xx (with back-off: 0 s, 0.4 s, ...).
        "MEDIA_S3_CONNECT_TIMEOUT": _env_int("SHUYUAN_MEDIA_S3_CONNECT_TIMEOUT", 5),
        "MEDIA_S3_READ_TIMEOUT": _env_int("SHUYUAN_MEDIA_S3_READ_TIMEOUT", 60),
        "MEDIA_S3_RETRIES": _env_int("SHUYUAN_MEDIA_S3_RETRIES", 2),
        # A private CA for an on-premises MinIO (the variable minio itself reads).
        "MEDIA_S3_CA_CERTS": _env("SSL_CERT_FILE"),
        # Uploaded packages (H5P) run their own scripts: a separate, cookieless host for
        # them (e.g. https://usercontent.example.org, not a subdomain sharing cookies);
        # unset, they play in an opaque-origin sandboxed frame on this host.  Launch
        # tokens in package URLs live MEDIA_PACKAGE_TTL seconds.
        "CONTENT_ORIGIN": (_env("SHUYUAN_CONTENT_ORIGIN") or "").rstrip("/") or None,
        "MEDIA_PACKAGE_TTL": _env_int("SHUYUAN_MEDIA_PACKAGE_TTL", 4 * 3600),
    }
    if overrides:
        config.update(overrides)
    _cache_settings(config)
    if not config.get("SEARCH_BACKEND"):
        on_postgresql = str(config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql")
        config["SEARCH_BACKEND"] = "postgresql" if on_postgresql else "whoosh"
    return config
