"""The audit chain's arithmetic, free of any database: how an entry becomes bytes, how the links
hash, and how a chain read in order is checked. ``docs/audit.md`` states the same layout for
anyone who checks an export with their own tools.

An entry's bytes are the canonical JSON of ``{"actor", "at", "data", "kind", "seq",
"subject"}``: keys sorted, no whitespace (separators ``,`` and ``:``), non-ASCII escaped as
``\\uXXXX`` (so the bytes are ASCII), ``at`` a JSON number written as Python writes a float (the
shortest text that reads back to the same double), ``data`` a JSON string holding the canonical
JSON of the row as written. A link's hash is ``SHA-256(previous ‖ entry)``, where ``previous``
is the 32 raw bytes of the link before (32 zero bytes for seq 1), stored as lowercase hex.

Why the previous hash goes first: every link then commits to the whole chain before it, so an
edit anywhere changes every hash after it, and a copy of the newest hash kept elsewhere (a
target, an export) catches a table that was cut short or rewritten from some row on.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from lastgood.record import Record, field
from lastgood.rows import AuditEntry

GENESIS = bytes(32)
"""What seq 1 chains to: no link before it."""

WINDOW = 32
"""How many links either side of a broken one are searched for where its entry was written:
a reordering found there is named "out of order" rather than "edited"."""

EDITED = "edited"
MISSING = "missing"
OUT_OF_ORDER = "out-of-order"
TRUNCATED = "truncated"
REWRITTEN = "rewritten"


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no whitespace, ASCII only; anything JSON
    cannot hold (a path, a time) is written as its string."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def entry_bytes(seq: int, at: float, kind: str, subject: str, actor: str, data: str) -> bytes:
    """The bytes a link's hash covers, besides the previous hash (see the module docstring)."""
    entry = {"actor": actor, "at": float(at), "data": data, "kind": kind, "seq": int(seq),
             "subject": subject}  # fmt: skip
    return canonical_json(entry).encode("ascii")


def link_hash(previous: str | None, entry: bytes) -> str:
    """``SHA-256(previous ‖ entry)`` as hex; ``previous`` None for the first link."""
    start = GENESIS if previous is None else bytes.fromhex(previous)
    return hashlib.sha256(start + entry).hexdigest()


def new_link(
    previous: str | None, seq: int, at: float, kind: str, subject: str, actor: str, data: str
) -> AuditEntry:
    """The link that follows ``previous`` (None: the first), its hash computed."""
    entry = entry_bytes(seq, at, kind, subject, actor, data)
    return AuditEntry(seq, at, kind, subject, actor, data, link_hash(previous, entry))


def entry_of(entry: AuditEntry, *, seq: int | None = None) -> bytes:
    """The bytes of a stored ``entry``, or of the same entry written as seq ``seq``."""
    return entry_bytes(entry.seq if seq is None else seq, entry.at, entry.kind, entry.subject,
                       entry.actor, entry.data)  # fmt: skip


def row_data(row: Mapping[str, Any], *, leave_out: Iterable[str] = ()) -> str:
    """The canonical JSON of a row as written, without the columns ``leave_out`` (a secret's
    hash has no place in an export)."""
    skipped = set(leave_out)
    return canonical_json({key: value for key, value in row.items() if key not in skipped})


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
