"""The fleet as the server sees it: which consumer serves which version, reported by the SDK.

Reports arrive on every config request (headers ``X-Lastgood-Consumer``,
``X-Lastgood-Consumer-Name`` and ``X-Lastgood-Serving: VERSION:HASH``; a host agent adds
``X-Lastgood-Consumer-Kind: agent`` and ``X-Lastgood-Health: ok`` or ``failing: WHAT``; a
consumer that reported business metrics adds ``X-Lastgood-Metrics: lead_score=36.5,errors=0``,
each kept with the version the request says it serves and the time it arrived) and on
``POST /api/v1/envs/{env}/consumers``. They are kept in memory, so a thousand consumers reporting
at once cost a thousand dictionary writes, and flushed to the store every ``flush_every``
seconds, in transactions of up to :data:`FLUSH_PART` consumers, so ``lastgood status``, a
restarted server and every other server on the same store see the same fleet. The flush and the
read of the other servers' reports stand aside while a switch reaches this server's held reads
(:mod:`lastgood.server.quiet`).

The fleet a server shows is its own reports merged with those other servers flushed: every
``SHARE_EVERY`` it reads back what was written since its last read (each write is numbered in
the store, see :meth:`~lastgood.store.access.AccessStore.consumers_written_after`; its own writes
are left out), so the read costs what changed, not the size of the fleet; a rollback waiting
for its fleet reads again as it waits. For a consumer known both ways the newer report wins; a
consumer silent for ``STALE_AFTER`` drops out of the shared part by itself. The workers of
one ``serve --workers`` do better than that cadence: the one answering from the fleet first
has the others write what they hold (:meth:`gather`, see :mod:`lastgood.server.siblings`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote

from lastgood.client.metrics import HEADER, MAX_METRICS, NAME_HINT, checked_metric
from lastgood.errors import StoreError, UsageError
from lastgood.operations.fleet import STALE_AFTER
from lastgood.record import replace
from lastgood.refs import LARGEST_VERSION
from lastgood.rows import (
    CONSUMER_KINDS,
    HEALTH_FAILING,
    HEALTH_OK,
    Consumer,
    Reading,
    readings_text,
)

if TYPE_CHECKING:
    from lastgood.server.quiet import Quiet
    from lastgood.server.siblings import Board
    from lastgood.store.core import Store

FORGET_AFTER = 7 * 24 * 3600.0
MAX_ID = 200
SHARE_EVERY = 1.0  # seconds between reads of the consumers other servers flushed
FLUSH_PART = 500  # consumers written in one transaction of a flush (see Consumers.flush)
# this server's write numbers left out of the next read at most: reads that keep failing while
# flushes succeed must not grow the list without end (past it, its own rows are read back)
MAX_OWN = 1000
# PostgreSQL keeps versions as INTEGER; a larger number in one report would fail its part of
# every later flush (a transaction of FLUSH_PART reports), so it is refused where it comes in
MAX_VERSION = LARGEST_VERSION


def parse_serving(value: str | None) -> tuple[int | None, str | None]:
    """``X-Lastgood-Serving: 12:3f2a…`` → (12, "3f2a…"); absent or ``none`` → (None, None)."""
    if value is None or value.strip() in ("", "none"):
        return None, None
    number, _, content_hash = value.strip().partition(":")
    try:
        version = int(number.lstrip("v"))
    except ValueError:
        raise UsageError(
            f"X-Lastgood-Serving must be VERSION:HASH, got {value[:80]!r}",
            hint="send e.g. 'X-Lastgood-Serving: 12:3f2a9c1d…', or 'none' before the first read",
        ) from None
    if not 1 <= version <= MAX_VERSION or len(content_hash) > 64:
        raise UsageError(f"X-Lastgood-Serving names no real version: {value[:80]!r}")
    return version, content_hash or None


def parse_health(value: str | None) -> tuple[str | None, str | None]:
    """``X-Lastgood-Health: ok`` → ("ok", None); ``failing: web-check: 502`` → ("failing",
    "web-check: 502"); absent or ``none`` → (None, None). The detail arrives percent-encoded
    (headers are latin-1: the agent encodes ``%`` and anything not printable ASCII as UTF-8)
    and is cut to 200 characters."""
    if value is None or value.strip() in ("", "none"):
        return None, None
    health, _, detail = value.strip().partition(":")
    health = health.strip()
    if health not in (HEALTH_OK, HEALTH_FAILING):
        raise UsageError(
            f"X-Lastgood-Health must be 'ok' or 'failing: WHAT', got {value[:80]!r}",
            hint="send e.g. 'X-Lastgood-Health: failing: web answered 502'",
        )
    return health, (unquote(detail.strip(), errors="replace")[:MAX_ID] or None)


def parse_metrics(value: str | None) -> dict[str, float]:
    """``X-Lastgood-Metrics: lead_score=36.5,errors=0`` → {"lead_score": 36.5, "errors": 0.0};
    absent or empty → {}. UsageError, naming the part that is wrong, for anything else."""
    if value is None or not value.strip():
        return {}
    parts = value.split(",")
    if len(parts) > MAX_METRICS:
        raise UsageError(
            f"{HEADER} carries {len(parts)} metrics; at most {MAX_METRICS} are taken",
            hint="report fewer, broader metrics",
        )
    metrics: dict[str, float] = {}
    for part in parts:
        name, equals, number = part.strip().partition("=")
        try:
            if not equals:
                raise UsageError(f"{part.strip()[:80]!r} has no '='")
            metrics.update([checked_metric(name, _number(name, number))])
        except UsageError as exc:
            raise UsageError(
                f"{HEADER} must be NAME=NUMBER pairs separated by commas; {exc.message}",
                hint=f"send e.g. '{HEADER}: lead_score=36.5,errors=0'; {NAME_HINT}",
            ) from None
    return metrics


def checked_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` of a report's JSON body, checked by the header's rules (UsageError)."""
    if len(metrics) > MAX_METRICS:
        raise UsageError(f"a report carries at most {MAX_METRICS} metrics, got {len(metrics)}")
    return dict(checked_metric(name, value) for name, value in metrics.items())


def _number(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"metric {name[:80]!r}: {text.strip()[:40]!r} is not a number") from None


def check_kind(kind: str) -> str:
    if kind not in CONSUMER_KINDS:
        raise UsageError(
            f"a consumer kind must be one of {', '.join(CONSUMER_KINDS)}, got {kind[:40]!r}"
        )
    return kind


def check_identity(consumer_id: str, name: str) -> None:
    if not consumer_id or len(consumer_id) > MAX_ID or not consumer_id.isprintable():
        raise UsageError(
            "a consumer id must be 1 to 200 printable characters",
            hint="the SDK makes one per process; pass consumer_id= to LiveConfig to choose it",
        )
    if len(name) > MAX_ID or not name.isprintable():
        raise UsageError("a consumer name must be at most 200 printable characters")


def earliest(one: float | None, other: float | None) -> float | None:
    """The earlier of two first-seen times; None (recorded before they were kept) is earlier
    than any, as the store's upsert has it."""
    return None if one is None or other is None else min(one, other)


class _Entry:
    """What the registry keeps of one consumer: mutable, so a report that changes nothing but
    the time (most of them: every long-poll repeats it) allocates nothing."""

    __slots__ = ("consumer_id", "content_hash", "detail", "env", "first_seen", "health", "kind",
                 "left_at", "metrics", "metrics_text", "name", "seen_at", "since",
                 "version")  # fmt: skip

    def __init__(self, env: str, consumer_id: str, name: str, now: float) -> None:
        self.env, self.consumer_id, self.name = env, consumer_id, name
        self.version: int | None = None
        self.content_hash: str | None = None
        self.since = self.seen_at = now
        self.first_seen: float | None = now
        self.kind = "sdk"
        self.health: str | None = None
        self.detail: str | None = None
        # when it said it stopped (None: it did not); its seen_at is then set back past
        # STALE_AFTER, and a long-poll it held ending later is no sign of life
        self.left_at: float | None = None
        self.metrics: dict[str, Reading] = {}
        self.metrics_text: str | None = None  # the JSON of ``metrics``, made once per change

    @classmethod
    def of(cls, consumer: Consumer) -> _Entry:
        entry = cls(consumer.env, consumer.consumer_id, consumer.name, consumer.since)
        entry.version, entry.content_hash = consumer.version, consumer.content_hash
        entry.seen_at, entry.kind = consumer.seen_at, consumer.kind
        entry.health, entry.detail = consumer.health, consumer.detail
        entry.metrics, entry.metrics_text = consumer.readings(), consumer.metrics
        entry.first_seen = consumer.first_seen
        return entry

    def take(self, metrics: dict[str, float], now: float) -> None:
        """Keep ``metrics`` as measured on the version served now; the newest value per name,
        at most :data:`MAX_METRICS` names (the longest unreported give way)."""
        for name, value in metrics.items():
            self.metrics[name] = Reading(value, self.version, now)
        if len(self.metrics) > MAX_METRICS:
            newest = sorted(self.metrics.items(), key=lambda item: item[1].at)[-MAX_METRICS:]
            self.metrics = dict(newest)
        self.metrics_text = readings_text(self.metrics)

    def record(self) -> Consumer:
        # positional, in Consumer's field order: Record's quick way (a flush makes thousands)
        return Consumer(self.env, self.consumer_id, self.name, self.version, self.content_hash,
                        self.since, self.seen_at, self.kind, self.health, self.detail,
                        self.metrics_text, self.first_seen)  # fmt: skip


class Consumers:
    """In-memory consumer reports with a periodic flush to the store; with a ``board``, one
    worker of ``serve --workers`` among others (see :mod:`lastgood.server.siblings`)."""

    def __init__(
        self, store: Store, flush_every: float = 0.5, board: Board | None = None,
        quiet: Quiet | None = None,
    ) -> None:  # fmt: skip
        self.store = store
        self.flush_every = flush_every
        self.board = board
        self.quiet = quiet  # the server's fan-outs, which the flush stands aside for
        self._lock = threading.Lock()
        self._known = {(c.env, c.consumer_id): _Entry.of(c) for c in store.consumers()}
        self._dirty: set[tuple[str, str]] = set()
        # monotonic moments of the oldest report in _dirty, and in the flush writing now (0: none)
        self._dirty_since = self._writing_since = 0.0
        self._flushing = threading.Lock()  # one flush at a time (the loop's, the last one's)
        self._shared: dict[tuple[str, str], Consumer] = {}  # as every server flushed them
        self._shared_at = 0.0
        self._reading = threading.Lock()  # one read of _shared at a time: they merge in order
        self._written = -1  # the newest write number read (-1: nothing read yet)
        self._own: set[int] = set()  # numbers of this server's writes not read past yet
        self._read_started = 0.0  # monotonic: when the newest read of _shared began
        self._asked: asyncio.Event | None = None  # set to flush now, not at the next period
        self.reports = 0

    def report(
        self,
        env: str,
        consumer_id: str,
        *,
        name: str,
        version: int | None,
        content_hash: str | None,
        now: float | None = None,
        kind: str = "sdk",
        health: tuple[str | None, str | None] = (None, None),
        metrics: dict[str, float] | None = None,
    ) -> None:
        """Record that ``consumer_id`` (an ``sdk`` or ``agent`` ``kind``) serves ``version`` of
        ``env`` now, with ``health`` = (ok/failing/None, detail) from an agent's host checks,
        and the business ``metrics`` it reported while serving it."""
        check_identity(consumer_id, name)
        check_kind(kind)
        now = time.time() if now is None else now
        key = (env, consumer_id)
        with self._lock:
            entry = self._known.get(key)
            if entry is None:
                entry = self._known[key] = self._new_entry(key, name, now)
            if (entry.version, entry.content_hash) != (version, content_hash):
                entry.version, entry.content_hash, entry.since = version, content_hash, now
            entry.name, entry.seen_at = name or consumer_id, now
            entry.kind, (entry.health, entry.detail) = kind, health
            entry.left_at = None
            if metrics:
                entry.take(metrics, now)
            self._mark(key)
            self.reports += 1

    def _new_entry(self, key: tuple[str, str], name: str, now: float) -> _Entry:
        """A consumer this server has not heard from: first seen now, unless another server
        heard from it earlier (then as that one says, so memory and store agree)."""
        entry = _Entry(*key, name, now)
        shared = self._shared.get(key)
        if shared is not None:
            entry.first_seen = earliest(shared.first_seen, now)
        return entry

    def touch(self, env: str, consumer_id: str, now: float | None = None) -> bool:
        """Record only that ``consumer_id`` is still there (a long-poll that ended unchanged);
        False when it is not known here. What it serves stays as its newest report said: the
        headers of a request held for 30 s may be older than a report sent meanwhile."""
        now = time.time() if now is None else now
        key = (env, consumer_id)
        with self._lock:
            entry = self._known.get(key)
            if entry is None:
                return False
            if entry.left_at is not None:
                return True
            entry.seen_at = now
            self._mark(key)
            self.reports += 1
        return True

    def leave(self, env: str, consumer_id: str, now: float | None = None) -> bool:
        """``consumer_id`` stopped cleanly (an agent on SIGTERM): it counts as gone at once,
        here and, after the next flush, on every server, instead of after ``STALE_AFTER``. Its
        next report brings it back. False when it is not known here."""
        now = time.time() if now is None else now
        key = (env, consumer_id)
        with self._lock:
            entry = self._known.get(key)
            self._shared.pop(key, None)
            if entry is None:
                return False
            entry.seen_at, entry.left_at = now - STALE_AFTER - 1.0, now
            self._mark(key)
        return True

    def _mark(self, key: tuple[str, str]) -> None:
        """``key`` has news for the store (call under the lock). The board hears only when
        this server goes from holding nothing unwritten to holding something."""
        self._dirty.add(key)
        if not self._dirty_since:
            self._dirty_since = time.monotonic()
            self._tell_board()

    def _tell_board(self) -> None:
        """Since when this server holds reports not in the store: the older of those being
        written now and those waiting (call under the lock)."""
        if self.board is not None:
            held = [moment for moment in (self._writing_since, self._dirty_since) if moment]
            self.board.holding(min(held, default=0.0))

    def of(self, env: str) -> list[Consumer]:
        """The consumers of ``env``: this server's reports and every other server's."""
        return [consumer for consumer in self.all() if consumer.env == env]

    def all(self) -> list[Consumer]:
        """Every consumer known here or to another server on the store, newest report each."""
        with self._lock:
            merged = {key: entry.record() for key, entry in self._known.items()}
            gone = {key: entry.left_at for key, entry in self._known.items()
                    if entry.left_at is not None}  # fmt: skip
            shared = list(self._shared.items())
        for key, consumer in shared:
            mine = merged.get(key)
            if mine is None:
                merged[key] = consumer
                continue
            if consumer.seen_at <= gone.get(key, 0.0):  # another server's report from before
                continue  # it said here that it stopped: it stays gone
            first_seen = earliest(mine.first_seen, consumer.first_seen)
            newer = consumer if consumer.seen_at > mine.seen_at else mine
            merged[key] = (newer if newer.first_seen == first_seen
                           else replace(newer, first_seen=first_seen))  # fmt: skip
        return list(merged.values())

    def gather(self, read_within: float | None = None) -> None:
        """Count here what every server heard, before answering from the fleet. Reads the
        store only (and asks sibling workers to write theirs).

        Every worker of this ``serve --workers`` first writes what it heard before now (see
        :mod:`lastgood.server.siblings`), and the store is read again when one wrote since
        the last read. Other servers' reports are as last read, or read again when that read
        is older than ``read_within`` seconds (None: as the background reads them, every
        :data:`SHARE_EVERY`). One server alone holds all its reports in memory already.
        A store that fails leaves the reports as they were: the answer says what is known."""
        if self.board is not None:
            self.board.settle(time.monotonic())
            if self.board.wrote_since(self._read_started):
                read_within = 0.0
        if read_within is not None:
            with contextlib.suppress(StoreError):
                self.read_shared(read_within)

    def read_shared(self, older_than: float = 0.0, now: float | None = None) -> None:
        """Read what other servers flushed since the last read (the first read: every
        consumer heard from within ``STALE_AFTER``), unless the last read is younger than
        ``older_than`` seconds; consumers silent for ``STALE_AFTER`` drop out. Reads the store
        only."""
        now = time.time() if now is None else now
        if now - self._shared_at < older_than:
            return
        with self._reading:
            self._read_started = time.monotonic()
            with self._lock:
                after, own = self._written, set(self._own)
            first = after < 0
            rows, newest = self.store.consumers_written_after(
                after, skip=own, seen_since=now - STALE_AFTER if first else None
            )
            cutoff = now - STALE_AFTER
            with self._lock:
                shared = {} if first else self._shared
                shared.update(((c.env, c.consumer_id), c) for c in rows)
                self._shared = {key: c for key, c in shared.items() if c.seen_at >= cutoff}
                self._written = max(after, newest)
                self._own = {number for number in self._own if number > self._written}
                self._shared_at = now

    def flush(self, *, stand_aside: bool = True) -> int:
        """Write what changed since the last flush; returns how many. Up to
        :data:`FLUSH_PART` consumers a transaction, and before each part the flush waits while
        the server writes a new version to its held reads (:mod:`lastgood.server.quiet`), at
        most :data:`~lastgood.server.quiet.LONGEST` in all: a switch that lands during a flush
        is then slowed by one part at most. Not with ``stand_aside=False``: a sibling worker
        is waiting for these reports. The board (workers) says meanwhile that those reports
        are held, and then that they are not."""
        quiet = self.quiet if stand_aside else None
        deadline = time.monotonic() + (quiet.longest if quiet is not None else 0.0)
        with self._flushing:
            with self._lock:
                keys = list(self._dirty)
                self._dirty.clear()
                self._writing_since, self._dirty_since = self._dirty_since, 0.0
            done = written = 0
            try:
                while done < len(keys):
                    part = keys[done : done + FLUSH_PART]
                    if quiet is not None:
                        quiet.wait(deadline)
                    written += self._write_part(part)
                    done += len(part)
            except Exception:
                with self._lock:  # the part that failed and those after it: the next flush
                    self._dirty.update(keys[done:])
                    held = [m for m in (self._writing_since, self._dirty_since) if m]
                    self._dirty_since, self._writing_since = min(held, default=0.0), 0.0
                    self._tell_board()
                raise
            with self._lock:
                self._writing_since = 0.0
                self._tell_board()
        return written

    def _write_part(self, keys: list[tuple[str, str]]) -> int:
        """Write the newest reports of ``keys`` in one transaction; returns how many."""
        with self._lock:
            entries = [self._known[key] for key in keys if key in self._known]
            rows = [entry.record() for entry in entries if entry.left_at is None]
            left = [entry.record() for entry in entries if entry.left_at is not None]
        number = self.store.save_consumers(rows, leaving=left)
        if self.board is not None and (rows or left):  # before it stops holding them: a
            self.board.wrote(time.monotonic())  # sibling then knows to read them
        with self._lock:
            if number > max(self._written, 0) and len(self._own) < MAX_OWN:  # not to be
                self._own.add(number)  # read back as another server's (past MAX_OWN it is)
        return len(rows) + len(left)

    def flush_soon(self) -> None:
        """Flush now rather than at the next period (a sibling worker answers from the fleet;
        called on the event loop, by its signal handler)."""
        if self._asked is not None:
            self._asked.set()

    def forget_old(self, now: float | None = None) -> None:
        cutoff = (time.time() if now is None else now) - FORGET_AFTER
        with self._lock:
            for key in [k for k, entry in self._known.items() if entry.seen_at < cutoff]:
                del self._known[key]
        self.store.forget_consumers(seen_before=cutoff)

    async def run(self) -> None:
        """Flush and read the other servers' reports forever; forget consumers silent for a
        week once an hour."""
        last_forget = 0.0
        self._asked = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._asked.wait(), self.flush_every)
            asked = self._asked.is_set()  # a sibling waits for it: no standing aside
            self._asked.clear()
            flush = functools.partial(self.flush, stand_aside=not asked)
            for step in (flush, self._read_shared_now):  # one failing never stops the other
                with contextlib.suppress(Exception):  # the store is down: keep them, try again
                    await asyncio.to_thread(step)
            if time.time() - last_forget > 3600:
                last_forget = time.time()
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.forget_old)

    def _read_shared_now(self) -> None:
        due = time.time() - self._shared_at >= SHARE_EVERY
        if due and self.quiet is not None:  # what another server wrote can wait for a fan-out
            self.quiet.wait()
        self.read_shared(SHARE_EVERY)
