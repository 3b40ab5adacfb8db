"""pyproject.toml declares exactly what the code imports, and the lock pins it all."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from app.config import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
# Declared although no module imports them, each for a stated reason.
NOT_IMPORTED = {
    "psycopg": "SQLAlchemy loads it for postgresql+psycopg:// URLs",
    "gunicorn": "the production server runs the app",
    "ruff": "the linter of `make lint`",
    "pytest-xdist": "make test spreads the test files over both cores (-n 2 --dist loadfile)",
}
OWN = {"app", "shuyuan_plugins", "tests", "bench", "__future__"}


def _name(requirement: str) -> str:
    return _canonical(re.split(r"[=<>!~\[; ]", requirement, maxsplit=1)[0])


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_distributions(*folders: str) -> set[str]:
    modules: set[str] = set()
    for folder in folders:
        root = PROJECT_ROOT / folder
        paths = [root] if root.is_file() else root.rglob("*.py")
        for path in paths:
            # Hidden folders are not the project's code: bench/.venv-pybkt (make bench)
            # is a virtualenv of third-party sources, some not even UTF-8.
            relative = path.relative_to(PROJECT_ROOT).parts
            if "static" in path.parts or any(part.startswith(".") for part in relative):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules.add(node.module.split(".")[0])
    third_party = modules - OWN - set(sys.stdlib_module_names)
    owners = packages_distributions()
    missing = sorted(m for m in third_party if m not in owners)
    assert not missing, f"imported but not installed: {missing}"
    return {_canonical(owners[m][0]) for m in third_party}


def test_runtime_dependencies_are_exactly_the_imported_ones():
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    imported = _imported_distributions("app", "plugins", "migrations", "wsgi.py")
    assert imported - declared == set(), "imported but not declared"
    assert declared - imported - set(NOT_IMPORTED) == set(), "declared but never imported"


def test_test_dependencies_are_exactly_the_imported_ones():
    runtime = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    declared = {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]}
    imported = _imported_distributions("tests", "bench") - runtime
    assert imported - declared == set(), "imported by tests but not declared"
    assert declared - imported - set(NOT_IMPORTED) == set(), "declared but never imported"


def test_every_declared_dependency_is_locked_with_hashes_at_its_pin():
    lock = (PROJECT_ROOT / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+) \\$", lock, flags=re.MULTILINE))
    pins = {_canonical(name): version for name, version in pins.items()}
    requirements = (
        PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["test"]
    )
    for requirement in requirements:
        name, version = _name(requirement), requirement.split("==")[1]
        assert pins.get(name) == version, f"{name}: pyproject {version}, lock {pins.get(name)}"
    blocks = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n\n", 1)[-1])
    unhashed = [b.split()[0] for b in blocks if "==" in b and "--hash=sha256:" not in b]
    assert not unhashed
    assert "setuptools==" in lock  # the editable install builds with the locked backend
