"""Persistence behind one door. Import is light: a database driver loads only when a store is
opened.

SQLite URLs get the stdlib ``sqlite3`` layer (:class:`~lastgood.store.lite.LiteDatabase`), so
everyday commands on the embedded store never pay for importing SQLAlchemy; every other URL,
and SQLite URLs with driver options, get SQLAlchemy
(:class:`~lastgood.store.database.AlchemyDatabase`). The store's logic on top,
:class:`~lastgood.store.core.Store`, is the same for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lastgood.store.core import Store


def open_store(url: str) -> Store:
    """Open (and migrate if needed) the store at ``url`` on the cheapest layer that fits."""
    from lastgood.store.core import Store
    from lastgood.store.lite import LiteDatabase, sqlite_location

    if sqlite_location(url) is not None:
        return Store(LiteDatabase(url))
    from lastgood.store.database import AlchemyDatabase

    return Store(AlchemyDatabase(url))


__all__ = ["open_store"]
