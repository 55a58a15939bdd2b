"""Checking an audit chain read in seq order, keeping only a small window in memory, and naming
the first broken link: *edited*, *missing* or *out of order* (heads kept outside the table add
*truncated* and *rewritten*, see :mod:`lastgood.operations.audit`). Free of any database.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from lastgood.record import Record, field
from lastgood.rows import AuditEntry
from lastgood.store.chain import entry_of, link_hash

WINDOW = 32
"""How many links either side of a broken one are searched for where its entry was written:
a reordering found there is named "out of order" rather than "edited"."""

EDITED = "edited"
MISSING = "missing"
OUT_OF_ORDER = "out-of-order"
TRUNCATED = "truncated"
REWRITTEN = "rewritten"


class Break(Record):
    """A broken link: the seq where the chain stops holding, and what is wrong there."""

    seq: int
    problem: str  # edited, missing, out-of-order, truncated, rewritten
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "problem": self.problem, "detail": self.detail}


class ChainWalk(Record, frozen=False):
    """Checks links fed in seq order, keeping only a small window in memory.

    Up to the first broken link every link is rehashed; past it only the table's extent and
    the hashes at ``wanted`` seqs (those that heads kept elsewhere name) are noted, plus a
    window of links to tell a reordering from an edit.
    """

    wanted: frozenset[int] = frozenset()
    count: int = 0
    last_seq: int = 0
    verified: int = 0
    previous: str | None = None
    hashes: dict[int, str] = field(default_factory=dict)
    broken: Break | None = None
    suspect: AuditEntry | None = None
    before: deque[AuditEntry] = field(default_factory=lambda: deque(maxlen=WINDOW))
    after: list[AuditEntry] = field(default_factory=list)

    def feed(self, entries: Iterable[AuditEntry]) -> None:
        """Take the next links, in seq order."""
        for entry in entries:
            self.count += 1
            self.last_seq = entry.seq
            if entry.seq in self.wanted:
                self.hashes[entry.seq] = entry.hash
            if self.broken is None and self.suspect is None:
                self._check(entry)
            elif self.suspect is not None and len(self.after) < WINDOW:
                self.after.append(entry)

    def _check(self, entry: AuditEntry) -> None:
        expected = self.verified + 1
        if entry.seq != expected:
            gone = str(expected) if entry.seq == expected + 1 else f"{expected} to {entry.seq - 1}"
            self.broken = Break(expected, MISSING, f"seq {gone} missing: the chain goes from seq "
                                f"{self.verified} to seq {entry.seq} (rows deleted)")  # fmt: skip
        elif link_hash(self.previous, entry_of(entry)) != entry.hash:
            self.suspect = entry
        else:
            self.verified, self.previous = entry.seq, entry.hash
            self.before.append(entry)

    def first_break(self) -> Break | None:
        """The first broken link in the table itself (heads aside), named."""
        if self.broken is None and self.suspect is not None:
            self.broken = _name_mismatch(self.suspect, [*self.before, *self.after])
        return self.broken


def _name_mismatch(suspect: AuditEntry, around: list[AuditEntry]) -> Break:
    """Out of order when the entry at this seq hashes right as another seq after one of the
    links nearby (it was written elsewhere in the chain); edited otherwise."""
    seq = suspect.seq
    previous: list[str | None] = [None, *(entry.hash for entry in around)]
    for written_as in range(max(1, seq - WINDOW), seq + WINDOW + 1):
        if written_as == seq:
            continue
        entry = entry_of(suspect, seq=written_as)
        if any(link_hash(before, entry) == suspect.hash for before in previous):
            return Break(seq, OUT_OF_ORDER, f"seq {seq} holds the entry written as seq "
                         f"{written_as} ({suspect.kind} {suspect.subject}): rows were "
                         "reordered")  # fmt: skip
    return Break(seq, EDITED, f"seq {seq} ({suspect.kind} {suspect.subject}) no longer hashes "
                 "to its stored hash: its at, kind, subject, actor, data or hash was "
                 "changed")  # fmt: skip
