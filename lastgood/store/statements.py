"""Tiny SQL builders for the store, driven by the record classes; no driver involved.

Statements are text with ``:name`` parameters, which both stdlib ``sqlite3`` and SQLAlchemy's
``text()`` bind, so the store's SQL is written once for both connection layers. Column lists
come from the fields of the frozen records in :mod:`lastgood.rows`, whose names and order
match the tables in :mod:`lastgood.store.tables` (a test pins that), so a row becomes a record
with ``Record(*row)`` and no mapping layer. Table and column names are always ours: values
travel as parameters, and keyword-argument keys are checked against the table's columns before
they get anywhere near a statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lastgood.record import fields_of

Statement = tuple[str, dict[str, Any]]


def columns_of(record: type[Any]) -> tuple[str, ...]:
    """The column names a record class maps to, in table order."""
    return fields_of(record)


def row_of(record: Any, columns: Sequence[str]) -> dict[str, Any]:
    """A record's values as parameters named after its columns."""
    return {column: getattr(record, column) for column in columns}


def select(
    table: str,
    columns: Sequence[str],
    where: Mapping[str, Any],
    *,
    order: str | None = None,
    limit: int | None = None,
    at_least: tuple[str, float | None] = ("", None),
) -> Statement:
    """``SELECT columns FROM table`` with equality filters, a lower bound, order and limit.

    ``where`` entries whose value is None are left out: they mean "any", which is what the
    optional filters of the store's public methods (``env=None``, ``status=None``) ask for.
    ``at_least`` is a (column, bound) pair: only rows with ``column >= bound`` (none: all).
    """
    filters = {column: value for column, value in where.items() if value is not None}
    params = {f"w_{column}": value for column, value in filters.items()}
    conditions = [f"{column} = :w_{column}" for column in checked(table, columns, filters)]
    bound_column, bound = at_least
    if bound is not None:
        conditions.append(f"{checked(table, columns, [bound_column])[0]} >= :bound")
        params["bound"] = bound
    sql = f"SELECT {', '.join(columns)} FROM {table}"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if order is not None:
        sql += f" ORDER BY {order}"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    return sql, params


def insert(table: str, names: Iterable[str], *, returning: str | None = None) -> str:
    """``INSERT INTO table (names) VALUES (:names)``, optionally returning one column."""
    names = list(names)
    sql = (
        f"INSERT INTO {table} ({', '.join(names)}) "
        f"VALUES ({', '.join(':' + name for name in names)})"
    )
    return sql + (f" RETURNING {returning}" if returning else "")


def upsert(table: str, names: Sequence[str], key: Sequence[str]) -> str:
    """Insert, or replace every non-key column of the row with the same ``key``."""
    replaced = [name for name in names if name not in key]
    assignments = ", ".join(f"{name} = excluded.{name}" for name in replaced)
    return f"{insert(table, names)} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {assignments}"


def upsert_newer(
    table: str, names: Sequence[str], key: Sequence[str], *, newer: str | None, earliest: str
) -> str:
    """Insert, or update the row with the same ``key`` where the new one is at least as recent
    by column ``newer`` (None: always); keep the earlier of the two ``earliest`` values (NULL
    counts as the earliest: a value from before the column was kept), whichever row is newer.

    For rows that several writers flush in any order (servers flushing their consumers): an
    older report landing last must not undo a newer one."""
    is_newer = f"excluded.{newer} >= {table}.{newer}"
    assignments = [
        f"{name} = excluded.{name}"
        if newer is None
        else f"{name} = CASE WHEN {is_newer} THEN excluded.{name} ELSE {table}.{name} END"
        for name in names
        if name not in key and name != earliest
    ]
    old, new = f"{table}.{earliest}", f"excluded.{earliest}"
    assignments.append(
        f"{earliest} = CASE WHEN {old} IS NULL OR {new} IS NULL THEN NULL "
        f"WHEN {new} < {old} THEN {new} ELSE {old} END"
    )
    return f"{insert(table, names)} ON CONFLICT ({', '.join(key)}) DO UPDATE SET " + ", ".join(
        assignments
    )


def update(
    table: str, columns: Sequence[str], changes: Mapping[str, Any], key: Mapping[str, Any]
) -> Statement:
    """``UPDATE table SET changes WHERE key``."""
    names = checked(table, columns, changes)
    assignments = ", ".join(f"{name} = :set_{name}" for name in names)
    condition = " AND ".join(f"{name} = :key_{name}" for name in key)
    params = {f"set_{name}": changes[name] for name in names}
    params.update({f"key_{name}": value for name, value in key.items()})
    return f"UPDATE {table} SET {assignments} WHERE {condition}", params


def among(prefix: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``(:p0, :p1, …)`` and its parameters, for ``column IN (…)`` on either driver."""
    params = {f"{prefix}{index}": value for index, value in enumerate(values)}
    return "(" + ", ".join(":" + name for name in params) + ")", params


class UnknownColumnError(ValueError):
    """A write named a column its table does not have; the connection layers report it as the
    store failing what it was doing, like any error the database itself would give."""


def checked(table: str, columns: Sequence[str], names: Iterable[str]) -> list[str]:
    """``names`` when every one is a column of ``table``; otherwise UnknownColumnError."""
    names = list(names)
    unknown = sorted(set(names) - set(columns))
    if unknown:
        raise UnknownColumnError(f"table {table} has no column named {', '.join(unknown)}")
    return names
