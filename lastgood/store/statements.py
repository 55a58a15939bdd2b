"""Tiny qmark-style SQL builders for :mod:`lastgood.store.lite`, driven by the record classes.

Column lists come from the fields of the frozen records in :mod:`lastgood.records`, whose
names and order match the tables in :mod:`lastgood.store.tables` (a test pins that), so a
row becomes a record with ``Record(*row)`` and no mapping layer. Table and column names are
always ours: values travel as parameters, and keyword-argument keys are checked against the
table's columns before they get anywhere near a statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from lastgood.record import fields_of

RecordT = TypeVar("RecordT")


def columns_of(record: type[Any]) -> tuple[str, ...]:
    """The column names a record class maps to, in table order."""
    return fields_of(record)


def values_of(record: Any, columns: Sequence[str]) -> tuple[Any, ...]:
    return tuple(getattr(record, column) for column in columns)


def select(
    db: sqlite3.Connection,
    record: type[RecordT],
    table: str,
    where: Mapping[str, Any],
    *,
    order: str | None = None,
    limit: int | None = None,
    at_least: tuple[str, float | None] = ("", None),
) -> list[RecordT]:
    """Rows of ``table`` as ``record`` instances.

    ``where`` entries whose value is None are left out: they mean "any", which is what the
    optional filters of the store's public methods (``env=None``, ``status=None``) ask for.
    ``at_least`` is a (column, bound) pair: only rows with ``column >= bound`` (none: all).
    """
    filters = {column: value for column, value in where.items() if value is not None}
    columns = columns_of(record)
    sql = f"SELECT {', '.join(columns)} FROM {table}"
    conditions = [f"{column} = ?" for column in checked(table, columns, filters)]
    params = list(filters.values())
    bound_column, bound = at_least
    if bound is not None:
        conditions.append(f"{checked(table, columns, [bound_column])[0]} >= ?")
        params.append(bound)
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if order is not None:
        sql += f" ORDER BY {order}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [record(*row) for row in db.execute(sql, params)]


def insert_many(
    db: sqlite3.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert ``rows`` (value tuples in ``columns`` order) with one prepared statement."""
    marks = ", ".join("?" for _ in columns)
    db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def insert_row(
    db: sqlite3.Connection, table: str, columns: Sequence[str], row: Mapping[str, Any]
) -> int:
    """Insert one row given as column → value; returns its rowid (the new id, if any)."""
    names = checked(table, columns, row)
    marks = ", ".join("?" for _ in names)
    cursor = db.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", [row[n] for n in names]
    )
    new_id = cursor.lastrowid
    cursor.close()
    return int(new_id or 0)


def update(
    db: sqlite3.Connection,
    table: str,
    columns: Sequence[str],
    changes: Mapping[str, Any],
    key: Mapping[str, Any],
) -> int:
    """``UPDATE table SET changes WHERE key``; returns how many rows matched."""
    names = checked(table, columns, changes)
    assignments = ", ".join(f"{name} = ?" for name in names)
    condition = " AND ".join(f"{name} = ?" for name in key)
    cursor = db.execute(
        f"UPDATE {table} SET {assignments} WHERE {condition}",
        [changes[name] for name in names] + list(key.values()),
    )
    count = cursor.rowcount
    cursor.close()
    return count


def checked(table: str, columns: Sequence[str], names: Iterable[str]) -> list[str]:
    """``names`` when every one is a column of ``table``; otherwise the error SQLite would give,
    which the store wraps into a StoreError like any other."""
    names = list(names)
    unknown = sorted(set(names) - set(columns))
    if unknown:
        raise sqlite3.OperationalError(f"table {table} has no column named {', '.join(unknown)}")
    return names
