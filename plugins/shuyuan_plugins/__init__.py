"""Plugins shipped with Shuyuan.  Each sub-package exposes ``register(ctx)`` and imports
only :mod:`app.hooks`; see :mod:`app.plugins` for discovery and the allow-list."""
