"""The notifier: an event subscriber that delivers beside the work, never in front of it.

``emit`` only matches the event against the routes and queues a job; one worker thread renders
and sends, so a deploy or rollback never waits for a mail server. For each destination of a
job the worker checks the delivery log (a key already ``sent`` there is recorded ``suppressed``),
then makes up to ``retries + 1`` attempts, each bounded by ``timeout``, pausing longer after each
failure. Every attempt is written to the store's delivery log. :meth:`Notifier.close` waits at
most ``drain`` seconds for the queue; what is left is recorded ``abandoned``.

Thread safety: the worker uses the project's store, which is safe to share (the SQLite store
serialises its one connection behind a lock, the SQLAlchemy store checks out a pooled connection
per transaction); it is opened on the emitting thread before the first job is queued. Every
write to the log happens under the notifier's lock after checking that :meth:`close` has not
given up, so nothing is written to a store the project has closed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lastgood.config import Config
from lastgood.config_notify import Route
from lastgood.errors import LastgoodError
from lastgood.events import Event
from lastgood.notify.routing import dedupe_key, wants
from lastgood.record import Record, field

if TYPE_CHECKING:
    from lastgood.notify.message import Message
    from lastgood.store.core import Store

log = logging.getLogger("lastgood.notify")

SENT, FAILED, SUPPRESSED, ABANDONED = "sent", "failed", "suppressed", "abandoned"
PENDING = "pending"
"""Not a logged status: what :func:`lastgood.operations.notify.send` reports for a destination still
being tried when its wait ends."""
BACKOFF = 0.5
"""Seconds before the first retry; each later pause doubles (0.5 s, 1 s, 2 s …)."""


class Result(Record):
    """Where one destination of one job ended: sent, failed, suppressed, abandoned, pending."""

    route: str
    destination: str
    event: str
    env: str | None
    key: str
    status: str
    attempts: int
    detail: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Job(Record, frozen=False):
    """One event on its way to one route; ``done`` is set when every destination has a result."""

    event: Event
    route: Route
    key: str
    dedupe: bool
    at: float
    results: dict[int, Result] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    attempt: int = 0
    """The attempt in flight (0 when none), so :meth:`Notifier.close` can record it."""
    destinations: list[str] = field(default_factory=list)
    """The masked destinations, once the worker has computed them."""

    def result_list(self) -> list[Result]:
        """Every destination's result; those still on their way are ``pending``."""
        return [
            self.results.get(index) or self._pending_result(index)
            for index in range(len(self.route.to))
        ]

    def _pending_result(self, index: int) -> Result:
        destination = self.destinations[index] if self.destinations else "(not yet tried)"
        return Result(
            self.route.name,
            destination,
            self.event.kind.value,
            self.event.env,
            self.key,
            PENDING,
            self.attempt,
            "still being delivered when the wait ended",
        )


class Notifier:
    """Delivers the project's events through ``[[notify.route]]``; see the module docstring."""

    def __init__(self, config: Config, store: Callable[[], Store]) -> None:
        """Deliver by ``config``'s routes; ``store`` opens the store for the delivery log on
        first use (it may raise LastgoodError: delivery goes on without the log). The project
        makes one and subscribes it; the notifier knows nothing of the project itself."""
        self.config = config
        self.settings = config.notify
        self._open = store
        self._cond = threading.Condition()
        self._pending: deque[Job] = deque()
        self._current: Job | None = None
        self._closing = False
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- the emitting side (any thread; never blocks on delivery) ----------------------------

    def __call__(self, event: Event) -> None:
        """The event-bus subscriber: queue ``event`` for every route that wants it."""
        self.submit(event)

    def submit(
        self, event: Event, *, routes: list[Route] | None = None, every: bool = False
    ) -> list[Job]:
        """Queue ``event`` for ``routes`` (default: all) that want it, or for all of them when
        ``every`` (``lastgood notify test``). Returns the jobs, to :meth:`wait` on."""
        offered = self.settings.routes if routes is None else routes
        chosen = [route for route in offered if every or wants(route, event)]
        if not chosen:
            return []
        self._open_store()
        key, dedupe = dedupe_key(event)
        jobs = [Job(event, route, key, dedupe, time.time()) for route in chosen]
        with self._cond:
            if self._closing:
                log.warning("notify: %s arrived after shutdown began; not sent", event.kind.value)
                return []
            self._pending.extend(jobs)
            self._start()
            self._cond.notify_all()
        return jobs

    def wait(self, jobs: list[Job], timeout: float) -> bool:
        """Wait until every job is done or ``timeout`` passes; True when all are done."""
        deadline = time.monotonic() + timeout
        return all(job.done.wait(max(0.0, deadline - time.monotonic())) for job in jobs)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for everything queued so far; True when delivered."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._current is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def bound(self, destinations: int) -> float:
        """The longest that delivering to ``destinations`` can take with every attempt timing
        out: what ``lastgood notify test`` waits at most."""
        attempts = self.settings.retries + 1
        pauses: float = sum(BACKOFF * 2**n for n in range(self.settings.retries))
        return destinations * (attempts * self.settings.timeout + pauses) + 1.0

    def close(self, drain: float | None = None) -> list[Result]:
        """Wait at most ``drain`` seconds (default ``[notify] drain``) for queued deliveries,
        then record what is left as ``abandoned`` and return those results. Idempotent."""
        limit = self.settings.drain if drain is None else drain
        deadline = time.monotonic() + limit
        with self._cond:
            if self._closed:
                return []
            self._closing = True
            self._cond.notify_all()
            while self._pending or self._current is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._abandon(limit)

    # ---- the worker thread -------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lastgood-notify", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending or self._closed:
                    return
                job = self._current = self._pending.popleft()
            try:
                self._process(job)
            except Exception as exc:  # the worker must survive anything a job does
                log.exception("notify: delivering %s failed unexpectedly", job.event.kind.value)
                self._fail_rest(job, f"internal error: {type(exc).__name__}: {exc}")
            with self._cond:
                if self._current is job:
                    self._current = None
                if len(job.results) == len(job.route.to):
                    job.done.set()
                self._cond.notify_all()

    def _process(self, job: Job) -> None:
        from lastgood.notify import delivery

        job.destinations = [delivery.mask(url) for url in job.route.to]
        message = self._render(job)
        for index, url in enumerate(job.route.to):
            if self._stop.is_set():
                return
            self._deliver(job, index, url, job.destinations[index], message)

    def _render(self, job: Job) -> Message:
        from lastgood.notify import context, message

        try:
            variables = context.build(
                job.event, job.route, at=job.at, config=self.config, store=self._store()
            )
            return message.render(job.event, job.route, variables, self.config.root)
        except Exception as exc:  # our own templates failing must not lose the alert either
            log.exception("notify: rendering %s failed", job.event.kind.value)
            env = f"[{job.event.env}] " if job.event.env else ""
            return message.Message(
                f"{env}{job.event.kind.value}",
                job.event.message + "\n",
                "text",
                note=f"message could not be rendered ({type(exc).__name__}); sent the event text",
            )

    def _deliver(self, job: Job, index: int, url: str, destination: str, message: Message) -> None:
        from lastgood.notify import delivery

        if job.dedupe and destination in self._already_sent(job):
            detail = f"key {job.key!r} was already sent to this destination"
            self._record(job, index, destination, 0, SUPPRESSED, detail, final=True)
            return
        attempts = self.settings.retries + 1
        for number in range(1, attempts + 1):
            job.attempt = number
            outcome = delivery.attempt(
                url,
                title=message.title,
                body=message.body,
                body_format=message.format,
                notify_type=message.severity,
                timeout=self.settings.timeout,
            )
            detail = "; ".join(filter(None, [outcome.detail, message.note]))
            if outcome.ok:
                self._record(job, index, destination, number, SENT, detail, final=True)
                return
            if number == attempts:
                break
            pause = BACKOFF * 2 ** (number - 1)
            retry = f"{detail}; retrying in {pause:g} s"
            self._record(job, index, destination, number, FAILED, retry, final=False)
            if self._stop.wait(pause):
                return
        gave_up = f"gave up after {attempts} attempt{'s' if attempts > 1 else ''}: {detail}"
        if self._record(job, index, destination, attempts, FAILED, gave_up, final=True):
            log.warning("notify: route %r to %s failed: %s", job.route.name, destination, gave_up)

    def _fail_rest(self, job: Job, detail: str) -> None:
        """Give every destination of ``job`` still without a result a ``failed`` one."""
        for index in range(len(job.route.to)):
            if index not in job.results:
                destination = job.destinations[index] if job.destinations else "(unknown)"
                self._record(job, index, destination, job.attempt, FAILED, detail, final=True)

    # ---- the delivery log --------------------------------------------------------------------

    def _open_store(self) -> None:
        """Open the store on the emitting thread, so the worker never races to create it."""
        self._store()

    def _store(self) -> Store | None:
        try:
            return self._open()
        except LastgoodError as exc:
            log.warning("notify: the delivery log is unavailable: %s", exc.message)
            return None

    def _already_sent(self, job: Job) -> set[str]:
        store = self._store()
        if store is None:
            return set()
        try:
            found = store.deliveries(key=job.key, route=job.route.name, status=SENT, limit=None)
        except LastgoodError as exc:
            log.warning("notify: cannot read the delivery log, not deduplicating: %s", exc)
            return set()
        return {d.destination for d in found}

    def _record(
        self,
        job: Job,
        index: int,
        destination: str,
        attempt: int,
        status: str,
        detail: str,
        *,
        final: bool,
    ) -> bool:
        """Write one attempt to the log (and, when ``final``, the destination's result).
        False when :meth:`close` already gave up on this job: nothing is written then."""
        with self._cond:
            if self._closed:
                return False
            self._write(job, destination, attempt, status, detail)
            if final:
                job.results[index] = Result(
                    job.route.name,
                    destination,
                    job.event.kind.value,
                    job.event.env,
                    job.key,
                    status,
                    attempt,
                    detail,
                )
            return True

    def _write(self, job: Job, destination: str, attempt: int, status: str, detail: str) -> None:
        store = self._store()
        if store is None:
            return
        try:
            store.record_delivery(
                route=job.route.name,
                destination=destination,
                event=job.event.kind.value,
                env=job.event.env,
                key=job.key,
                attempt=attempt,
                status=status,
                detail=detail,
            )
        except LastgoodError as exc:
            log.warning("notify: could not record a delivery to %s: %s", destination, exc)

    def _abandon(self, drain: float) -> list[Result]:
        """Under the lock: record every destination not yet finished as ``abandoned``."""
        if self._closed:
            return []
        left = ([self._current] if self._current is not None else []) + list(self._pending)
        self._pending.clear()
        abandoned: list[Result] = []
        detail = f"the process ended before delivery (waited {drain:g} s, [notify] drain)"
        for job in left:
            for index, url in enumerate(job.route.to):
                if index in job.results:
                    continue
                destination = job.destinations[index] if job.destinations else _masked_early(url)
                attempt = job.attempt if job is self._current else 0
                self._write(job, destination, attempt, ABANDONED, detail)
                job.results[index] = Result(
                    job.route.name,
                    destination,
                    job.event.kind.value,
                    job.event.env,
                    job.key,
                    ABANDONED,
                    attempt,
                    detail,
                )
                abandoned.append(job.results[index])
            job.done.set()
        self._closed = True
        self._stop.set()
        self._cond.notify_all()
        if abandoned:
            log.warning(
                "notify: %d deliveries abandoned after waiting %g s ([notify] drain)",
                len(abandoned),
                drain,
            )
        return abandoned


def _masked_early(url: str) -> str:
    """A destination the worker never reached: masked by apprise when it is loaded already,
    else only its scheme (importing apprise while the process exits would delay it)."""
    from lastgood.notify import delivery

    if delivery.loaded():
        return delivery.mask(url)
    return (url.split("://", 1)[0] if "://" in url else "?") + "://****"
