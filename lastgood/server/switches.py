"""Hearing other processes' switches at once: the store's listener behind the feeds.

On PostgreSQL every switch recorded in the store is announced with ``NOTIFY`` (see
:mod:`lastgood.store.switches`). One thread per server holds the listening connection and
refreshes the announced environment's feed the moment an announcement arrives. While it
listens, the feeds' poll slows to ``SAFETY_POLL`` (or ``--poll`` if that is longer), a safety
net for switches made without the store (``rollback --offline``). When the connection drops,
the poll goes back to ``--poll`` and the thread reconnects, backing off up to
``RETRY_AFTER[-1]`` seconds; once back, it refreshes every feed, since announcements made
meanwhile are lost.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from lastgood.errors import StoreError

if TYPE_CHECKING:
    from lastgood.server.live import Feeds
    from lastgood.store.switches import SwitchListener

log = logging.getLogger("lastgood.server")

SAFETY_POLL = 1.0
RETRY_AFTER = (0.5, 1.0, 2.0, 5.0)
WAIT = 0.5  # how long one wait for announcements lasts: how fast the thread sees stop()


class Listening(threading.Thread):
    """The thread that turns switch announcements into feed refreshes."""

    def __init__(self, feeds: Feeds, listener: SwitchListener) -> None:
        super().__init__(name="lastgood-switch-listener", daemon=True)
        self.feeds = feeds
        self.listener = listener
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Ask the thread to end; it closes its connection within ``WAIT`` seconds."""
        self._stopping.set()

    def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self.listener.connect()
                self._listening(failures)
                failures = 0
                self._follow()
            except Exception as exc:  # never let the thread die: the feeds would only poll
                self._lost(exc, failures)
                self._stopping.wait(RETRY_AFTER[min(failures, len(RETRY_AFTER) - 1)])
                failures += 1
        self.listener.close()

    def _listening(self, failures: int) -> None:
        self.feeds.listening(True, SAFETY_POLL)
        if failures:
            log.warning("listening for switches on the store again: the live config follows "
                        "other processes' switches at once")  # fmt: skip

    def _follow(self) -> None:
        """Refresh each announced feed until the connection drops (StoreError) or stop()."""
        while not self._stopping.is_set():
            for env in self.listener.wait(WAIT):
                self.feeds.announced(env)

    def _lost(self, exc: Exception, failures: int) -> None:
        self.feeds.listening(False, SAFETY_POLL)
        if not isinstance(exc, StoreError):
            log.error("the switch listener failed unexpectedly", exc_info=exc)
        if not failures:  # one warning per outage, not one per retry
            why = exc.message if isinstance(exc, StoreError) else type(exc).__name__
            log.warning("%s; polling every %g s for switches until the store answers again",
                        why, self.feeds.interval)  # fmt: skip
