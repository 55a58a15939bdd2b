"""``audit verify`` and ``audit export``: proving the audit chain whole, and handing it on.

The chain itself is written by the store (:mod:`lastgood.store.audit`); its layout is
:mod:`lastgood.store.chain`. Verifying rehashes every link in seq order and names the first
that does not hold: a row *edited*, rows *missing* (deleted), rows *out of order*. A table
that is internally sound may still have been cut short, or cut short and grown again: so the
chain is also held against every head kept outside it (each environment's target, and any
export given with ``--head``); a head beyond the table's end means *truncated*, a head whose
hash the table disagrees with means *rewritten*.

The chain proving itself whole says nothing of the tables it records, so verifying also holds
every row of the chained tables against the newest link recorded for it
(:mod:`lastgood.store.chain_rows`): a row *not in the audit chain* (inserted behind the store's
back), *changed after it was chained*, or *deleted after it was chained* is named with its
table and key.

An export is JSON lines, one link each, oldest first, and a last line ``{"head": …}``. Read
back with ``--head``, every line of it is a witness: each exported link must still be in the
table with the same hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from lastgood.errors import LastgoodError, UsageError
from lastgood.project import Project
from lastgood.record import Record, as_dict
from lastgood.refs import LARGEST_SEQ
from lastgood.rows import AuditEntry, AuditHead
from lastgood.store import chain
from lastgood.store.chain_rows import RowCheck, RowProblem
from lastgood.store.chain_walk import REWRITTEN, TRUNCATED, Break, ChainWalk
from lastgood.targets.base import AuditHeads


class AuditReport(Record):
    """What ``audit verify`` found: how much was checked, against which heads, what is broken."""

    entries: int
    head: AuditHead | None  # the table's newest link
    witnesses: tuple[AuditHeads, ...]  # heads kept outside the table that were compared
    problems: tuple[Break, ...]  # by seq; the first is the first broken link
    notes: tuple[str, ...]  # heads that could not be read, targets that keep none
    rows: tuple[RowProblem, ...] = ()  # rows that disagree with the chain (the first 100)
    rows_checked: int = 0  # rows of the chained tables held against the chain
    rows_unshown: int = 0  # more rows that disagree, past those named

    @property
    def sound(self) -> bool:
        return not self.problems and not self.rows and not self.rows_unshown

    @property
    def first_break(self) -> Break | None:
        return self.problems[0] if self.problems else None

    def to_json(self) -> dict[str, Any]:
        return {
            "sound": self.sound,
            "entries": self.entries,
            "head": None if self.head is None else as_dict(self.head),
            "first_break": None if self.first_break is None else self.first_break.to_json(),
            "problems": [problem.to_json() for problem in self.problems],
            "heads": [{"where": each.where, **as_dict(each.heads[0])} for each in self.witnesses],
            "notes": list(self.notes),
            "rows_checked": self.rows_checked,
            "rows": [problem.to_json() for problem in self.rows],
            "rows_unshown": self.rows_unshown,
        }


def verify_audit(project: Project, *, head_files: Sequence[Path] = ()) -> AuditReport:
    """Rehash the whole chain, hold it against every head kept outside the table (each
    environment's target's and each of ``head_files``: exports, or a target's head file), and
    hold every row of the chained tables against it, all from one moment of the store. Reads
    only. UsageError for a head file that cannot be read."""
    witnesses = [read_head_file(path) for path in head_files]
    notes: list[str] = []
    witnesses += _target_heads(project, notes)
    walk = ChainWalk(wanted=frozenset(head.seq for each in witnesses for head in each.heads))
    rows = RowCheck()
    head = project.store.walk_audit(walk.feed, rows=rows)
    problems = [found for found in (walk.first_break(),) if found is not None]
    problems += [found for each in witnesses if (found := _held_against(walk, each)) is not None]
    return AuditReport(walk.count, head, tuple(witnesses),
                       tuple(sorted(problems, key=lambda p: p.seq)), tuple(notes),
                       tuple(rows.problems), sum(rows.checked.values()),
                       rows.unshown)  # fmt: skip


def _target_heads(project: Project, notes: list[str]) -> list[AuditHeads]:
    """The heads every environment's target keeps; what cannot be read becomes a note."""
    found = []
    for env in project.config.environments:
        try:
            heads = project.target(env).audit_head()
        except (LastgoodError, OSError) as exc:
            notes.append(f"the audit head on {env}'s target could not be read: {exc}")
            continue
        if heads is None:
            notes.append(f"{env}'s target keeps no audit head (yet)")
        else:
            found.append(heads)
    return found


def _held_against(walk: ChainWalk, witness: AuditHeads) -> Break | None:
    """Truncated when the witness's newest head lies past the table's end; rewritten when the
    table holds a different hash at a seq the witness kept (the earliest such seq)."""
    newest = witness.heads[0]
    if newest.seq > walk.last_seq:
        end = walk.last_seq
        lost = (f"seq {end + 1} was" if newest.seq == end + 1
                else f"seq {end + 1} to {newest.seq} were")  # fmt: skip
        return Break(end + 1, TRUNCATED, f"the table ends at seq {end}, but "
                     f"{witness.where} holds seq {newest.seq}: {lost} cut off")  # fmt: skip
    differing = sorted(head.seq for head in witness.heads
                       if walk.hashes.get(head.seq, head.hash) != head.hash)  # fmt: skip
    if not differing:
        return None
    seq = differing[0]
    return Break(seq, REWRITTEN, f"seq {seq} has another hash in the table than in "
                 f"{witness.where}: the chain was rewritten from seq {seq} or before")  # fmt: skip


def read_head_file(path: Path) -> AuditHeads:
    """The heads in an export (its head line, then every link it holds, newest first) or in a
    target's ``audit-head.json``. UsageError naming the file when it holds neither."""
    heads: list[AuditHead] = []
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    heads.extend(_heads_of_line(json.loads(line), path, number))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _bad_head_file(path, str(exc)) from exc
    if not heads:
        raise _bad_head_file(
            path, "it holds no audit head (an empty chain's export proves nothing)"
        )
    newest_first = sorted(set(heads), key=lambda head: head.seq, reverse=True)
    return AuditHeads(tuple(newest_first), str(path))


def _heads_of_line(data: Any, path: Path, number: int) -> list[AuditHead]:
    """An export's link or head line, or a target head file's one line, as heads."""
    if isinstance(data, dict):
        try:
            if "heads" in data:
                return [AuditHead(int(h["seq"]), str(h["hash"])) for h in data["heads"]]
            if "head" in data:
                head = data["head"]
                return [] if head is None else [AuditHead(int(head["seq"]), str(head["hash"]))]
            return [AuditHead(int(data["seq"]), str(data["hash"]))]
        except (TypeError, KeyError, ValueError):
            pass
    raise _bad_head_file(path, f"line {number} is neither an audit link nor a head")


def _bad_head_file(path: Path, why: str) -> UsageError:
    return UsageError(
        f"cannot use {path} as an audit head: {why}",
        hint="give a file written by 'lastgood audit export', or a target's meta/audit-head.json",
    )


class Exported(Record):
    """What ``audit export`` wrote: how many links, and the head it ended with."""

    entries: int
    head: AuditHead | None


def export_audit(project: Project, out: IO[str], *, since: int = 1) -> Exported:
    """Write the links from seq ``since`` on to ``out`` as JSON lines, oldest first, and then
    the chain's head as ``{"head": {"hash": …, "seq": …}}`` (``null`` while it is empty), all
    from one moment of the store. Reads the store; writes only ``out``."""
    if since < 1:
        raise UsageError(f"--since {since} is not a seq: the chain starts at 1")
    if since > LARGEST_SEQ:  # SQLite cannot even compare with a number past 64 bits
        raise UsageError(f"--since {since} is not a seq: a seq is at most {LARGEST_SEQ}",
                         hint="'lastgood audit verify' says where the chain's head is")  # fmt: skip
    count = 0

    def write(batch: Iterable[AuditEntry]) -> None:
        nonlocal count
        for entry in batch:
            out.write(chain.canonical_json(as_dict(entry)) + "\n")
            count += 1

    head = project.store.walk_audit(write, since=since)
    out.write(chain.canonical_json({"head": None if head is None else as_dict(head)}) + "\n")
    return Exported(count, head)
