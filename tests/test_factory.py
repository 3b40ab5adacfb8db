import logging
import os
import subprocess
import sys

import pytest

from app import create_app
from app.config import PROJECT_ROOT, StartupError, load_config


def test_config_override_and_healthz(app, client):
    assert app.config["TESTING"] is True
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["database"] == "ok"
    assert response.json["backend"] in ("sqlite", "postgresql")


def test_secret_key_generated_into_instance_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    second = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 40
    assert (tmp_path / "secret_key").read_text().strip() == first.config["SECRET_KEY"]


def test_unreachable_database_reports_503(tmp_path):
    broken = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "x" * 40,
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        }
    )
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["database"].startswith("unreachable")


# --- faults (issue 10, item 12) --------------------------------------------------------

UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"


@pytest.fixture
def broken_app(tmp_path):
    return create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "x" * 40,
            "SQLALCHEMY_DATABASE_URI": UNREACHABLE,
            "RATELIMIT_ENABLED": False,
        }
    )


def test_database_outage_is_503_with_one_log_line_per_request(broken_app, caplog):
    client = broken_app.test_client()
    caplog.set_level(logging.INFO)
    page = client.get("/", headers={"Accept-Language": "en"})
    assert page.status_code == 503
    assert "The database is unavailable" in page.get_data(as_text=True)
    assert page.headers["Retry-After"] == "30"
    assert page.headers["Content-Security-Policy"]  # headers still applied
    api = client.get("/api/v1/courses", headers={"Accept-Language": "zh-CN"})
    assert api.status_code == 503
    message = "数据库暂时无法访问，请稍后再试。"
    assert api.json == {"error": {"code": "unavailable", "message": message}}
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 2, [r.getMessage() for r in errors]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in errors)
    assert "database unavailable on GET /api/v1/courses: OperationalError" in errors[1].getMessage()


def test_database_outage_for_a_logged_in_visitor_is_still_a_503_page(broken_app):
    client = broken_app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "someone"  # the layout would load this user
    response = client.get("/resources")
    assert response.status_code == 503


def _flask(*args, env=None, cwd=None, user=None):
    command = [sys.executable, "-m", "flask", *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(
        command,
        cwd=cwd or PROJECT_ROOT,
        env={**os.environ, "FLASK_APP": str(PROJECT_ROOT / "wsgi.py"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_db_upgrade_against_a_wrong_url_is_one_clear_line(tmp_path):
    result = _flask(
        "db",
        "upgrade",
        env={
            "DATABASE_URL": "postgresql://nobody:secret@127.0.0.1:1/x",
            "SHUYUAN_INSTANCE_PATH": str(tmp_path),
        },
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "Cannot connect" in line]
    assert len(lines) == 1
    assert "127.0.0.1:1/x" in lines[0] and "secret" not in lines[0]


def test_unwritable_instance_folder_is_a_clear_startup_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StartupError, match=f"instance folder {blocker / 'instance'}"):
        load_config({"INSTANCE_PATH": str(blocker / "instance")})


def test_read_only_instance_folder_stops_the_cli_with_one_line(tmp_path):
    folder = tmp_path / "instance"
    folder.mkdir()
    folder.chmod(0o555)
    tmp_path.chmod(0o755)
    # root writes anywhere: run the command as nobody (65534) when the suite runs as root.
    user = 65534 if os.geteuid() == 0 else None
    result = _flask(
        "routes",
        env={"SHUYUAN_INSTANCE_PATH": str(folder), "DATABASE_URL": "sqlite://", "HOME": "/"},
        cwd="/",  # readable by nobody, unlike the suite's temporary folders' parents
        user=user,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"The instance folder {folder} is not writable" in result.stderr


def test_prefix_lists_belong_to_each_app(tmp_path):
    """Features register JSON-only and CSRF-exempt prefixes on their own app: a second
    app built in the same process starts from the defaults, not from the first's list."""
    from app.common.routing import add_csrf_exempt_prefix, add_json_prefix

    def build(name):
        return create_app(
            {
                "INSTANCE_PATH": str(tmp_path / name),
                "SECRET_KEY": "x" * 40,
                "SQLALCHEMY_DATABASE_URI": "sqlite://",
            }
        )

    first, second = build("a"), build("b")
    add_json_prefix(first, "/only-first/")
    add_csrf_exempt_prefix(first, "/only-first/")
    assert "/only-first/" not in second.config["JSON_PREFIXES"]
    assert "/only-first/" not in second.config["CSRF_EXEMPT_PREFIXES"]
    assert "/xapi/" in second.config["JSON_PREFIXES"]  # the xAPI feature registered it
    response = first.test_client().get("/only-first/missing")
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    assert second.test_client().get("/only-first/missing").mimetype == "text/html"
