"""Work done after a new version is applied, off the follower's thread: write the disk cache,
then call the application's ``on_change`` callbacks, in the order versions were applied.

Why a second thread: the follower must ask the server again the instant it applied a version
(its next request tells the fleet view it followed), so a slow callback or a slow disk must not
sit between the two.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence

from lastgood.client.cache import ConfigCache
from lastgood.client.snapshot import Snapshot

log = logging.getLogger("lastgood.client")

ChangeCallback = Callable[[Snapshot | None, Snapshot], object]


class Notifier(threading.Thread):
    """A queue of (old, new) changes, handled one at a time."""

    def __init__(self, env: str, cache: ConfigCache | None) -> None:
        super().__init__(name=f"lastgood-notify-{env}", daemon=True)
        self.cache = cache
        self._queue: queue.Queue[tuple[Snapshot | None, Snapshot, Sequence[ChangeCallback]] | None]
        self._queue = queue.Queue()

    def submit(
        self, old: Snapshot | None, new: Snapshot, callbacks: Sequence[ChangeCallback]
    ) -> None:
        self._queue.put((old, new, callbacks))

    def run(self) -> None:
        while (item := self._queue.get()) is not None:
            old, new, callbacks = item
            if self.cache is not None:
                self.cache.save(new)
            for callback in callbacks:
                call(callback, old, new)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish what is queued (cache writes, callbacks), then end."""
        self._queue.put(None)
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


def call(callback: ChangeCallback, old: Snapshot | None, new: Snapshot) -> None:
    """Run one callback; its exception is logged, never propagated (following must go on)."""
    try:
        callback(old, new)
    except Exception:
        log.exception("on_change callback %r failed for v%d", callback, new.version)
