"""Leases in the store: one deploy or rollback per environment at a time, across processes and
machines. A lease names its holder (host, pid and the pid's start time), so one whose process
is gone is free at once: a kill -9 never blocks the next command."""

from __future__ import annotations

import time

from lastgood import holder
from lastgood.record import replace
from lastgood.rows import Lease
from lastgood.store import common, statements
from lastgood.store.base import StoreBase, select_records
from lastgood.store.connection import Session

LEASE_COLUMNS = statements.columns_of(Lease)


class LeaseStore(StoreBase):
    """Take, renew and give back named leases."""

    def acquire_lease(
        self, name: str, *, purpose: str, holder_name: str, ttl: float, force: bool = False
    ) -> tuple[Lease, Lease | None]:
        """Take ``name``; returns (ours, the one taken over or broken). LockedError while
        another live process holds it, unless ``force``; a dead holder's lease is free at once.

        Read, decide and write happen in one transaction, and the write is a compare-and-set
        on the lease we read, so a process that slipped in between makes us read again (on
        SQLite ``BEGIN IMMEDIATE`` already keeps everyone else out)."""
        mine = common.new_lease(name, purpose=purpose, holder_name=holder_name, ttl=ttl)
        for _attempt in range(common.LEASE_ATTEMPTS):
            with self.db.transaction("take a lease") as session:
                previous = _lease(session, name)
                if (
                    previous is not None
                    and not force
                    and holder.lease_is_alive(previous, mine.acquired_at)
                ):
                    raise common.locked_error(name, previous)
                if _swap(session, previous, mine):
                    return mine, previous
        raise common.lease_race_error(name)

    def lease(self, name: str) -> Lease | None:
        """The lease on ``name`` as stored, alive or not."""
        with self.db.transaction("read a lease") as session:
            return _lease(session, name)

    def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        """Extend our lease; LeaseLostError when it was broken or taken over."""
        expires = time.time() + ttl
        with self.db.transaction("renew a lease") as session:
            renewed = session.run(
                "UPDATE leases SET expires_at = :expires WHERE name = :name AND token = :token",
                {"expires": expires, "name": lease.name, "token": lease.token},
            )
        if not renewed:
            raise common.lease_lost_error(lease)
        return replace(lease, expires_at=expires)

    def release_lease(self, lease: Lease) -> None:
        """Give the lease back, only if it is still ours."""
        with self.db.transaction("release a lease") as session:
            session.run(
                "DELETE FROM leases WHERE name = :name AND token = :token",
                {"name": lease.name, "token": lease.token},
            )


def _lease(session: Session, name: str) -> Lease | None:
    rows = select_records(session, Lease, "leases", {"name": name})
    return rows[0] if rows else None


def _swap(session: Session, previous: Lease | None, mine: Lease) -> bool:
    """Compare-and-set: put ``mine`` where exactly ``previous`` (by token) was, or where there
    was none; False when another process changed the row first."""
    row = statements.row_of(mine, LEASE_COLUMNS)
    if previous is None:
        sql = statements.insert("leases", LEASE_COLUMNS) + " ON CONFLICT (name) DO NOTHING"
        return session.run(sql, row) == 1
    sql, params = statements.update(
        "leases", LEASE_COLUMNS, row, {"name": mine.name, "token": previous.token}
    )
    return session.run(sql, params) == 1
