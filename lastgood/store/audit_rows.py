"""Reading the chained tables and their links for :class:`~lastgood.store.chain_rows.RowCheck`,
inside the snapshot that ``audit verify`` walks the chain in (see
:meth:`lastgood.store.audit.AuditStore.walk_audit`).

Each table is read as two ordered streams that are merged: its rows by key (the primary key's
index), and its links by subject number then seq (the database sorts them, on disk if it must).
Nothing is loaded whole, so a big store costs time, not memory. Subjects are ordered by length
and then as text, which for ``deployment:N`` is N's order, with no cast that a malformed subject
could make fail.

Imported only by ``audit verify``: writing a link never needs it.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import closing

from lastgood.store import statements
from lastgood.store.chain import CHAINED_EVENTS
from lastgood.store.chain_rows import (
    CHAINED_TABLES,
    EVENT_COLUMNS,
    ChainedTable,
    ChainStart,
    PreChain,
    RowCheck,
    chain_start,
)
from lastgood.store.connection import Row, Session

FIRST_LINK = "SELECT at, kind, data FROM audit_log WHERE seq = 1"


def check_rows(session: Session, check: RowCheck) -> None:
    """Feed ``check`` every chained table and its links, as ``session`` sees them. Reads."""
    start = chain_start(session.one(FIRST_LINK))
    for table in CHAINED_TABLES:
        order = table.key if table.group == table.key else f"{table.group}, {table.key}"
        rows_sql = f"SELECT {', '.join(table.columns)} FROM {table.name} ORDER BY {order}"
        with closing(session.stream(rows_sql)) as rows, _links(session, table.kinds) as links:
            check.table(table, rows, links, _pre_chain(session, table, start))
    kinds, params = statements.among("kind", sorted(CHAINED_EVENTS))
    events_sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE kind IN {kinds} ORDER BY id"
    chained = tuple(f"event-{kind}" for kind in sorted(CHAINED_EVENTS))
    last, before = _pre_chain_events(start)
    with closing(session.stream(events_sql, params)) as rows, _links(session, chained) as links:
        check.events(rows, links, last=last, before=before)


def _links(session: Session, kinds: tuple[str, ...]) -> closing[Generator[Row, None, None]]:
    """The links of ``kinds`` as (seq, subject, data), by subject number, then seq."""
    among, params = statements.among("kind", list(kinds))
    sql = (f"SELECT seq, subject, data FROM audit_log WHERE kind IN {among} "
           "ORDER BY length(subject), subject, seq")  # fmt: skip
    return closing(session.stream(sql, params))


def _pre_chain(session: Session, table: ChainedTable, start: ChainStart | None) -> PreChain | None:
    """Which rows of ``table`` the chain's start says came before it; None: none did."""
    count = 0 if start is None else start.rows_before.get(table.name, 0)
    if start is None or count <= 0:
        return None
    if start.last_before is not None:
        return PreChain(start.last_before.get(table.name, 0), count)
    # counts only (an earlier build of 0007): the oldest rows are the lowest keys
    sql = f"SELECT {table.key} FROM {table.name} ORDER BY {table.key} LIMIT 1 OFFSET :skip"
    found = session.value(sql, {"skip": count - 1})
    if found is None:  # fewer rows than there were: the check counts them short
        found = session.value(f"SELECT max({table.key}) FROM {table.name}")
    return PreChain(0 if found is None else int(found), count)


def _pre_chain_events(start: ChainStart | None) -> tuple[int | None, float | None]:
    """Events from before the chain: up to the id its start recorded or, from a start that
    recorded counts only, those older than it. (None, None): none."""
    if start is None:
        return None, None
    if start.last_before is None:
        return None, start.at
    return start.last_before.get("events"), None
