"""Reading the tables of ``lastgood.toml``: the checks every section makes the same way.

An unknown key with the closest known one suggested, a table where a table belongs, a list of
strings, and a path that stays inside the workspace. :mod:`lastgood.config` and the modules that
read one section of the file for it (:mod:`lastgood.config_notify`) share them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lastgood.errors import ConfigError


def inside(root: Path, relative: str) -> bool:
    """``relative`` names a path under ``root`` (no absolute path, no ``..`` out of it)."""
    from pathlib import PurePosixPath

    pure = PurePosixPath(relative)
    if pure.is_absolute() or not relative.strip() or ".." in pure.parts:
        return False
    return (root / relative).resolve().is_relative_to(root.resolve())


def table_at(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{key}] in {where} must be a table")
    return value


def string_list(value: Any, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{key} in {where} must be a list of strings")
    return value


def reject_unknown(table: dict[str, Any], known: set[str], where: str, prefix: str) -> None:
    for key in table:
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = (
                f"did you mean {prefix}{close[0]}?"
                if close
                else f"known keys: {', '.join(sorted(known))}"
            )
            raise ConfigError(f"unknown key {prefix}{key} in {where}", hint=hint)
