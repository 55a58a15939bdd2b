"""Path globs as lastgood.toml writes them: ``prompts/**``, ``scoring/*.yaml``.

One small module with no imports of lastgood's own, so the configuration's readers (versioning,
schemas, approval rules, secrets) can all match paths without importing each other.
"""

from __future__ import annotations

import fnmatch


def matches(path: str, patterns: tuple[str, ...]) -> bool:
    """True when ``path`` matches a glob: ``dir/**`` covers everything below ``dir``."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(path, pattern):
            return True
        if pattern.endswith("/**") and (path + "/").startswith(pattern[:-2]):
            return True
    return False
