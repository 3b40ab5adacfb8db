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

This module also holds the registry plugins fill (content types, page slots) and the
:class:`PluginContext` they receive.  Features read the registry from here; plugins
reach the same objects through :mod:`app.hooks`, the facade they may import (nothing
under ``app/`` imports ``app.hooks``).
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app
from markupsafe import Markup

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "shuyuan.plugins"


@dataclass
class ContentType:
    """How one resource kind is stored and played.

    Untrusted package content (``frame_assets`` and the unpacked files) runs only in the
    media feature's sandboxed frame; ``player`` is trusted plugin code on the page.

    ``kind`` is a resource kind code (video, audio, document, link, interactive...).
    ``player`` renders the player HTML for a resource: ``player(resource, context) -> str``
    where ``context`` has ``media_url`` and ``user``.  ``accepts`` lists media types an
    upload of this kind may have (sniffed from the bytes, not the file name).
    """

    kind: str
    label: str
    player: Callable[..., str] | None = None
    accepts: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    # A folder of files that play this kind's packages inside the sandboxed frame
    # (``frame.html`` first); they are served under the package's own URL, with its
    # sandbox headers, at ``<package base>~player/``.  None: the kind has no packages.
    frame_assets: str | None = None


@dataclass
class _Registry:
    content_types: dict[str, ContentType] = field(default_factory=dict)
    slots: dict[str, list[Callable[..., str]]] = field(default_factory=dict)
    plugins: dict[str, Any] = field(default_factory=dict)


def registry(app: Flask | None = None) -> _Registry:
    app = app or current_app
    return app.extensions.setdefault("shuyuan_hooks", _Registry())


class PluginContext:
    """What the loader hands a plugin's ``register`` function."""

    def __init__(self, app: Flask, name: str):
        self._app = app
        self.name = name

    @property
    def config(self) -> dict:
        """This plugin's settings: config keys ``PLUGIN_<NAME>_*`` without the prefix."""
        prefix = f"PLUGIN_{self.name.upper()}_"
        return {k[len(prefix) :]: v for k, v in self._app.config.items() if k.startswith(prefix)}

    def register_blueprint(self, blueprint: Blueprint, url_prefix: str | None = None) -> None:
        self._app.register_blueprint(blueprint, url_prefix=url_prefix or f"/plugins/{self.name}")

    def connect(self, signal, receiver: Callable) -> None:
        """Listen to a signal of :mod:`app.signals` for this application only."""
        signal.connect(receiver, sender=self._app, weak=False)

    def register_content_type(self, content_type: ContentType) -> None:
        registry(self._app).content_types[content_type.kind] = content_type

    def add_to_slot(self, slot: str, render: Callable[..., str]) -> None:
        """``render(**context) -> str`` is called where a page shows ``slot``."""
        registry(self._app).slots.setdefault(slot, []).append(render)

    def register_player(self, *types: ContentType) -> None:
        """Register content types that one ``player(resource)`` plays, and show that
        player on the resource page (slot ``resource_page_player``); it returns "" for
        a resource of another kind."""
        for content_type in types:
            self.register_content_type(content_type)
        player = types[0].player
        self.add_to_slot(
            "resource_page_player", lambda resource=None, **kw: player(resource) if resource else ""
        )

    def add_template_folder(self, folder: str) -> None:
        """Not needed with a blueprint's own ``template_folder``; kept for slot templates."""
        from jinja2 import ChoiceLoader, FileSystemLoader

        self._app.jinja_loader = ChoiceLoader([self._app.jinja_loader, FileSystemLoader(folder)])


def content_types() -> dict[str, ContentType]:
    return registry().content_types


def render_slot(slot: str, **context) -> Markup:
    parts = []
    for render in registry().slots.get(slot, []):
        parts.append(str(render(**context)))
    # Slot renderers are installed plugins (code the operator chose to run), and they
    # return HTML by contract; escaping their user data is their job.
    return Markup("".join(parts))  # noqa: S704


def link_card(anchor: str, url: str, title: str, text: str) -> Markup:
    """A card with a linked heading and one line of text: what features contribute to
    link slots such as ``admin_links`` (the administration page).  Title and text are
    escaped here."""
    return Markup(
        '<section class="card" id="{}"><h2><a href="{}">{}</a></h2><p>{}</p></section>'
    ).format(anchor, url, title, text)


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
