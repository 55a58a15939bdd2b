"""Many deadlines on one event-loop timer.

Every held long-poll of the fast path (:mod:`lastgood.server.fastpath`) has a deadline: its
``wait``, when it is answered ``304``. With a loop timer each, a switch that reaches ten
thousand held consumers cancels ten thousand timers and their next reads create ten thousand
more, which cost more than the reads' own work. Deadlines of one length arrive in the order they
end, so each length keeps a plain queue, and one loop timer is armed for the soonest head.

An entry is never taken out early: when it is due, its callback is called with the marker it
was given, and the owner checks that the marker is still current (the same read still held).
So answering a held read costs nothing here, and a stale entry costs one call when it is due.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

log = logging.getLogger("lastgood.server")

Due = Callable[[object], None]


class Deadlines:
    """Deadlines on ``loop`` (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queues: dict[float, deque[tuple[float, Due, object]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def add(self, delay: float, due: Due, marker: object) -> None:
        """Call ``due(marker)`` ``delay`` seconds from now (as ``loop.call_later`` would)."""
        deadline = self.loop.time() + delay
        queue = self._queues.get(delay)
        if queue is None:
            queue = self._queues[delay] = deque()
        queue.append((deadline, due, marker))
        if self._armed_at is None or deadline < self._armed_at:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._armed_at = self.loop.call_at(deadline, self._fire), deadline

    def _fire(self) -> None:
        self._timer = self._armed_at = None
        now = self.loop.time()
        for delay, queue in list(self._queues.items()):
            while queue and queue[0][0] <= now:
                _deadline, due, marker = queue.popleft()
                try:
                    due(marker)
                except Exception:  # one owner's failure must not leave the others waiting
                    log.exception("a deadline's callback failed")
            if not queue:
                del self._queues[delay]
        if self._queues:
            self._arm(min(queue[0][0] for queue in self._queues.values()))
