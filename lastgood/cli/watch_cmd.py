"""``lastgood watch``: the long-running watcher."""

from __future__ import annotations
