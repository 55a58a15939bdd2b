"""Hold an environment's lease for the length of a deploy or rollback.

One deploy or rollback per environment at a time, across processes and machines. The lease
expires, so a crashed process never blocks the next; a dead holder on this host is detected at
once. ``fence()`` renews it right before every change to a target, so a process whose lease was
broken stops before it can touch anything.
"""

from __future__ import annotations

import contextlib
import time
from types import TracebackType

from lastgood import holder
from lastgood.errors import LastgoodError, LockedError
from lastgood.events import Event, EventKind
from lastgood.operations.place import Place
from lastgood.project import Project
from lastgood.rows import Lease

STATUS_WAIT = 10.0
BRIEF = ("status", "watch")  # purposes that hold an environment only for a moment


def env_is_busy(project: Project, env: str, now: float) -> bool:
    """A deploy, rollback or drill holds ``env``'s lease now, so its own checks are running
    there (a ``status`` reconcile does not count: it holds the lease only for a moment). Reads
    the store. The watcher asks it by name before it acts on an environment, outside any verb:
    it needs neither the settings nor the target, so it takes no :class:`Place`."""
    lease = project.store.lease(f"env:{env}")
    if lease is None:
        return False
    return lease.purpose != "status" and holder.lease_is_alive(lease, now)


class EnvLease:
    """Context manager: ``with EnvLease(place, "deploy") as lease: …``."""

    def __init__(self, place: Place, purpose: str, *, force: bool = False) -> None:
        self.place = place
        self.env = place.name
        self.purpose = purpose
        self.force = force
        self.ttl = place.settings.lease_ttl
        self.lease: Lease | None = None
        self.took_from: Lease | None = None

    def __enter__(self) -> EnvLease:
        now = time.time()
        self.lease, previous = self._acquire()
        if previous is not None:
            self.took_from = previous
            self._record_takeover(previous, now)
        return self

    def _acquire(self) -> tuple[Lease, Lease | None]:
        """Take the lease; wait out a ``status`` reconcile or a watcher's drift repair.

        A read-only command or the watcher must never make a deploy or rollback fail, so a
        holder whose purpose is in :data:`BRIEF` is waited for (at most :data:`STATUS_WAIT`
        seconds), and such holders themselves never wait: they try again later.
        """
        deadline = time.monotonic() + STATUS_WAIT
        while True:
            try:
                return self.place.store.acquire_lease(
                    f"env:{self.env}",
                    purpose=self.purpose,
                    holder_name=self.place.project.actor or "unknown",
                    ttl=self.ttl,
                    force=self.force,
                )
            except LockedError:
                holder_now = self.place.store.lease(f"env:{self.env}")
                waiting_helps = holder_now is None or holder_now.purpose in BRIEF
                if self.purpose in BRIEF or not waiting_helps or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _record_takeover(self, previous: Lease, now: float) -> None:
        alive = holder.lease_is_alive(previous, now)
        kind = EventKind.LEASE_BROKEN if alive else EventKind.LEASE_TAKEN_OVER
        how = "broke the live lease" if alive else "took over the expired lease"
        self.place.emit(
            Event(
                kind,
                f"{self.purpose} by {self.place.project.actor} {how} of {previous.holder} "
                f"({previous.purpose}, pid {previous.pid} on {previous.host})",
                env=self.env,
                data={"holder": previous.holder, "purpose": previous.purpose, "pid": previous.pid},
            )
        )

    def fence(self) -> None:
        """Renew the lease; raises LeaseLostError when it is no longer ours."""
        assert self.lease is not None
        self.lease = self.place.store.renew_lease(self.lease, self.ttl)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.lease is None:
            return
        # the lease expires by itself; a failed release must never mask the real outcome
        with contextlib.suppress(LastgoodError):
            self.place.store.release_lease(self.lease)
