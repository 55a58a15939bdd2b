"""Full garbage collections on the server's schedule, not in the middle of a rollback.

A server that holds ten thousand long-polls keeps a large heap of long-lived objects (one
connection, parser and held read per consumer). CPython runs a full collection, which walks
that whole heap, whenever enough objects have survived since the last one; every rollback
creates that many (each consumer's next request), so a full collection lands inside every few
fan-outs and stops the event loop for 150-200 ms with 10,000 consumers (measured: it was the
whole tail of ``bench/consumers.py``'s p99). So, while the server runs:

- the objects that exist once it has started (modules, the app, the routes) are frozen out of
  every later collection (:func:`gc.freeze`): they live as long as the process;
- young collections run as CPython runs them (they are short, and free most cycles), but no
  full collection runs by itself;
- a full collection runs every :data:`FULL_EVERY` seconds from a task of the server's loop, so
  the rare pause it costs falls at a time of its own, not when a switch fans out.

On stop, the process's previous settings come back (tests run servers in-process too).
"""

from __future__ import annotations

import asyncio
import gc

FULL_EVERY = 60.0  # seconds between full collections
NEVER = 2**31 - 1  # a gen-1 count the process never reaches: no full collection by itself


class Collection:
    """The process's collection settings while a server runs (see the module docstring)."""

    def __init__(self, every: float = FULL_EVERY) -> None:
        self.every = every
        self._before: tuple[int, int, int] | None = None

    def start(self) -> None:
        """Freeze what exists now and stop full collections that CPython would start itself."""
        gc.collect()
        gc.freeze()
        young, middle, _full = self._before = gc.get_threshold()
        gc.set_threshold(young, middle, NEVER)

    def full(self) -> int:
        """One full collection now; returns the unreachable objects it found."""
        return gc.collect()

    async def run(self) -> None:
        """A full collection every ``every`` seconds, forever."""
        while True:
            await asyncio.sleep(self.every)
            self.full()

    def stop(self) -> None:
        """The settings from before :meth:`start`, and nothing frozen any more."""
        if self._before is not None:
            gc.set_threshold(*self._before)
            self._before = None
        gc.unfreeze()
