"""Plugin discovery and loading.

Plugins are found in two places:

- installed distributions declaring an entry point of group ``shuyuan.plugins``
  (``name = "package.module"`` or ``name = "package.module:register"``), e.g. in
  ``pyproject.toml``::

      [project.entry-points."shuyuan.plugins"]
      course_feed = "shuyuan_plugins.course_feed"

- in development, every package in the ``PLUGINS_FOLDER`` (default
  ``plugins/shuyuan_plugins/``, where the shipped plugins live), so a new plugin runs
  before its entry point is installed.

An entry point wins over a folder package of the same name.  ``PLUGINS`` in config is
the allow-list (``None``: every plugin found; ``[]``: none).  A plugin whose import or
``register(ctx)`` fails is logged and skipped; the site starts without it.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from flask import Flask

from app.hooks import PluginContext, registry

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "shuyuan.plugins"


def discover(folder: str | None) -> dict[str, str]:
    """Plugin name → where it comes from (``module`` or ``module:attribute``)."""
    found: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    if folder and Path(folder).is_dir():
        root = Path(folder).resolve()
        parent = str(root.parent)
        if parent not in sys.path:
            sys.path.append(parent)
        for child in sorted(root.iterdir()):
            if (child / "__init__.py").is_file() and not child.name.startswith(("_", ".")):
                found.setdefault(child.name, f"{root.name}.{child.name}")
    return found


def _register_function(target: str) -> tuple[Callable, object]:
    """The ``register`` callable named by ``target`` and the module that holds it."""
    if ":" in target:
        loaded = EntryPoint(name="plugin", group=ENTRY_POINT_GROUP, value=target).load()
        module = sys.modules[target.split(":", 1)[0].strip()]
        return loaded, module
    module = importlib.import_module(target)
    register = getattr(module, "register", None)
    if not callable(register):
        raise TypeError(f"{target} has no register(ctx) function")
    return register, module


def load_plugins(app: Flask) -> list[str]:
    """Load the allowed plugins into ``app``; returns the names loaded."""
    allowed = app.config.get("PLUGINS")
    loaded = []
    for name, target in sorted(discover(app.config.get("PLUGINS_FOLDER")).items()):
        if allowed is not None and name not in allowed:
            log.debug("plugin %s found but not in PLUGINS; skipped", name)
            continue
        try:
            register, module = _register_function(target)
            register(PluginContext(app, name))
        except Exception:
            # One broken plugin must not take the site down; it is reported and skipped.
            log.exception("plugin %s (%s) failed to load; skipped", name, target)
            continue
        registry(app).plugins[name] = module
        module_file = getattr(module, "__file__", None)
        folder = Path(module_file).parent / "translations" if module_file else None
        if folder is not None and folder.is_dir():
            babel_config = app.extensions["babel"]
            babel_config.translation_directories.append(str(folder))
        loaded.append(name)
    if loaded:
        log.info("plugins loaded: %s", ", ".join(loaded))
    return loaded
