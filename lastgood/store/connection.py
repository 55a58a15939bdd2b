"""The thin layer under the store: a database and its transactions, on two drivers.

The store's logic (:class:`lastgood.store.core.Store`) is written once, as SQL text with
``:name`` parameters, against :class:`Session`. Two connection layers provide it:

- :class:`lastgood.store.lite.LiteDatabase`: stdlib ``sqlite3``, the fast lane for the
  embedded store, because ``import sqlalchemy`` alone costs more than a whole do-it-yourself
  git rollback;
- :class:`lastgood.store.database.AlchemyDatabase`: SQLAlchemy, for any URL and PostgreSQL.

A layer owns connecting, transactions, wrapping driver errors into
:class:`~lastgood.errors.StoreError` (naming the store by its masked URL), and the few things
only one database can do (PostgreSQL's ``NOTIFY``). It owns no SQL of the store's own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lastgood.store.switches import SwitchListener

Row = tuple[Any, ...]
Params = Mapping[str, Any]


class Session(ABC):
    """One open transaction: statements run here commit or roll back together."""

    @abstractmethod
    def rows(self, sql: str, params: Params | None = None) -> list[Row]:
        """Run a query and return all its rows as tuples."""

    @abstractmethod
    def run(self, sql: str, params: Params | None = None) -> int:
        """Run a statement (writes); returns how many rows it changed."""

    @abstractmethod
    def run_many(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement for each parameter set (writes)."""

    def stream(
        self, sql: str, params: Params | None = None, *, batch: int = 1000
    ) -> Generator[Row, None, None]:
        """Run a query and yield its rows as tuples, fetching ``batch`` at a time, so a
        long answer is never held whole in memory. Several streams may be open at once in one
        transaction (a merge of two ordered queries). Close the iterator (or read it to the
        end) before the transaction ends."""
        yield from self.rows(sql, params)

    def one(self, sql: str, params: Params | None = None) -> Row | None:
        """The first row of a query, or None."""
        found = self.rows(sql, params)
        return found[0] if found else None

    def value(self, sql: str, params: Params | None = None) -> Any:
        """The first column of the first row, or None."""
        row = self.one(sql, params)
        return None if row is None else row[0]


class Database(ABC):
    """A store's database: where it is, how to start a transaction, what it can announce."""

    url: str

    @abstractmethod
    def transaction(self, doing: str, *, snapshot: bool = False) -> AbstractContextManager[Session]:
        """One transaction (committed on success, rolled back on any error); a driver error
        inside becomes a StoreError saying the store failed ``doing``. On SQLite a transaction
        takes the write lock at once (``BEGIN IMMEDIATE``), so processes queue rather than
        deadlock. A ``snapshot`` reads only, sees one moment of the store however long it
        runs, and blocks no writer: for checking or planning over the whole store."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (idempotent); later transactions raise StoreError."""

    @abstractmethod
    def is_conflict(self, error: BaseException | None) -> bool:
        """Whether ``error`` (a StoreError's cause) is a unique-key clash: another process won
        a race for the same row, so the caller may read again and retry."""

    def lock_history(self, session: Session, *, exclusive: bool) -> None:
        """Keep ``session`` apart from a prune: recording a version takes this shared, pruning
        takes it exclusive, until the transaction ends. Otherwise a version that reuses an old
        file or folder could commit just as a prune, which did not see it, deletes them. On
        SQLite every transaction already holds the write lock, so nothing is needed."""
        del session, exclusive

    def lock_audit(self, session: Session) -> None:
        """Hold every other audit append off until ``session`` ends, so two writers never chain
        to the same link. On SQLite every write transaction already holds the write lock, so
        nothing is needed."""
        del session

    @abstractmethod
    def compact(self) -> None:
        """Give the space of deleted rows back to the disk, where the database does not do it
        by itself (SQLite's VACUUM; PostgreSQL's autovacuum needs nothing from us)."""

    def announce_switch(self, session: Session, env: str) -> None:
        """Tell every server on this store that ``env`` switched, when ``session`` commits
        (PostgreSQL ``NOTIFY``); databases without a channel do nothing: servers poll."""
        del session, env

    def switch_listener(self) -> SwitchListener | None:
        """Something that hears :meth:`announce_switch`, or None (SQLite: poll instead)."""
        return None


def first_column(rows: Sequence[Row]) -> Iterator[Any]:
    """The first value of each row."""
    return (row[0] for row in rows)
