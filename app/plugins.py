"""Plugin discovery: entry points of group ``shuyuan.plugins``, plus the ``plugins/``
folder in development; ``PLUGINS`` in config is the allow-list (None = all found)."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path

from flask import Flask

from app.hooks import PluginContext, registry

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "shuyuan.plugins"


def discover(folder: str | None) -> dict[str, str]:
    """Plugin name → importable module path."""
    found: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.value
    if folder and Path(folder).is_dir():
        root = Path(folder)
        parent = str(root.parent)
        if parent not in sys.path:
            sys.path.insert(0, parent)
        for child in sorted(root.iterdir()):
            if (child / "__init__.py").is_file() and not child.name.startswith(("_", ".")):
                found.setdefault(child.name, f"{root.name}.{child.name}")
    return found


def load_plugins(app: Flask) -> list[str]:
    allowed = app.config.get("PLUGINS")
    loaded = []
    for name, module_path in sorted(discover(app.config.get("PLUGINS_FOLDER")).items()):
        if allowed is not None and name not in allowed:
            continue
        try:
            module = importlib.import_module(module_path)
            module.register(PluginContext(app, name))
        except Exception:
            # One broken plugin must not take the site down; it is reported and skipped.
            log.exception("plugin %s failed to load", name)
            continue
        registry(app).plugins[name] = module
        folder = Path(module.__file__).parent / "translations"
        if folder.is_dir():
            babel_config = app.extensions["babel"]
            babel_config.translation_directories.append(str(folder))
        loaded.append(name)
    return loaded
