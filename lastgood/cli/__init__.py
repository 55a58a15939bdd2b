"""The ``lastgood`` command: parse, call one verb, render. No SQL here, ever.

``lastgood.cli.group`` holds the click group; ``lastgood.cli.fast`` the click-free rollback lane
that the console script enters first. Importing this package loads neither: ``cli``, ``main``
and ``AppContext`` are resolved on first use. A type checker sees them here as ``Any``, so code
inside lastgood imports them from their modules (``lastgood.cli.group``, ``lastgood.cli.app``).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("cli", "main"):
        from lastgood.cli import group

        return getattr(group, name)
    if name == "AppContext":
        from lastgood.cli.app import AppContext

        return AppContext
    raise AttributeError(f"module 'lastgood.cli' has no attribute {name!r}")
