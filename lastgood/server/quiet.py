"""Background store work stands aside while the server writes a new version to its held reads.

A switch reaches every held long-poll of the fast path in one pass of the event loop
(:meth:`lastgood.server.live.Feed._answer_holders`): with ten thousand consumers, 0.1 to 0.2 s
of CPU, and each consumer waits for its own answer in that pass. Meanwhile a worker thread
writes the consumers' reports to the store every half second (:mod:`lastgood.server.consumers`),
and the flush that follows a rollback to ten thousand consumers is 0.15 to 0.2 s of CPU too.
When the next switch landed during such a flush, the two threads shared the interpreter lock
and the two cores the consumers need, and that rollback reached its last consumer up to 0.1 s
later (three rollbacks of ten in one benchmark run; docs/performance.md).

So the fan-out marks itself (:meth:`Quiet.fanning_out`, on the event loop, from the moment the
switch is seen: loading the new version runs in a worker thread too), and the background work
asks before each part of it (:meth:`Quiet.wait`, in its worker thread): it goes on at once when
no fan-out runs, and otherwise sleeps, without the interpreter lock, until the fan-out has ended
and the consumers have had :data:`SETTLE` seconds to apply their answers. A part already being
written goes on, so a flush is written in parts of a few hundred consumers. A flush waits
:data:`LONGEST` in all at most, so reports still reach the store if switches kept coming, and
one a sibling worker asked for (it waits up to a second for them:
:mod:`lastgood.server.siblings`) does not wait at all.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

SETTLE = 0.1  # seconds after a fan-out during which background work still waits
LONGEST = 0.5  # seconds one wait lasts at most


class Quiet:
    """Whether a fan-out is running or has just ended (see the module docstring)."""

    def __init__(self, settle: float = SETTLE, longest: float = LONGEST) -> None:
        self.settle, self.longest = settle, longest
        self._changed = threading.Condition()  # held for moments only, never across an await
        self._running = 0  # fan-outs under way (one per feed at most)
        self._ended = -settle  # monotonic: when the last fan-out ended

    @contextlib.contextmanager
    def fanning_out(self) -> Iterator[None]:
        """Around a fan-out, from the moment a switch is seen to the last answer written (on
        the event loop: it may span awaits, and it never waits for a waiter)."""
        with self._changed:
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._ended = time.monotonic()
                self._changed.notify_all()

    def wait(self, deadline: float | None = None) -> float:
        """Return once no fan-out runs and the last one ended :data:`SETTLE` seconds ago, or
        after :data:`LONGEST` seconds (or at the monotonic ``deadline``, when sooner: a
        caller that waits several times bounds them all); the seconds waited. Call from a
        worker thread only."""
        started = time.monotonic()
        deadline = min(started + self.longest, deadline or float("inf"))
        with self._changed:
            while True:
                quiet_at = deadline if self._running else min(self._ended + self.settle, deadline)
                left = quiet_at - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
        return time.monotonic() - started
