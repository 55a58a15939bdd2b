"""The background thread that keeps a :class:`~lastgood.client.LiveConfig` current.

It long-polls the server (``?wait=30`` with ``If-None-Match``) and applies each new version the
moment it arrives, then asks again at once: the next request carries the new
``X-Lastgood-Serving``, which is how the server's fleet view sees this process follow a rollback.

Until its last exchange with the server succeeded (it started from the disk cache, or the server
was unreachable) it asks without waiting first: the answer, a 304 included, confirms the version
at once, so ``source`` says ``"server"`` and ``age`` restarts from 0 the moment the server is
back, not when a 30-second long-poll ends. Then it long-polls.

When the server cannot be reached (or refuses), it keeps serving what it has and retries after a
backoff that doubles from 0.1 s up to ``poll`` seconds, with jitter so that a thousand consumers
do not hammer a server that just restarted: while the server is down the follower becomes a
periodic poll. With ``wait=0`` it is a plain periodic poll all along.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import TYPE_CHECKING

from lastgood.errors import LastgoodError

if TYPE_CHECKING:
    from lastgood.client.channel import Channel
    from lastgood.client.hub import Held, Unsent
    from lastgood.client.live import LiveConfig

log = logging.getLogger("lastgood.client")

FIRST_RETRY = 0.1
TOO_FAST = 0.5  # a long-poll answered "unchanged" sooner than this is not being held


def backoff(failures: int, cap: float, rng: random.Random) -> float:
    """Seconds to wait after ``failures`` failures in a row: doubling, capped, jittered."""
    base: float = min(cap, FIRST_RETRY * 2 ** min(failures - 1, 30))
    return base * rng.uniform(0.5, 1.0)


class Follower(threading.Thread):
    """Follows one LiveConfig's environment until :meth:`stop`."""

    def __init__(self, live: LiveConfig) -> None:
        super().__init__(name=f"lastgood-follow-{live.env}", daemon=True)
        self.live = live
        self._stopping = threading.Event()
        self._resumed = threading.Event()  # the hub handed the held read back
        self._rng = random.Random()
        self.failures = 0
        self._hub_next = live.shares_hub  # whether the next long-poll may wait in the hub
        self._refusal: tuple[Channel, int, bytes] | None = None  # an error the hub received

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def resume(self) -> None:
        """The hub is done with this follower's read: wake up (any thread)."""
        self._resumed.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            confirming = not self.live._connected  # started from the cache, or reconnecting
            wait = 0.0 if confirming else self.live.wait
            if wait and self._hub_next and self._parked(wait):
                self._hub_next = False  # handed back: one read the usual way, then the hub
                self._answered_error()
                continue
            self._hub_next = self.live.shares_hub
            started = time.monotonic()
            try:
                changed = self.live._refresh(wait=wait)
            except Exception as exc:
                if self._stopping.is_set():
                    return
                self._failed(exc)
                continue
            if self.failures:
                log.info(
                    "back in touch with %s after %d failed attempts", self.live.url, self.failures
                )
                self.failures = 0
            if confirming and self.live.wait:
                continue  # confirmed without waiting: now hold the long-poll
            if not wait or (not changed and time.monotonic() - started < TOO_FAST):
                self._stopping.wait(self.live.poll)  # polling, or a proxy not holding the poll

    def _parked(self, wait: float) -> bool:
        """Send the long-poll on the kept-alive connection and sleep while the hub waits on it
        and on the reads after it (see lastgood.client.hub); False, having changed nothing,
        when there is no such connection."""
        from lastgood.client.hub import Held, hub

        live = self.live
        channel = live._channels[live._using]
        try:
            sock = channel.lend()
        except LastgoodError:  # closed since the loop looked (LiveConfig.close): it ends now
            return self._stopping.is_set()
        if sock is None:
            return False
        request, unsent = live._request(channel, wait)
        try:
            sock.settimeout(live.timeout)
            sock.sendall(request)
            sock.setblocking(False)
        except OSError:
            channel.drop(sock)
            return False
        self._resumed.clear()
        live._holding_since = time.monotonic()
        held = Held(self, channel, sock, time.monotonic() + wait + live.timeout)
        held.unsent = unsent
        hub().hold(held)
        self._resumed.wait()
        return True

    # ---- what the hub asks of a follower whose read it holds (lastgood.client.hub.Parked) --

    def let_go(self) -> None:
        self.live._holding_since = None

    def refused(self, held: Held, status: int, body: bytes) -> None:
        self._refusal = (held.channel, status, body)

    def _answered_error(self) -> None:
        """The server answered the held read with an error (a ``503`` from a server that is
        stopping, say): said in the log with the server's own words, as the follower's own read
        would, rather than as whatever the next attempt meets (a connection closed or refused)."""
        refusal, self._refusal = self._refusal, None
        if refusal is None or self._stopping.is_set():
            return
        channel, status, body = refusal
        try:
            channel.decode(status, body)
        except LastgoodError as exc:
            self.live._connected = False
            self._failed(exc)

    def took(self, held: Held, status: int, body: bytes) -> None:
        live = self.live
        live._holding_since = None
        live._metrics_sent(held.unsent)
        live._take_answer(held.channel, status, body)

    def next_read(self, held: Held) -> tuple[bytes, Unsent, float]:
        live = self.live
        request, unsent = live._request(held.channel, live.wait)
        live._holding_since = time.monotonic()
        return request, unsent, time.monotonic() + live.wait + live.timeout

    def _failed(self, exc: Exception) -> None:
        """Log (a warning for the first failure of a streak), then back off."""
        self.failures += 1
        delay = backoff(self.failures, self.live.poll, self._rng)
        serving = self.live.version
        shown = "nothing yet" if serving is None else f"v{serving}"
        if not isinstance(exc, LastgoodError):  # a bug here must not stop the following
            log.exception("unexpected error following %s; still serving %s", self.live.env, shown)
        elif self.failures == 1:
            log.warning(
                "%s; still serving %s, retrying every %g s at most",
                exc.message,
                shown,
                self.live.poll,
            )
        else:
            log.debug(
                "attempt %d failed: %s; retrying in %.2f s", self.failures, exc.message, delay
            )
        self._stopping.wait(delay)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following: close the channel (breaking the request in flight) and wait for the
        thread to end."""
        self._stopping.set()
        self._resumed.set()
        self.live._close_channels()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
