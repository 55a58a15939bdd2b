"""Moving a whole store to another database: SQLite to PostgreSQL when a team outgrows one
machine, and back.

Every table the schema has (:mod:`lastgood.store.tables`) is copied row for row, blobs and
trees as stored, in key order and in batches, inside one transaction on the destination: a
copy that fails or is interrupted leaves the destination empty. PostgreSQL's id sequences are
moved past the copied ids, so the next ledger record gets the next number. Afterwards every
table's row count is compared, and the destination checks itself
(:meth:`~lastgood.store.integrity.IntegrityStore.check_integrity`).

This module uses SQLAlchemy (reflection-free: the tables are ours), so it is only imported by
``lastgood store copy``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from lastgood.errors import RefusedError, StoreError
from lastgood.record import Record
from lastgood.settings import mask_url
from lastgood.store import common
from lastgood.store.database import create_engine
from lastgood.store.tables import metadata

BATCH = 500


class Copied(Record):
    """Rows copied per table, in the order they were copied."""

    source: str
    destination: str
    rows: dict[str, int]


def copy_store(source_url: str, destination_url: str) -> Copied:
    """Copy every row of the store at ``source_url`` into the empty store at
    ``destination_url`` (both already at the newest schema); RefusedError when the destination
    holds anything, StoreError when the copy fails (the destination is left empty)."""
    source, destination = create_engine(source_url), create_engine(destination_url)
    try:
        with _snapshot(source, source_url) as read:
            try:
                _refuse_non_empty(destination, destination_url)
                with destination.begin() as write:
                    rows = {table.name: _copy_table(read, write, table)
                            for table in metadata.sorted_tables}  # fmt: skip
                    if destination.dialect.name == "postgresql":
                        _advance_sequences(write)
                _compare_counts(destination, destination_url, rows)
            except SQLAlchemyError as exc:
                raise common.store_failure(destination_url, "take the copied rows", exc) from exc
    finally:
        source.dispose()
        destination.dispose()
    return Copied(mask_url(source_url), mask_url(destination_url), rows)


@contextmanager
def _snapshot(source: sa.Engine, url: str) -> Iterator[sa.Connection]:
    """One read transaction over the whole copy, so it is one moment of the store: on SQLite
    it holds the write lock (commands wait for the copy rather than write past it), on
    PostgreSQL it is a repeatable-read snapshot. A failure to read is the source's."""
    try:
        with source.connect() as read:
            if source.dialect.name == "postgresql":
                read = read.execution_options(isolation_level="REPEATABLE READ")
            with read.begin():
                yield read
    except SQLAlchemyError as exc:
        raise common.store_failure(url, "be read for the copy", exc) from exc


def same_database(one: str, other: str) -> bool:
    """Whether two URLs name the same store: equal, or the same SQLite file however spelt."""
    from lastgood.store.lite import sqlite_location

    if one == other:
        return True
    first, second = sqlite_location(one), sqlite_location(other)
    if first is None or second is None or first.uri or second.uri:
        return False
    return os.path.realpath(first.database) == os.path.realpath(second.database)


def refuse_unless_empty(url: str) -> None:
    """RefusedError when the database at ``url`` holds any table at all (another store, an
    older release's, or something else entirely): a copy goes into a new, empty database."""
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            tables = sorted(sa.inspect(db).get_table_names())
    except SQLAlchemyError as exc:
        raise common.store_failure(url, "be opened for the copy", exc) from exc
    finally:
        engine.dispose()
    if tables and not _empty_store(url, tables):
        shown = ", ".join(tables[:6]) + (f" and {len(tables) - 6} more" if len(tables) > 6 else "")
        raise RefusedError(
            f"store {mask_url(url)} is not empty (it holds {shown}): refusing to copy into it",
            hint="copy into a new, empty database; nothing was written",
        )


def _empty_store(url: str, tables: list[str]) -> bool:
    """Whether the tables are exactly an empty store of this release: what an interrupted
    copy leaves behind (the schema is created before the copy's one transaction)."""
    from lastgood.store.schema import HEAD

    if set(tables) != {table.name for table in metadata.sorted_tables} | {"alembic_version"}:
        return False
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            revision = db.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            counts = [db.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                      for table in metadata.sorted_tables]  # fmt: skip
    finally:
        engine.dispose()
    return revision == HEAD and not any(counts)


def _refuse_non_empty(destination: sa.Engine, url: str) -> None:
    with destination.connect() as db:
        busy = [table.name for table in metadata.sorted_tables
                if db.execute(sa.select(sa.func.count()).select_from(table)).scalar()]  # fmt: skip
    if busy:
        raise RefusedError(
            f"store {mask_url(url)} is not empty (it holds {', '.join(busy)}): "
            "refusing to copy into it",
            hint="copy into a new, empty database; nothing was written",
        )


def _copy_table(read: sa.Connection, write: sa.Connection, table: sa.Table) -> int:
    """Copy ``table`` in primary-key order, :data:`BATCH` rows at a time; returns how many."""
    key = list(table.primary_key.columns)
    count = 0
    query = sa.select(table).order_by(*key)
    result = read.execution_options(yield_per=BATCH).execute(query)
    for batch in result.partitions(BATCH):
        write.execute(table.insert(), [dict(row._mapping) for row in batch])
        count += len(batch)
    return count


def _advance_sequences(write: sa.Connection) -> None:
    """Move every numbering sequence (``id``, a request's ``number``) past the highest copied
    value."""
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True:
                write.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                    f"coalesce((SELECT max({column.name}) FROM {table.name}), 0) + 1, false)"
                ))  # fmt: skip


def _compare_counts(destination: sa.Engine, url: str, rows: dict[str, int]) -> None:
    with destination.connect() as db:
        for table in metadata.sorted_tables:
            found = db.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            if found != rows[table.name]:
                raise StoreError(
                    f"the copy in {mask_url(url)} holds {found} rows of {table.name}, "
                    f"not {rows[table.name]}",
                    hint="copy again into a new, empty database",
                )
