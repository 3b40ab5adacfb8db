"""The arrows of docs/architecture.md, checked on the source so that they cannot rot.

Read from the files with :mod:`ast` (nothing is imported), so a rule broken anywhere
under ``app/`` or ``plugins/`` fails here with the module and line that broke it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# "No module over ~600 lines" (issue 11): since the last three were split (search's
# PostgreSQL backend, the xAPI store, media storage) every module is under it, so the
# limit is the issue's own.  A module that reaches it has grown a second sub-domain.
MAX_MODULE_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(top: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / top).rglob("*.py"))}


APP_MODULES = _modules("app")


def _imports(name: str, path: Path, top_level_only: bool) -> list[tuple[str, int]]:
    """(imported module, line) for each import in the file; ``from X import y`` counts
    as an import of ``X.y`` when that is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    if top_level_only:
        # Imports at module level, also inside a module-level if/try; not those inside
        # functions, which run later and cannot make an import circle.
        nodes = [
            n
            for stmt in tree.body
            for n in (ast.walk(stmt) if isinstance(stmt, ast.If | ast.Try) else [stmt])
        ]
    else:
        nodes = list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in APP_MODULES else base, node.lineno))
    return found


def test_no_import_circles_between_app_modules():
    graph = {
        name: {
            target
            for target, _ in _imports(name, path, top_level_only=True)
            if target in APP_MODULES and target not in (name, "app")
        }
        for name, path in APP_MODULES.items()
    }
    circles = _strongly_connected(graph)
    assert circles == [], f"modules importing each other at module level: {circles}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; only the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_circle_finder_finds_circles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _strongly_connected(graph) == [["a", "b", "c"]]
    assert _strongly_connected({"a": {"b"}, "b": set()}) == []


def test_nothing_under_app_imports_the_plugin_facade():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for name, path in APP_MODULES.items()
        if name != "app.hooks"
        for target, line in _imports(name, path, top_level_only=False)
        if target == "app.hooks" or target.startswith("app.hooks.")
    ]
    assert offenders == []


def test_plugins_import_only_the_plugin_facade():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for name, path in _modules("plugins").items()
        for target, line in _imports(name, path, top_level_only=False)
        if (target == "app" or target.startswith("app.")) and target != "app.hooks"
    ]
    assert offenders == []


def _is_view_module(name: str) -> bool:
    parts = name.split(".")
    return any(part in ("views", "api") for part in parts[2:])


def test_views_and_api_never_commit_by_hand():
    """One commit per request, made by the framework (app/common/transaction.py)."""
    offenders = []
    for name, path in APP_MODULES.items():
        if not _is_view_module(name):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "commit"
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_view_modules_are_recognised():
    views = [name for name in APP_MODULES if _is_view_module(name)]
    assert "app.catalog.views.course_parts" in views
    assert "app.xapi.views" in views
    assert "app.catalog.services.queries" not in views


def test_modules_fit_in_one_head():
    too_long = {
        name: lines
        for name, path in APP_MODULES.items()
        if (lines := path.read_text(encoding="utf-8").count("\n")) > MAX_MODULE_LINES
    }
    assert too_long == {}, "split these by sub-domain"


# Which feature may import which (docs/architecture.md draws the same graph).  Anything
# else goes through a signal.  The base (extensions, config, errors, i18n, signals, jobs,
# plugins, common/*) imports no feature.
FEATURE_ARROWS = {
    "accounts": set(),
    "catalog": {"accounts", "sharing"},
    "curriculum": {"accounts", "catalog", "demo"},
    "media": {"accounts", "catalog"},
    "xapi": {"accounts", "catalog"},
    "search": {"accounts", "catalog", "curriculum", "sharing"},
    "lti": {"accounts", "catalog", "curriculum", "search", "sharing"},
    "portraits": {"accounts", "catalog", "curriculum", "xapi", "demo"},
    "sharing": {"accounts", "catalog", "curriculum", "media", "xapi", "demo"},
    "demo": {"accounts", "catalog"},
    "ops": {"media"},
    "core": {"accounts", "catalog", "lti"},
    "hooks": {"accounts", "catalog", "core", "media"},
}
BASE = {"extensions", "config", "errors", "i18n", "signals", "jobs", "plugins", "common"}


def _feature_arrows() -> dict[tuple[str, str], str]:
    arrows = {}
    for name, path in APP_MODULES.items():
        parts = name.split(".")
        if len(parts) < 2:
            continue
        for target, line in _imports(name, path, top_level_only=False):
            target_parts = target.split(".")
            if target_parts[0] != "app" or len(target_parts) < 2:
                continue
            source, dest = parts[1], target_parts[1]
            if dest != source and dest in FEATURE_ARROWS:
                arrows.setdefault((source, dest), f"{path.relative_to(ROOT)}:{line}")
    return arrows


def test_features_import_only_along_the_documented_arrows():
    packages = {p.name for p in (ROOT / "app").iterdir() if (p / "__init__.py").exists()}
    assert packages - {"common", "static", "templates", "translations"} <= set(FEATURE_ARROWS), (
        "a new feature package: add its arrows here and in docs/architecture.md"
    )
    unexpected = {
        f"{source} -> {dest}": where
        for (source, dest), where in _feature_arrows().items()
        if dest not in FEATURE_ARROWS.get(source, set())
    }
    assert unexpected == {}


def test_the_documented_arrows_are_all_used():
    """An arrow nobody needs any more is dropped from the table and the picture."""
    used = set(_feature_arrows())
    unused = {
        f"{source} -> {dest}"
        for source, dests in FEATURE_ARROWS.items()
        for dest in dests
        if (source, dest) not in used
    }
    assert unused == set()


def test_the_base_imports_no_feature():
    offenders = {
        f"{source} -> {dest}": where
        for (source, dest), where in _feature_arrows().items()
        if source in BASE
    }
    assert offenders == {}
