"""Persistence behind one door. Import is light: a backend loads only when a store is opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lastgood.store.database import Store


def open_store(url: str) -> Store:
    """Open (and migrate if needed) the store at ``url``."""
    from lastgood.store.database import Store

    return Store(url)


__all__ = ["open_store"]
