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

Checking a chain is :mod:`lastgood.store.chain_walk`, kept apart so that writing a link (on
every rollback) imports only this.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from lastgood.rows import AuditEntry

GENESIS = bytes(32)
"""What seq 1 chains to: no link before it."""


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no whitespace, ASCII only; anything JSON
    cannot hold (a path, a time) is written as its string."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def entry_bytes(
    seq: int, at: float, kind: str, subject: str, actor: str, data: str, **_: Any
) -> bytes:
    """The bytes a link's hash covers, besides the previous hash (see the module docstring);
    anything else given (a link's stored ``hash``) is not part of them."""
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


def digest(value: str) -> str:
    """SHA-256 of ``value`` as hex: what a link keeps of an API token's secret hash instead of
    the hash itself (``token_hash_digest``), so a hash swapped in the table is caught while the
    chain, and every export, holds nothing that signs anyone in or tests a guessed secret any
    faster than the hash would."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def row_data(row: Mapping[str, Any], *, leave_out: Iterable[str] = ()) -> str:
    """The canonical JSON of a row as written, without the columns ``leave_out`` (a secret's
    hash has no place in an export)."""
    skipped = set(leave_out)
    return canonical_json({key: value for key, value in row.items() if key not in skipped})


CHAINED_EVENTS = frozenset({"lease-broken", "lease-taken-over", "pruned"})
"""Event kinds that record an override or a loss of history, chained besides the rows: a lease
broken with --force, a lease taken over from a dead process, versions pruned. A new kind of
override (a freeze passed in an emergency, say) belongs here too."""
