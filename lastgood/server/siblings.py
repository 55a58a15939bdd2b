"""What the workers of ``lastgood serve --workers N`` tell each other about their consumers'
reports, so that the worker answering a fleet view or confirming a rollback counts what every
worker has heard.

Why it is needed: each worker keeps the reports it receives in memory and writes them to the
store every ``flush_every`` (half a second), a few hundred a transaction, and reads back
what the others wrote every second (:mod:`lastgood.server.consumers`). The fleet is answered by
one worker, from its memory and that last read. A report another worker had received in the
meantime did not count: a consumer that had just started was missing, and a rollback that one
worker showed as followed by every consumer, another showed as not followed.

How it closes the gap: a small block of memory, mapped before the workers are forked and so
shared by all of them, holds for each worker two moments (``time.monotonic``, one clock for
every process of the machine): since when it holds reports not yet in the store (0: none),
and when it last finished writing some. A worker about to answer notes the moment; when
another worker holds reports older than it, it asks every worker to write theirs now (``FLUSH``,
relayed by the supervisor as the wake-up after a switch is) and waits until none holds any
from before that moment: a few milliseconds (up to half a second more when the other was
already writing a flush that stands aside for a switch: lastgood.server.quiet). Then, if any
worker wrote since its last read, it reads the store. A worker that does not write within
:data:`SETTLE_WITHIN` (its store failing, say) is not waited for longer: the answer then
counts what reached the store.

Why this rather than the alternatives: writing each report through to the store at once would
cost a transaction per consumer where a rollback reaching ten thousand consumers costs a few
today; waiting one flush period before each answer would make every page half a second slower
and still depend on timing; and on one shared listening socket no consumer can be kept to one
worker. Here a worker that holds nothing unwritten costs the question nothing, and the hot
path (a report) writes the shared memory only when its worker goes from nothing unwritten to
something.

A double is written and read whole by one aligned 8-byte store and load (ctypes), so a worker
never reads half a value another is writing.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import signal
import time

FLUSH = signal.SIGUSR2  # worker -> supervisor -> every worker: "write your reports now"
SETTLE_WITHIN = 1.0  # seconds a worker waits at most for the others to write theirs
_PENDING, _FLUSHED = 0, 1  # a worker's two moments, in that order


class Board:
    """The shared moments of ``count`` workers. Made by the supervisor before it forks; each
    worker takes its slot (:meth:`take`), and the supervisor clears the slot of one that died.
    Writes only the shared memory (and sends ``FLUSH`` to the supervisor)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._memory = mmap.mmap(-1, 16 * count)  # anonymous and shared: forks see one copy
        self._moments = (ctypes.c_double * (2 * count)).from_buffer(self._memory)
        self.slot: int | None = None  # this worker's, once it took one

    def take(self, slot: int) -> None:
        """In a new worker: ``slot`` is this one's; it holds nothing unwritten yet."""
        self.slot = slot
        self.clear(slot)

    def clear(self, slot: int) -> None:
        """The worker in ``slot`` is gone (the supervisor, once it reaped it): nobody waits for
        what it held."""
        self._moments[2 * slot + _PENDING] = 0.0
        self._moments[2 * slot + _FLUSHED] = 0.0

    def holding(self, since: float) -> None:
        """This worker holds reports not yet in the store, the oldest received at ``since``
        (0: none)."""
        if self.slot is not None:
            self._moments[2 * self.slot + _PENDING] = since

    def wrote(self, at: float) -> None:
        """This worker finished writing reports to the store at ``at``."""
        if self.slot is not None:
            self._moments[2 * self.slot + _FLUSHED] = at

    def settle(self, asked: float) -> bool:
        """Wait until no other worker holds reports received at or before ``asked``, asking
        them all to write theirs now when one does; False when one still did after
        :data:`SETTLE_WITHIN` seconds."""
        if not self._behind(asked):
            return True
        with contextlib.suppress(OSError):  # the supervisor is gone: the workers go too
            os.kill(os.getppid(), FLUSH)
        deadline = time.monotonic() + SETTLE_WITHIN
        while self._behind(asked):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)
        return True

    def wrote_since(self, moment: float) -> bool:
        """Whether another worker finished writing reports after ``moment``."""
        return any(self._moments[2 * slot + _FLUSHED] > moment for slot in self._others())

    def _behind(self, asked: float) -> bool:
        return any(0.0 < self._moments[2 * slot + _PENDING] <= asked for slot in self._others())

    def _others(self) -> list[int]:
        return [slot for slot in range(self.count) if slot != self.slot]
