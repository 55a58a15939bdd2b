"""The SQLite fast lane: the store's connection layer on the stdlib ``sqlite3`` module.

Why it exists: ``import sqlalchemy`` alone costs more than a whole do-it-yourself git rollback,
and a rollback must be quicker than the manual way. :class:`LiteDatabase` opens the same
tables (:mod:`lastgood.store.tables` owns them, the Alembic migrations create them) with the
same connection settings as :mod:`lastgood.store.database`; the store's logic on top is the
same code for both. A new database gets the newest schema from ``sqlite_schema.sql`` (what the
migrations build, written down by ``scripts/gen_sqlite_schema.py``); SQLAlchemy and Alembic are
imported only when a database is behind and needs migrating.

Every transaction is ``BEGIN IMMEDIATE`` (WAL mode), so concurrent processes queue on the write
lock rather than deadlock. One connection per store, guarded by a lock so threads may share it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote

from lastgood.errors import StoreError
from lastgood.record import Record
from lastgood.settings import mask_url
from lastgood.store import common
from lastgood.store.connection import Database, Params, Row, Session
from lastgood.store.statements import UnknownColumnError

SCHEMA_HEAD = "0013"
"""Mirror of :data:`lastgood.store.schema.HEAD`, which cannot be imported without SQLAlchemy.

``tests/test_store.py`` fails when the two differ, so a new migration cannot forget this line.
"""

NEW_SCHEMA = Path(__file__).with_name("sqlite_schema.sql")
"""The statements that make a new database's schema at :data:`SCHEMA_HEAD` (generated; see
``scripts/gen_sqlite_schema.py``, and ``tests/test_store.py``, which fails when it is stale)."""

_SCHEMES = ("sqlite://", "sqlite+pysqlite://")
_MEMORY = ("", ":memory:")


class SqliteLocation(Record):
    """Where a sqlite URL points: what ``sqlite3.connect`` gets, and the same database for
    SQLAlchemy (used only to run migrations)."""

    database: str
    uri: bool
    engine_url: str


def sqlite_location(url: str) -> SqliteLocation | None:
    """Parse ``url`` the way SQLAlchemy's pysqlite dialect does, or None when the fast lane
    cannot serve it (another database, a host part, or query options), leaving it to SQLAlchemy.

    ``sqlite:///relative.db`` and ``sqlite:////abs.db`` name files (made absolute, as SQLAlchemy
    does); ``sqlite://`` and ``sqlite:///:memory:`` mean a private in-memory database. That one is
    opened under a random name on SQLite's ``memdb`` VFS, so the migration (run through a second,
    SQLAlchemy, connection) reaches the very database this store then uses.
    """
    scheme = next((s for s in _SCHEMES if url.startswith(s)), None)
    if scheme is None or "?" in url:
        return None
    rest = url[len(scheme) :]
    if rest and not rest.startswith("/"):
        return None  # a host, user or port: SQLAlchemy rejects it with its own message
    database = unquote(rest[1:])
    if database in _MEMORY:
        target = f"file:/lastgood-memory-{os.urandom(8).hex()}?vfs=memdb"
        return SqliteLocation(target, True, f"sqlite:///{target}&uri=true")
    path = os.path.abspath(database)
    return SqliteLocation(path, False, f"sqlite:///{quote(path)}")  # SQLAlchemy unquotes it


class LiteSession(Session):
    """A transaction on a stdlib ``sqlite3`` connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def rows(self, sql: str, params: Params | None = None) -> list[Row]:
        cursor = self._connection.execute(sql, params or {})
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    def stream(
        self, sql: str, params: Params | None = None, *, batch: int = 1000
    ) -> Generator[Row, None, None]:
        cursor = self._connection.execute(sql, params or {})
        try:
            while rows := cursor.fetchmany(batch):
                yield from rows
        finally:
            cursor.close()

    def run(self, sql: str, params: Params | None = None) -> int:
        cursor = self._connection.execute(sql, params or {})
        count = cursor.rowcount
        cursor.close()
        return count

    def run_many(self, sql: str, rows: Sequence[Params]) -> None:
        if rows:
            self._connection.executemany(sql, rows).close()


class LiteDatabase(Database):
    """One SQLite file (or private in-memory database) through the stdlib ``sqlite3`` module."""

    def __init__(self, url: str) -> None:
        location = sqlite_location(url)
        if location is None:
            raise StoreError(
                f"the SQLite fast lane cannot open {mask_url(url)}",
                hint="open it with lastgood.store.open_store, which picks the right layer",
            )
        self.url = url
        common.require_sqlite(url)
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = self._connect(location)
        try:
            self._ensure_schema(location)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def is_conflict(self, error: BaseException | None) -> bool:
        return isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error)

    def compact(self) -> None:
        """VACUUM: the file shrinks to what it holds (outside any transaction; atomic)."""
        with self._lock, self._wrap("compact"):
            self._db().execute("VACUUM").close()

    @contextmanager
    def transaction(self, doing: str, *, snapshot: bool = False) -> Iterator[Session]:
        with self._lock, self._wrap(doing):
            db = self._db()
            db.execute("BEGIN" if snapshot else "BEGIN IMMEDIATE")
            try:
                yield LiteSession(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    # ---- connecting and migrating ---------------------------------------------------------

    def _connect(self, location: SqliteLocation) -> sqlite3.Connection:
        """Open with the same settings as :func:`lastgood.store.database.create_engine`."""
        busy = common.store_timeouts().busy_milliseconds
        with self._wrap("open"):
            connection = sqlite3.connect(
                location.database,
                timeout=busy / 1000,
                isolation_level=None,
                uri=location.uri,
                check_same_thread=False,
            )
        try:
            with self._wrap("open"):
                common.use_wal(connection, busy)
                for pragma in ("synchronous=NORMAL", f"busy_timeout={busy}"):
                    connection.execute(f"PRAGMA {pragma}").close()
        except BaseException:
            connection.close()
            raise
        return connection

    def _revision(self) -> str | None:
        """The Alembic revision in the database, or None for a new one.

        Only a missing table means "new": a locked or unreadable database is a StoreError now,
        rather than a second wait in the migration that would follow.
        """
        try:
            with self._lock:
                row = self._db().execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise common.store_failure(self.url, "open", exc) from exc
        except sqlite3.Error:
            return None  # not a database at all: the migration says so in its own words
        return None if row is None else str(row[0])

    def _ensure_schema(self, location: SqliteLocation) -> None:
        """Create a new database's schema at once; migrate through SQLAlchemy and Alembic only
        one that is behind."""
        revision = self._revision()
        if revision == SCHEMA_HEAD:
            return
        if revision is None and self._create_schema():
            return
        from sqlalchemy.exc import SQLAlchemyError

        from lastgood.store import schema
        from lastgood.store.database import create_engine

        engine = create_engine(location.engine_url)
        try:
            schema.upgrade(engine)
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise common.store_failure(self.url, "open", exc) from exc
        finally:
            engine.dispose()

    def _create_schema(self) -> bool:
        """Give a database that holds nothing at all the newest schema, in one transaction.

        False when the database holds something (a table of another program, or the schema
        another process made while this one waited for the write lock): the migration path
        then says what it finds, or finds nothing left to do.
        """
        statements = _statements(NEW_SCHEMA.read_text(encoding="utf-8"))
        with self._lock, self._wrap("create"):
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    db.execute("ROLLBACK")
                    return False
                for statement in statements:
                    db.execute(statement).close()
                db.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (SCHEMA_HEAD,))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return True

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._connection

    @contextmanager
    def _wrap(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, UnknownColumnError) as exc:
            raise common.store_failure(self.url, doing, exc) from exc


def _statements(script: str) -> list[str]:
    """The statements of an SQL script, split where SQLite itself says one is complete (never
    inside a quoted ``;``); comment lines are left out."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        if not pending and (not line.strip() or line.startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements
