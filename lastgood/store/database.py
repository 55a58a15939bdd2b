"""The store's connection layer on SQLAlchemy: any URL, PostgreSQL for teams.

SQLAlchemy is used here (and by the migrations) and nowhere else; its exceptions are wrapped
into :class:`lastgood.errors.StoreError`. The store's SQL runs through ``text()`` unchanged, so
it is the same SQL the stdlib fast lane (:mod:`lastgood.store.lite`) runs. SQLite through
SQLAlchemy behaves as the fast lane does (WAL, every transaction ``BEGIN IMMEDIATE``);
PostgreSQL adds connect and statement timeouts and announces switches with ``NOTIFY``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from lastgood.errors import ConfigError, StoreError
from lastgood.settings import mask_url
from lastgood.store import common, schema, switches
from lastgood.store.connection import Database, Params, Row, Session
from lastgood.store.statements import UnknownColumnError
from lastgood.store.switches import SwitchListener


def normalize_url(url: str) -> str:
    """Pick the psycopg 3 driver for bare ``postgresql://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_engine(url: str) -> Engine:
    """An engine for ``url`` with lastgood's connection settings, timeouts included."""
    url = normalize_url(url)
    timeouts = common.store_timeouts()
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(
                url, connect_args={"timeout": timeouts.busy_milliseconds / 1000}
            )
            sa_event.listen(engine, "connect", _sqlite_settings(timeouts))
            sa_event.listen(engine, "begin", _sqlite_begin)
            return engine
        arguments = _postgres_arguments(sa.make_url(url), timeouts) if _is_postgres(url) else {}
        return sa.create_engine(url, pool_pre_ping=True, connect_args=arguments)
    except ModuleNotFoundError as exc:
        postgres = url.startswith("postgresql")
        raise StoreError(
            f"the driver for {mask_url(url)} is not installed ({exc.name})",
            hint="run: pip install 'lastgood[postgres]'"
            if postgres
            else f"install the Python package that provides {exc.name}",
        ) from exc
    except (SQLAlchemyError, ValueError) as exc:
        raise ConfigError(
            f"cannot use store URL {mask_url(url)}: {exc}",
            hint="give an SQLAlchemy URL such as sqlite:///path/store.db or "
            "postgresql://user@host/db (--store, LASTGOOD_STORE or store = in lastgood.toml)",
        ) from exc


def _is_postgres(url: str) -> bool:
    """PostgreSQL through a libpq driver (psycopg 3 or 2), which takes the timeouts below."""
    return url.startswith(("postgresql+psycopg://", "postgresql+psycopg2://"))


def _postgres_arguments(url: sa.URL, timeouts: common.StoreTimeouts) -> dict[str, Any]:
    """psycopg's connect timeout and a server-side statement timeout, so a server that accepts
    connections but never answers, or a lock held for ever, ends in an error instead of a hang.

    Options the URL already carries win: its ``connect_timeout``, and its ``options``, which
    come after ours (PostgreSQL keeps the last ``-c`` of a setting).
    """
    arguments: dict[str, Any] = {}
    if timeouts.connect > 0 and "connect_timeout" not in url.query:
        arguments["connect_timeout"] = common.connect_seconds(timeouts)
    if timeouts.statement > 0:
        own = f"-c statement_timeout={max(1, round(timeouts.statement * 1000))}"
        theirs = url.query.get("options")
        theirs = " ".join(theirs) if isinstance(theirs, tuple) else theirs
        arguments["options"] = f"{own} {theirs}" if theirs else own
    return arguments


def _sqlite_settings(timeouts: common.StoreTimeouts) -> Callable[[Any, Any], None]:
    """The connect hook for SQLite: WAL, and a busy timeout of the statement timeout."""

    def connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        common.use_wal(dbapi_connection, timeouts.busy_milliseconds)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={timeouts.busy_milliseconds}")
        cursor.close()

    return connect


def _sqlite_begin(connection: Connection) -> None:
    """Writers take the write lock at once; a long read (a snapshot) takes none."""
    reading = connection.get_execution_options().get("lastgood_snapshot", False)
    connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


HISTORY_LOCK = 0x6C617374_676F6F64 >> 1
"""The advisory lock key that keeps version writes and prunes apart ("lastgood", as a bigint)."""

AUDIT_LOCK = HISTORY_LOCK + 1
"""The advisory lock key that serialises appends to the audit chain."""


class AlchemySession(Session):
    """A transaction on a SQLAlchemy connection; statements go through ``text()``."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def rows(self, sql: str, params: Params | None = None) -> list[Row]:
        return [tuple(row) for row in self.connection.execute(sa.text(sql), dict(params or {}))]

    def stream(
        self, sql: str, params: Params | None = None, *, batch: int = 1000
    ) -> Generator[Row, None, None]:
        """A server-side cursor on PostgreSQL (``stream_results``), read ``batch`` rows at a
        time."""
        streaming = self.connection.execution_options(stream_results=True, max_row_buffer=batch)
        result = streaming.execute(sa.text(sql), dict(params or {}))
        try:
            for rows in result.partitions(batch):
                yield from (tuple(row) for row in rows)
        finally:
            result.close()

    def run(self, sql: str, params: Params | None = None) -> int:
        return int(self.connection.execute(sa.text(sql), dict(params or {})).rowcount or 0)

    def run_many(self, sql: str, rows: Sequence[Params]) -> None:
        if rows:
            self.connection.execute(sa.text(sql), [dict(row) for row in rows])


class AlchemyDatabase(Database):
    """A store's database through SQLAlchemy, migrated to the newest schema when opened."""

    def __init__(self, url: str) -> None:
        self.url = url
        if normalize_url(url).startswith("sqlite"):
            common.require_sqlite(url)
        self.engine = create_engine(url)
        self._closed = False
        try:
            with self._wrap("open"):
                schema.upgrade(self.engine)
        except BaseException:
            self.engine.dispose()  # a store that cannot be opened leaves no connection behind
            raise

    def close(self) -> None:
        self._closed = True
        self.engine.dispose()

    def is_conflict(self, error: BaseException | None) -> bool:
        """A duplicate key (PostgreSQL 23505, SQLite's UNIQUE), not any integrity error."""
        if not isinstance(error, IntegrityError):
            return False
        cause = error.orig
        return getattr(cause, "sqlstate", None) == "23505" or "UNIQUE" in str(cause)

    def compact(self) -> None:
        if self.engine.dialect.name == "sqlite":
            with self._wrap("compact"):
                schema.vacuum(self.engine)

    @contextmanager
    def transaction(self, doing: str, *, snapshot: bool = False) -> Iterator[Session]:
        if self._closed:
            raise StoreError(f"store {mask_url(self.url)} is closed: cannot {doing}")
        with self._wrap(doing), self.engine.connect() as connection:
            if snapshot and self._listens:
                connection = connection.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            elif snapshot:
                connection = connection.execution_options(lastgood_snapshot=True)
            with connection.begin():
                yield AlchemySession(connection)

    @property
    def _listens(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def lock_history(self, session: Session, *, exclusive: bool) -> None:
        """A transaction-scoped advisory lock on PostgreSQL (see the base class)."""
        if self._listens:
            kind = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
            session.rows(f"SELECT {kind}(:key)", {"key": HISTORY_LOCK})

    def lock_audit(self, session: Session) -> None:
        """A transaction-scoped advisory lock on PostgreSQL (see the base class)."""
        if self._listens:
            session.rows("SELECT pg_advisory_xact_lock(:key)", {"key": AUDIT_LOCK})

    def announce_switch(self, session: Session, env: str) -> None:
        """``NOTIFY`` on PostgreSQL, delivered when the transaction commits."""
        if self._listens:
            session.run(
                "SELECT pg_notify(:channel, :env)", {"channel": switches.CHANNEL, "env": env}
            )

    def switch_listener(self) -> SwitchListener | None:
        """A listener for switches announced on this store; None unless it is PostgreSQL."""
        if not self._listens:
            return None
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return SwitchListener(dsn, self.url)

    @contextmanager
    def _wrap(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (SQLAlchemyError, UnknownColumnError, sqlite3.Error) as exc:
            raise common.store_failure(self.url, doing, exc) from exc
