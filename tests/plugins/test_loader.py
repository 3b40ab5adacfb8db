"""The plugin loader: folder and entry-point discovery, allow-list, failures, signals."""

from __future__ import annotations

import logging
import textwrap
import uuid
from importlib.metadata import entry_points

import pytest

from app import plugins
from app.catalog import services
from app.catalog.models import Course
from app.common.events import commit
from app.extensions import db
from app.hooks import registry
from tests.conftest import make_app

GOOD_PLUGIN = """
from flask import Blueprint, jsonify

from app import hooks

bp = Blueprint("{name}", __name__)
seen = []


@bp.route("/ping")
def ping():
    return jsonify(plugin="{name}", seen=seen)


def _published(app, course, user):
    seen.append(course.title)


def register(ctx):
    ctx.register_blueprint(bp)
    ctx.connect(hooks.signals.course_published, _published)
    ctx.register_content_type(hooks.ContentType(kind="{name}-kind", label="Demo"))
    ctx.add_to_slot("course_page_bottom", lambda **kw: "<p>{name} slot</p>")
"""


@pytest.fixture
def plugin_folder(tmp_path):
    """A fresh folder of plugins with a unique package name (modules are cached)."""
    folder = tmp_path / f"plugins_{uuid.uuid4().hex[:8]}"
    folder.mkdir()

    def add(name: str, source: str):
        package = folder / name
        package.mkdir()
        (package / "__init__.py").write_text(textwrap.dedent(source))

    return folder, add


def _app(tmp_path, folder, allowed):
    application = make_app(
        f"sqlite:///{tmp_path / 'plugins.db'}",
        str(tmp_path / "instance"),
        PLUGINS_FOLDER=str(folder),
        PLUGINS=allowed,
    )
    with application.app_context():
        db.create_all()
    return application


def test_folder_plugin_is_loaded_and_receives_signals(tmp_path, plugin_folder):
    folder, add = plugin_folder
    add("hello", GOOD_PLUGIN.format(name="hello"))
    application = _app(tmp_path, folder, ["hello"])
    assert "hello" in registry(application).plugins
    assert "hello-kind" in registry(application).content_types
    client = application.test_client()
    assert client.get("/plugins/hello/ping").json == {"plugin": "hello", "seen": []}
    with application.app_context():
        from app.accounts import services as accounts
        from app.accounts.models import Role

        region = accounts.ensure_region("r", "市")
        school = accounts.ensure_school(accounts.ensure_district(region, "d", "区"), "s", "校")
        teacher = accounts.create_user("t@example.test", "T", school=school)
        accounts.assign_role(teacher, Role.TEACHER, school=school)
        course = services.create_content(
            teacher, Course, {"title": "天文", "kind": "extended", "category": "astronomy"}
        )
        services.submit_content(teacher, Course, course.content_id)
        # Delivered only after the commit (a test-client request would commit first).
        assert registry(application).plugins["hello"].seen == []
        commit()
    assert client.get("/plugins/hello/ping").json["seen"] == ["天文"]


def test_allow_list(tmp_path, plugin_folder):
    folder, add = plugin_folder
    add("hello", GOOD_PLUGIN.format(name="hello"))
    add("other", GOOD_PLUGIN.format(name="other"))
    only_other = _app(tmp_path, folder, ["other"])
    assert "other" in registry(only_other).plugins and "hello" not in registry(only_other).plugins
    assert only_other.test_client().get("/plugins/hello/ping").status_code == 404
    none = _app(tmp_path, folder, [])
    assert registry(none).plugins == {}
    every = _app(tmp_path, folder, None)
    assert {"hello", "other"} <= set(registry(every).plugins)


BROKEN = {
    "raises": "def register(ctx):\n    raise RuntimeError('boom')\n",
    "import_error": "import module_that_does_not_exist\n",
    "syntax_error": "def register(ctx:\n",
    "no_register": "REGISTER = None\n",
}


def test_failing_plugins_are_logged_and_skipped(tmp_path, plugin_folder, caplog):
    folder, add = plugin_folder
    for name, source in BROKEN.items():
        add(name, source)
    add("hello", GOOD_PLUGIN.format(name="hello"))
    with caplog.at_level(logging.ERROR, logger="app.plugins"):
        application = _app(tmp_path, folder, [*BROKEN, "hello"])
    assert set(registry(application).plugins) == {"hello"}
    messages = [record.getMessage() for record in caplog.records]
    for name in BROKEN:
        assert any(f"plugin {name} " in m and "failed to load" in m for m in messages), (
            name,
            messages,
        )
    assert application.test_client().get("/healthz").status_code == 200
    assert application.test_client().get("/plugins/hello/ping").status_code == 200


def test_entry_point_discovery(tmp_path, monkeypatch):
    """A distribution declaring a ``shuyuan.plugins`` entry point is found and loaded,
    in the ``module:function`` form too."""
    site = tmp_path / "site"
    module = f"sy_ep_{uuid.uuid4().hex[:8]}"
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(GOOD_PLUGIN.format(name="epdemo")))
    dist = site / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[shuyuan.plugins]\nepdemo = {module}:register\n")
    monkeypatch.syspath_prepend(str(site))
    assert plugins.discover(None)["epdemo"] == f"{module}:register"
    application = _app(tmp_path, tmp_path / "no-folder", ["epdemo"])
    assert "epdemo" in registry(application).plugins
    assert application.test_client().get("/plugins/epdemo/ping").json["plugin"] == "epdemo"


def test_every_shipped_plugin_is_an_installed_entry_point():
    """Shipped plugins live in ``plugins/shuyuan_plugins`` and are installed like a third
    party's: one entry point each, under the project-specific package name."""
    from pathlib import Path

    folder = Path(plugins.__file__).resolve().parent.parent / "plugins" / "shuyuan_plugins"
    shipped = {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    names = {ep.name: ep.value for ep in entry_points(group=plugins.ENTRY_POINT_GROUP)}
    assert shipped >= {"course_feed", "h5p", "image", "pdf", "video", "weblink"}
    assert {name: names.get(name) for name in shipped} == {
        name: f"shuyuan_plugins.{name}" for name in shipped
    }


def test_plugins_import_only_app_hooks():
    """The shipped plugins use the stable contract, never feature modules."""
    import ast
    from pathlib import Path

    root = Path(plugins.__file__).resolve().parent.parent / "plugins" / "shuyuan_plugins"
    assert any(root.glob("*/__init__.py"))
    for path in root.glob("*/**/*.py"):
        if "tests" in path.parts or "static" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module + "." + alias.name for alias in node.names]
            for name in names:
                if name.startswith("app."):
                    assert name in ("app.hooks",) or name.startswith("app.hooks."), (path, name)
