"""One thread per process that waits on the held long-polls of all its LiveConfigs.

Each :class:`~lastgood.client.LiveConfig` follows its environment from a thread of its own
(:mod:`lastgood.client.follower`). In the steady state that thread does nothing but wait for the
answer to a long-poll, then apply the new version and ask again; when a rollback lands, every
consumer's answer arrives at once, and a process holding many LiveConfigs (one per environment,
or per tenant) would wake all of their threads together to fight over one interpreter lock:
with 250 LiveConfigs in a process that cost about 1.7 ms of CPU per consumer, against about
30 µs when one thread applies them all.

So a follower hands its held long-poll to the hub: the request is sent on the channel's
kept-alive connection, and the hub's one :mod:`selectors` loop waits on it beside every other.
When the answer is a new version (or an unchanged one after a real hold), the hub applies it
exactly as the follower would (:meth:`LiveConfig._take`: every file checked against the content
hash, the same bytes once per process: :class:`~lastgood.client.payload.RecentPayloads`), and
once answers stop arriving (:meth:`Hub._once`), sends each its next long-poll on the same
connection and goes on waiting; the follower's thread stays asleep. Anything else (an error
status, a closed or out-of-step connection, an answer past its deadline, a payload that does not
verify, a ``304`` that came back too fast to have been held) is handed back untouched: the
follower wakes and does what it always does (failover to the next server, backoff, logging), so
the hub adds a fast path, not a second set of rules. TLS connections stay with their follower
(the hub reads plain sockets only), and so do lastgood agents, which place each version on disk
as they apply it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Mapping
from typing import Protocol

from lastgood.client.channel import READ_SIZE, Answer, Channel

Unsent = Mapping[str, tuple[float, int | None]]  # the metrics a read carries (LiveConfig.report)

log = logging.getLogger("lastgood.client")

TOO_FAST = 0.5  # as the follower: a "304 unchanged" sooner than this was not held
# the applied answers ask again once no answer has arrived for LULL seconds, plus PER_ANSWER for
# each answer of the burst (up to LONGEST_LULL): see Hub._lull
LULL = 0.002
PER_ANSWER = 0.00025
LONGEST_LULL = 0.25
AT_MOST = 1.0  # seconds from a burst's first answer to its next long-polls, however it goes on
# after applying the answers of a wake-up while a burst goes on, the hub waits GATHER seconds
# for more (when fewer than FEW sockets were ready): see Hub._once
GATHER = 0.001
FEW = 8


class Parked(Protocol):
    """What the hub asks of the follower whose read it holds (lastgood.client.follower)."""

    @property
    def stopping(self) -> bool: ...

    def resume(self) -> None:
        """Wake up and do the rest the usual way."""

    def let_go(self) -> None:
        """The read is no longer held (answered, handed back)."""

    def refused(self, held: Held, status: int, body: bytes) -> None:
        """The server answered the read with an error (any status but 200 and 304)."""

    def took(self, held: Held, status: int, body: bytes) -> None:
        """Apply a 200 or 304 answer as the follower would; raises when it cannot."""

    def next_read(self, held: Held) -> tuple[bytes, Unsent, float]:
        """The next long-poll's bytes, the metrics they carry, and its deadline."""


class Held:
    """One long-poll the hub waits on."""

    __slots__ = ("answer", "applied", "channel", "deadline", "fd", "follower", "sent_at", "sock",
                 "unsent", "watched")  # fmt: skip

    def __init__(
        self, follower: Parked, channel: Channel, sock: socket.socket, deadline: float
    ) -> None:
        self.follower, self.channel, self.sock = follower, channel, sock
        self.fd = sock.fileno()  # the selector's key: still valid once the socket is closed
        self.watched = False
        self.applied = False  # its answer is applied, its next long-poll not yet sent
        self.deadline = deadline
        self.sent_at = time.monotonic()
        self.answer = Answer()
        self.unsent: Unsent = {}

    def rearm(self, deadline: float) -> None:
        """The next read was sent on the same connection: wait for its answer."""
        self.deadline, self.sent_at, self.answer = deadline, time.monotonic(), Answer()


class Hub(threading.Thread):
    """The selector loop (see the module docstring); :func:`hub` gives the process's one."""

    def __init__(self) -> None:
        super().__init__(name="lastgood-hub", daemon=True)
        self.pid = os.getpid()
        self._selector = selectors.DefaultSelector()
        self._wake, self._woken = socket.socketpair()
        for end in (self._wake, self._woken):
            end.setblocking(False)
        self._selector.register(self._woken, selectors.EVENT_READ, None)
        self._incoming: list[Held] = []
        self._lock = threading.Lock()
        self._deadlines: list[tuple[float, int, Held]] = []
        self._order = itertools.count()
        self._applied: list[Held] = []  # answers applied whose next long-poll waits (LULL)
        self._applied_since = self._answered_at = 0.0  # the burst's first and latest answer

    def hold(self, held: Held) -> None:
        """Wait on ``held`` from now on (any thread); the request is already sent."""
        with self._lock:
            self._incoming.append(held)
        with contextlib.suppress(BlockingIOError):  # a full pipe is already a wake-up
            self._wake.send(b"\0")

    def run(self) -> None:
        while True:
            try:
                self._once()
            except Exception:  # a bug here must not leave every follower parked
                log.exception("the LiveConfig hub failed; handing every held read back")
                self._applied = []
                for key in list(self._selector.get_map().values()):
                    if key.data is not None:
                        self._hand_back(key.data, keep=False)

    def _once(self) -> None:
        """One wait and what came of it. When a switch lands, the answers of a process's
        LiveConfigs arrive over the time the server takes to write them all: each is applied
        as it comes, and their next long-polls are sent once answers stop arriving (see
        :meth:`_lull`). Applying is what the application waits for; the next long-poll only
        carries the report, and on a machine whose cores many consumers share, sending it (and
        the server reading it) would delay the applying of the answers still arriving.

        A burst can also trickle in: when a server answers the consumers of several processes
        in turn, each process's answers come one at a time, a few hundred microseconds apart.
        Waking for each cost about three times the CPU of applying it in a batch (the select
        and the wake-up itself, which also cost the server writing it). So when a wake-up
        found fewer than :data:`FEW` sockets ready, the hub waits :data:`GATHER` (a millisecond)
        before it looks again, and applies what gathered meanwhile together. The first answer
        of a burst is applied at once: only the ones after it can wait that millisecond."""
        soonest = self._deadlines[0][0] if self._deadlines else None
        timeout = None if soonest is None else max(0.0, soonest - time.monotonic())
        if self._applied:
            due = max(0.0, self._asking_at() - time.monotonic())
            timeout = due if timeout is None else min(timeout, due)
        events = self._selector.select(timeout)
        took = 0
        for key, _events in events:
            if key.data is None:
                self._take_incoming()
            elif self._readable(key.data):
                self._answered_at = time.monotonic()
                if not self._applied:
                    self._applied_since = self._answered_at
                key.data.applied = True
                self._applied.append(key.data)
                took += 1
        now = time.monotonic()
        if self._applied and now >= self._asking_at():
            applied, self._applied = self._applied, []
            for held in applied:
                if held.applied:  # not handed back meanwhile
                    held.applied = False
                    self._ask_again(held)
        elif took and len(events) < FEW:
            time.sleep(GATHER)  # a burst trickles in: let its next answers gather (see GATHER)
        self._expire(now)

    def _lull(self) -> float:
        """How long no answer must arrive before the applied ones ask again: 2 ms after one
        answer, longer the more answers the burst brought (a quarter of a millisecond each, a
        quarter of a second at most). Many answers at once mean this process holds many of the
        consumers a switch is reaching, and the server is still writing to the others; asking
        again now would take the CPU the rest of them need to apply it (on a machine of 2 CPUs
        shared with 10,000 consumers, 0.1 to 0.2 s of CPU a rollback). A process with a few
        LiveConfigs asks again after about 2 ms, as before."""
        return min(LONGEST_LULL, LULL + PER_ANSWER * len(self._applied))

    def _asking_at(self) -> float:
        """The monotonic moment the applied answers ask again: after the lull, or
        :data:`AT_MOST` after the burst's first answer if answers keep arriving."""
        return min(self._answered_at + self._lull(), self._applied_since + AT_MOST)

    def _take_incoming(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._woken.recv(4096)
        with self._lock:
            incoming, self._incoming = self._incoming, []
        for held in incoming:
            self._watch(held)

    def _watch(self, held: Held) -> None:
        try:
            self._selector.register(held.fd, selectors.EVENT_READ, held)
        except (ValueError, KeyError, OSError):  # closed meanwhile (LiveConfig.close)
            self._hand_back(held, keep=False)
            return
        held.watched = True
        heapq.heappush(self._deadlines, (held.deadline, next(self._order), held))

    def _expire(self, now: float) -> None:
        """Hand back the reads past their deadline (the follower words the timeout)."""
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _order, held = heapq.heappop(self._deadlines)
            if held.deadline == deadline and held.watched and not held.applied:  # not answered
                self._hand_back(held, keep=False)

    def _readable(self, held: Held) -> bool:
        """Read what arrived for ``held``; True when a whole answer was applied (the next
        long-poll is then due)."""
        if held.applied:  # nothing was asked: the server closed it, or the connection is out
            held.applied = False  # of step (LiveConfig.close shut it down, say)
            self._hand_back(held, keep=False)
            return False
        try:
            data = held.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self._hand_back(held, keep=False)
            return False
        try:
            ended = held.answer.take(data)
        except Exception:  # not HTTP, too large, closed early: the follower words it
            self._hand_back(held, keep=False)
            return False
        return (ended or held.answer.complete) and self._answered(held)

    def _answered(self, held: Held) -> bool:
        """Apply a whole answer (True), or hand it back (see the module docstring)."""
        status, body, keep = held.answer.result()
        follower = held.follower
        quick = status == 304 and time.monotonic() - held.sent_at < TOO_FAST
        if held.answer.complete and status not in (200, 304):
            follower.refused(held, status, body)
        if not keep or status not in (200, 304) or quick or follower.stopping:
            self._hand_back(held, keep=keep)
            return False
        try:
            follower.took(held, status, body)
        except Exception:  # a payload that does not verify: the follower asks again and logs
            self._hand_back(held, keep=True)
            return False
        return True

    def _ask_again(self, held: Held) -> None:
        """The next long-poll on the same connection, waited on here (the socket stays
        registered with the selector: no system call but the send)."""
        follower = held.follower
        request, unsent, deadline = follower.next_read(held)
        try:
            sent = held.sock.send(request)
        except OSError:
            sent = -1
        if sent != len(request) or follower.stopping:  # a part sent: the connection is spoiled
            self._hand_back(held, keep=False)
            return
        held.rearm(deadline)
        held.unsent = unsent
        heapq.heappush(self._deadlines, (held.deadline, next(self._order), held))

    def _unwatch(self, held: Held) -> None:
        if held.watched:
            held.watched = False
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(held.fd)

    def _hand_back(self, held: Held, *, keep: bool) -> None:
        """Give the connection back to its channel (kept when it can carry a request) and wake
        the follower, which does the rest the usual way."""
        self._unwatch(held)
        held.follower.let_go()
        if keep:
            held.channel.give_back(held.sock, keep=True)
        else:
            held.channel.drop(held.sock)
        held.follower.resume()


_hub: Hub | None = None
_hub_lock = threading.Lock()


def hub() -> Hub:
    """The process's hub, started on first use (and again in a forked child)."""
    global _hub
    with _hub_lock:
        if _hub is None or _hub.pid != os.getpid() or not _hub.is_alive():
            _hub = Hub()
            _hub.start()
        return _hub
