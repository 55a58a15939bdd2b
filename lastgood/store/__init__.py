"""Persistence behind one door. Import is light: a backend loads only when a store is opened.

SQLite URLs get :class:`~lastgood.store.lite.LiteStore` (stdlib ``sqlite3``), so everyday
commands on the embedded store never pay for importing SQLAlchemy; every other URL, and SQLite
URLs with driver options, get the SQLAlchemy :class:`~lastgood.store.database.Store`. Both
satisfy :class:`~lastgood.store.base.StoreBackend`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lastgood.store.base import StoreBackend


def open_store(url: str) -> StoreBackend:
    """Open (and migrate if needed) the store at ``url`` with the cheapest backend that fits."""
    from lastgood.store.lite import LiteStore, sqlite_location

    if sqlite_location(url) is not None:
        return LiteStore(url)
    from lastgood.store.database import Store

    return Store(url)


__all__ = ["open_store"]
