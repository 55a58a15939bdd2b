"""Holding the chained tables against the audit chain: every row of ``deployments``,
``change_requests``, ``request_entries`` and ``api_tokens``, and every event of a chained kind,
must agree with the newest link recorded for it. Free of any database: the store feeds rows and
links in key order (:meth:`lastgood.store.audit.AuditStore.walk_audit`), and only one key's
rows and links (one request's timeline at most) are held at a time.

Why: the chain proves itself whole, but a row inserted or edited in a chained table behind the
store's back (an approval forged into ``request_entries``, a ledger record's outcome changed)
leaves the chain as it was. Each row is named when no link records it (*not in the audit
chain*), when it no longer holds what its newest link recorded (*changed after it was
chained*), or when a link records a row that is gone (*deleted after it was chained*).

What is compared: every column the newest link holds, as JSON values (so SQLite's ``1`` and
PostgreSQL's ``true`` for a boolean agree, and a store copied from one to the other still
verifies), except columns that change, or are kept, without a link:

- ``change_requests.updated_at`` moves whenever an entry is added to the request's timeline;
  that entry is chained as its own link (``request-entry``, with its time), and chaining the
  whole request again for each entry would double those links for a time stamp;
- ``api_tokens.token_hash`` is never chained (exports travel; a secret's hash has no business
  in them): its SHA-256 is (``token_hash_digest``), and that is compared instead, so a hash
  swapped in place (someone's secret made to open an admin token) is caught. A token link
  written before links held the digest is compared without it.

Events are chained as written, before the database numbers them, so their links hold no id:
the events of a chained kind are matched with those links by content, one row for one link
(the only part held whole in memory: such events, overrides, are few).

Rows from before the chain (a store upgraded to schema 0007 with history) are not chained: the
chain's first link, ``chain-started``, says how many rows each table held then (``rows_before``)
and, since that migration records it, the newest key of each (``last_before``). Rows up to
that key may stand without a link, and must still number ``rows_before``. A chain started by an
earlier build of 0007 holds the counts only: then the ``rows_before`` lowest keys are the old
rows (keys only grow, and these tables never lose rows), and events older than the first link.
An old row changed through lastgood since is chained then, and checked like any other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from itertools import groupby
from typing import Any

from lastgood.record import Record, field
from lastgood.rows import ApiToken, ChangeRequest, Deployment, EventRecord, RequestEntry
from lastgood.store.chain import canonical_json, digest
from lastgood.store.statements import columns_of

NOT_CHAINED = "not-chained"
CHANGED = "changed"
DELETED = "deleted"
SHOWN = 100
"""Problems named one by one; past that they are only counted (a table filled behind the
store's back should not fill the report, or memory)."""

Row = tuple[Any, ...]
Link = tuple[int, str, str]  # seq, subject, data
_MISSING = object()
_NUMBER = re.compile(r"0|[1-9][0-9]*")


class ChainedTable(Record):
    """A table whose every row is chained: its links' kinds and subject, and how a row is found
    among them (``group`` is the column the subject numbers, ``key`` the row's own)."""

    name: str
    columns: tuple[str, ...]
    key: str
    group: str
    subject: str
    kinds: tuple[str, ...]
    ignored: frozenset[str] = frozenset()  # columns never compared (see the module docstring)
    digested: tuple[str, ...] = ()  # compared as ``COLUMN_digest`` (see chain.digest)

    def subject_number(self, subject: str) -> int | None:
        """The number in ``subject:N``, or None for anything else (no link of lastgood's)."""
        prefix, _, number = subject.partition(":")
        return int(number) if prefix == self.subject and _NUMBER.fullmatch(number) else None


CHAINED_TABLES = (
    ChainedTable("deployments", columns_of(Deployment), "id", "id", "deployment",
                 ("deployment-opened", "deployment-updated")),
    ChainedTable("change_requests", columns_of(ChangeRequest), "number", "number", "request",
                 ("request-opened", "request-updated"), frozenset({"updated_at"})),
    ChainedTable("request_entries", columns_of(RequestEntry), "id", "request", "request",
                 ("request-entry",)),
    ChainedTable("api_tokens", columns_of(ApiToken), "id", "id", "token",
                 ("token-created", "token-revoked"), frozenset({"token_hash"}), ("token_hash",)),
)  # fmt: skip
"""The chained tables, as :mod:`lastgood.store.ledger`, :mod:`~lastgood.store.requests` and
:mod:`~lastgood.store.access` chain them."""

EVENT_COLUMNS = columns_of(EventRecord)


class ChainStart(Record):
    """What a ``chain-started`` first link says about the rows written before the chain."""

    at: float
    rows_before: dict[str, int]
    last_before: dict[str, int] | None  # None: an earlier build of 0007 recorded counts only


def chain_start(first: Row | None) -> ChainStart | None:
    """The chain's start from its first link (``at``, ``kind``, ``data``), or None when the
    chain did not start on an upgraded store (nothing may then stand without a link)."""
    if first is None or first[1] != "chain-started":
        return None
    try:
        data = json.loads(first[2])
        counts = {str(name): int(count) for name, count in data["rows_before"].items()}
        last = data.get("last_before")
        keys = None if last is None else {str(name): int(key) for name, key in last.items()}
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    return ChainStart(float(first[0]), counts, keys)


class PreChain(Record):
    """The rows of one table from before the chain: keys up to ``last``, ``count`` of them."""

    last: int
    count: int


class RowProblem(Record):
    """A row that disagrees with the chain: which (its table, key column and key), what is
    wrong, and its newest link if any. ``key`` is None for a problem with the table's rows
    from before the chain as a whole, or an event whose link has no row."""

    table: str
    column: str
    key: int | None
    problem: str  # not-chained, changed, deleted
    detail: str
    seq: int | None = None

    def describe(self) -> str:
        """The row and what is wrong with it, in one line."""
        where = self.table if self.key is None else f"{self.table} {self.column} {self.key}"
        return f"{where}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "column": self.column, "key": self.key,
                "problem": self.problem, "detail": self.detail, "seq": self.seq}  # fmt: skip


class RowCheck(Record, frozen=False):
    """Rows held against their newest links, table by table; keeps the first :data:`SHOWN`
    problems and counts the rest."""

    checked: dict[str, int] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)
    unshown: int = 0

    @property
    def sound(self) -> bool:
        return not self.problems and not self.unshown

    def note(self, problem: RowProblem) -> None:
        if len(self.problems) < SHOWN:
            self.problems.append(problem)
        else:
            self.unshown += 1

    def _count(self, table: str) -> None:
        self.checked[table] = self.checked.get(table, 0) + 1

    def table(
        self, table: ChainedTable, rows: Iterable[Row], links: Iterable[Link],
        pre_chain: PreChain | None,
    ) -> None:  # fmt: skip
        """Check every row of ``table`` (ordered by group, then key) against ``links`` (its
        kinds, ordered by subject number, then seq). Rows up to ``pre_chain.last`` may have
        no link, and must number ``pre_chain.count``."""
        old = 0
        for group, group_rows, group_links in _merged(table, rows, links):
            newest = _newest(table, group, group_links)
            for row in group_rows:
                values = dict(zip(table.columns, row, strict=True))
                key = values[table.key]
                self._count(table.name)
                if pre_chain is not None and key <= pre_chain.last:
                    old += 1
                self._row(table, key, values, newest.pop(key, None), pre_chain)
            for key, (seq, _data) in newest.items():
                gone = f"deleted after it was chained (its newest link is seq {seq})"
                self.note(RowProblem(table.name, table.key, key, DELETED, gone, seq))
        if pre_chain is not None and old != pre_chain.count:
            self.note(_old_rows(table, pre_chain, old))

    def _row(
        self, table: ChainedTable, key: Any, values: dict[str, Any],
        link: tuple[int, str] | None, pre_chain: PreChain | None,
    ) -> None:  # fmt: skip
        if link is None:
            if pre_chain is None or key > pre_chain.last:
                why = "not in the audit chain: no link records it (written behind the store's back)"
                self.note(RowProblem(table.name, table.key, key, NOT_CHAINED, why))
            return
        seq, text = link
        written = canonical_json(values)
        if written == text:
            return  # as chained, byte for byte: the common case, without parsing either
        data = _parsed(text)
        plain = _comparable(table, written, values, data)
        changed = sorted(name for name in (set(plain) | set(data)) - table.ignored
                         if plain.get(name, _MISSING) != data.get(name, _MISSING))  # fmt: skip
        if changed:
            why = "changed after it was chained: " + _show_changes(changed, plain, data, seq)
            self.note(RowProblem(table.name, table.key, key, CHANGED, why, seq))

    def events(
        self, rows: Iterable[Row], links: Iterable[Link], *, last: int | None,
        before: float | None,
    ) -> None:  # fmt: skip
        """Match the events of a chained kind with their links by content, one for one.
        Events up to id ``last``, or older than ``before``, are from before the chain."""
        waiting: dict[str, list[int]] = {}
        for seq, _subject, data in links:
            waiting.setdefault(_canonical(data), []).append(seq)
        for row in rows:
            values = dict(zip(EVENT_COLUMNS, row, strict=True))
            event_id = values.pop("id")
            self._count("events")
            seqs = waiting.get(canonical_json(values))
            if seqs:
                seqs.pop(0)
            elif not ((last is not None and event_id <= last)
                      or (before is not None and values["at"] < before)):  # fmt: skip
                why = (f"not in the audit chain: no link records a {values['kind']} event with "
                       "this content (written or changed behind the store's back)")  # fmt: skip
                self.note(RowProblem("events", "id", event_id, NOT_CHAINED, why))
        for seqs in waiting.values():
            for seq in seqs:
                why = f"the event chained at seq {seq} is gone, or changed after it was chained"
                self.note(RowProblem("events", "id", None, DELETED, why, seq))


def _merged(
    table: ChainedTable, rows: Iterable[Row], links: Iterable[Link]
) -> Iterator[tuple[int, list[Row], list[Link]]]:
    """Rows and links side by side, one group (subject number) at a time, in number order."""
    position = table.columns.index(table.group)
    numbered = ((n, link) for link in links if (n := table.subject_number(link[1])) is not None)
    row_groups = ((g, list(found)) for g, found in groupby(rows, key=lambda r: r[position]))
    link_groups = ((g, [link for _, link in found])
                   for g, found in groupby(numbered, key=lambda pair: pair[0]))  # fmt: skip
    row_next, link_next = next(row_groups, None), next(link_groups, None)
    while row_next is not None or link_next is not None:
        if link_next is None or (row_next is not None and row_next[0] < link_next[0]):
            assert row_next is not None
            yield row_next[0], row_next[1], []
            row_next = next(row_groups, None)
        elif row_next is None or link_next[0] < row_next[0]:
            yield link_next[0], [], link_next[1]
            link_next = next(link_groups, None)
        else:
            yield row_next[0], row_next[1], link_next[1]
            row_next, link_next = next(row_groups, None), next(link_groups, None)


def _newest(table: ChainedTable, group: int, links: list[Link]) -> dict[Any, tuple[int, str]]:
    """Each row's newest link among one group's (in seq order): key → (seq, data). Where the
    subject names the row itself, that is the group's last link, read without parsing."""
    if table.group == table.key:
        return {group: (links[-1][0], links[-1][2])} if links else {}
    newest: dict[Any, tuple[int, str]] = {}
    for seq, _subject, text in links:
        data = _parsed(text)
        if table.key in data:
            newest[data[table.key]] = (seq, text)
    return newest


def _parsed(text: str) -> dict[str, Any]:
    """A link's data as a mapping; {} for anything else (not lastgood's: the walk names it)."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _comparable(
    table: ChainedTable, written: str, values: Mapping[str, Any], data: Mapping[str, Any]
) -> dict[str, Any]:
    """A row (``written``: its canonical JSON) as JSON values, as a link holds it: digests
    for digested columns (when the link has one), so the two compare key by key."""
    plain: dict[str, Any] = json.loads(written)
    for column in table.digested:
        if f"{column}_digest" in data:
            plain[f"{column}_digest"] = digest(str(values[column]))
    return plain


def _show_changes(
    changed: list[str], values: Mapping[str, Any], data: Mapping[str, Any], seq: int
) -> str:
    shown = [f"{name} is {_show(values, name)} here but {_show(data, name)} in link seq {seq}"
             for name in changed[:3]]  # fmt: skip
    more = f" (and {len(changed) - 3} more columns)" if len(changed) > 3 else ""
    return "; ".join(shown) + more


def _show(values: Mapping[str, Any], name: str) -> str:
    if name not in values:
        return "absent"
    text = json.dumps(values[name], default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _canonical(text: str) -> str:
    try:
        return canonical_json(json.loads(text))
    except ValueError:
        return text


def _old_rows(table: ChainedTable, pre_chain: PreChain, found: int) -> RowProblem:
    """The rows from before the chain no longer number what its first link recorded."""
    more = found > pre_chain.count
    how = "added among them" if more else "deleted"
    why = (f"the chain started with {pre_chain.count} rows up to {table.key} "
           f"{pre_chain.last}, but the table holds {found} there: rows were {how} behind the "
           "store's back")  # fmt: skip
    return RowProblem(table.name, table.key, None, NOT_CHAINED if more else DELETED, why)
