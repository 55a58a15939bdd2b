"""The audit chain in the store: every ledger record, change request, request entry (approvals
among them), token change and override event is appended to ``audit_log``, hash-chained, in
the same transaction as the write it records (see :mod:`lastgood.store.chain`).

Why in the store and not in the verbs: every path that writes these rows (the CLI, the server,
the watcher, a request apply) goes through these mixins, so none can forget the chain, and a
crash can never leave a write without its link or a link without its write.

Appends are serialised: on SQLite every write transaction already holds the database's write
lock; on PostgreSQL an append takes a transaction-scoped advisory lock
(:meth:`~lastgood.store.connection.Database.lock_audit`) just before reading the chain's tail,
so two writers never both chain to the same link. The lock is taken as late as possible, after
the write it records, and held only until that transaction commits.

After the transaction commits, the newest head of each environment the transaction touched is
handed to :attr:`AuditStore.head_keeper` (the project writes it beside the target's own state),
so a table cut short is caught even by a store that is otherwise self-consistent. A link that
belongs to no environment (a token made or revoked, versions pruned) is handed over for every
environment (``None``): a tail of such links cut off must be caught as surely as a deploy's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lastgood.rows import AuditEntry, AuditHead
from lastgood.store import chain, statements
from lastgood.store.base import StoreBase
from lastgood.store.connection import Database, Session

if TYPE_CHECKING:
    from lastgood.store.chain_rows import RowCheck

AUDIT_COLUMNS = statements.columns_of(AuditEntry)
TAIL = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
INSERT = statements.insert("audit_log", AUDIT_COLUMNS)
BATCH = 1000
"""Links read per query when the whole chain is walked (verify, export)."""


HeadKeeper = Callable[[str | None, AuditHead], None]
"""Keeps a head outside the table: for one environment, or for every one (``None``)."""


class Auditor:
    """Appends links inside one transaction, and remembers each environment's newest head for
    after the commit (under ``None``: a link of no environment, whose head goes to all)."""

    def __init__(self, db: Database, session: Session) -> None:
        self.db = db
        self.session = session
        self.heads: dict[str | None, AuditHead] = {}

    def append(
        self,
        kind: str,
        subject: str,
        actor: str,
        row: Mapping[str, Any],
        *,
        env: str | None = None,
        witness: bool = True,
        leave_out: Sequence[str] = (),
    ) -> AuditHead:
        """Chain ``row`` (as written) as the next link (writes, inside the transaction).

        ``env`` is the environment the link belongs to; None for one that belongs to none (a
        token, versions pruned), whose head every environment's target then keeps. With
        ``witness=False`` no head goes out for this link (a later link of the same
        environment will carry one: a ledger record still running)."""
        self.db.lock_audit(self.session)
        tail = self.session.one(TAIL)
        seq, previous = (1, None) if tail is None else (int(tail[0]) + 1, str(tail[1]))
        link: dict[str, Any] = {
            "seq": seq,
            "at": time.time(),
            "kind": kind,
            "subject": subject,
            "actor": actor,
            "data": chain.row_data(row, leave_out=leave_out),
        }
        link["hash"] = chain.link_hash(previous, chain.entry_bytes(**link))
        self.session.run(INSERT, link)
        head = AuditHead(seq, link["hash"])
        if witness:
            self.heads[env] = head
        return head


class AuditStore(StoreBase):
    """The audit chain: appending (for the other mixins), reading, and where heads go."""

    head_keeper: HeadKeeper | None = None
    """Called with (environment, head) after each transaction that chained something for that
    environment, and with (None, head) after one that chained a link of no environment (the
    head every environment's target should keep); set by :class:`lastgood.project.Project`.
    It must not raise."""

    @contextmanager
    def _audited(self, doing: str) -> Iterator[Auditor]:
        """A write transaction whose appends are chained with it; heads go out after commit."""
        with self.db.transaction(doing) as session:
            auditor = Auditor(self.db, session)
            yield auditor
        keeper = self.head_keeper
        if keeper is None or not auditor.heads:
            return
        if None in auditor.heads:  # every target gets the newest head: one write each
            keeper(None, max(auditor.heads.values(), key=lambda head: head.seq))
            return
        for env, head in auditor.heads.items():
            keeper(env, head)

    def audit_head(self) -> AuditHead | None:
        """The newest link of the chain, or None while it is empty. Reads."""
        with self.db.transaction("read the audit chain's head") as session:
            row = session.one(TAIL)
        return None if row is None else AuditHead(int(row[0]), str(row[1]))

    def walk_audit(
        self,
        visit: Callable[[list[AuditEntry]], None],
        *,
        since: int = 1,
        rows: RowCheck | None = None,
    ) -> AuditHead | None:
        """Hand ``visit`` every link from seq ``since`` on, oldest first, in batches, all from
        one moment of the store (a snapshot: writers are not held up); returns the chain's
        head at that moment (None while it is empty). With ``rows``, then hand it every row
        of the chained tables and their links, from the same moment, so a write committed
        meanwhile can never look like a row without its link. Reads."""
        columns = ", ".join(AUDIT_COLUMNS)
        sql = (f"SELECT {columns} FROM audit_log WHERE seq >= :low "
               "ORDER BY seq LIMIT :batch")  # fmt: skip
        with self.db.transaction("read the audit chain", snapshot=True) as session:
            tail = session.one(TAIL)
            low = since
            while batch := [
                AuditEntry(*row) for row in session.rows(sql, {"low": low, "batch": BATCH})
            ]:
                visit(batch)
                low = batch[-1].seq + 1
            if rows is not None:
                from lastgood.store.audit_rows import check_rows

                check_rows(session, rows)
        return None if tail is None else AuditHead(int(tail[0]), str(tail[1]))

    def audit_entries(self, *, since: int = 1, limit: int | None = None) -> list[AuditEntry]:
        """Links from seq ``since`` on, oldest first (at most ``limit``). Reads."""
        return self._records("read the audit chain", AuditEntry, "audit_log",
                             order="seq", limit=limit, since=("seq", since))  # fmt: skip
