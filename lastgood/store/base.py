"""What every part of the store shares: the database it runs on, and reading rows as records.

The store's methods are written once, in a few mixins that each own one kind of data
(:mod:`~lastgood.store.versions`, :mod:`~lastgood.store.ledger`,
:mod:`~lastgood.store.documents`, :mod:`~lastgood.store.access`,
:mod:`~lastgood.store.leases`), over :class:`~lastgood.store.connection.Database`; they are
put together as :class:`lastgood.store.core.Store`. Importing any of them is cheap: records
and SQL text only, no driver.

Errors, for every method: the driver's exceptions arrive as :class:`~lastgood.errors.StoreError`
naming the store by its masked URL; a missing version or ledger record is
:class:`~lastgood.errors.NotFoundError`; leases raise :class:`~lastgood.errors.LockedError` and
:class:`~lastgood.errors.LeaseLostError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from lastgood.errors import StoreError
from lastgood.store import statements
from lastgood.store.connection import Database, Session

if TYPE_CHECKING:
    from lastgood.store.switches import SwitchListener

RecordT = TypeVar("RecordT")
T = TypeVar("T")

RACE_ATTEMPTS = 5
"""How often a write that lost a race for a new row number (PostgreSQL) reads again and retries."""


class StoreBase:
    """The database under the store, and the helpers every part uses."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def url(self) -> str:
        return self.db.url

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        self.db.close()

    def switch_listener(self) -> SwitchListener | None:
        """Something that hears every switch recorded in this store at once (PostgreSQL
        ``LISTEN``), or None when the store cannot announce switches (SQLite: poll instead).
        Setting a ledger record's ``activated_at`` is what announces a switch."""
        return self.db.switch_listener()

    def _records(
        self,
        doing: str,
        record: type[RecordT],
        table: str,
        where: Mapping[str, Any] | None = None,
        *,
        order: str | None = None,
        limit: int | None = None,
        since: tuple[str, float | None] = ("", None),
    ) -> list[RecordT]:
        """Rows of ``table`` as ``record`` instances, in a transaction of their own."""
        with self.db.transaction(doing) as session:
            return select_records(
                session, record, table, where or {}, order=order, limit=limit, since=since
            )

    def _retrying(self, doing: str, write: Callable[[Session], T], *, gave_up: str) -> T:
        """Run ``write`` in a transaction, again when another process won a race for the same
        new row (a unique-key clash); StoreError ``gave_up`` after :data:`RACE_ATTEMPTS`."""
        for _attempt in range(RACE_ATTEMPTS):
            try:
                with self.db.transaction(doing) as session:
                    return write(session)
            except StoreError as exc:
                if not self.db.is_conflict(exc.__cause__):
                    raise
        raise StoreError(gave_up)


def select_records(
    session: Session,
    record: type[RecordT],
    table: str,
    where: Mapping[str, Any],
    *,
    order: str | None = None,
    limit: int | None = None,
    since: tuple[str, float | None] = ("", None),
) -> list[RecordT]:
    """Rows of ``table`` matching ``where`` as ``record`` instances (see statements.select)."""
    columns = statements.columns_of(record)
    sql, params = statements.select(table, columns, where, order=order, limit=limit, at_least=since)
    return [record(*row) for row in session.rows(sql, params)]
