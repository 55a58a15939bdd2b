"""The watcher's loop: one lease per store, cycles on a fixed beat, a clean stop on SIGTERM.

Every step of a cycle is guarded on its own: a failing drift check never stops the health
checks of the next environment, and nothing a step raises ends the watcher. What the watcher
cannot do becomes a ``watch-alert`` that repeats until resolved. A watchdog thread notices a
cycle that runs longer than ``stall`` (a hung check, a frozen disk) and says so while the cycle
is still stuck, since the loop itself cannot.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lastgood import schedule
from lastgood.errors import LastgoodError, LeaseLostError, LockedError, StoreError
from lastgood.events import Event, EventKind
from lastgood.operations.lease import env_is_busy
from lastgood.project import Project
from lastgood.record import Record, field
from lastgood.rows import EventRecord, Lease
from lastgood.units import format_duration
from lastgood.watch import drift as drift_module
from lastgood.watch.alerts import Problems
from lastgood.watch.health import HealthWatch

WATCH_LEASE = "watch"
RETENTION_EVERY = 3600.0  # how often document retention runs on its own, in seconds


def _key_of(record: EventRecord) -> str | None:
    try:
        data = json.loads(record.data or "{}")
    except ValueError:
        return None
    key = data.get("key") if isinstance(data, dict) else None
    return key if isinstance(key, str) else None


class CycleReport(Record, frozen=False):
    """What one cycle did, per environment and step, for ``--json`` and the tests."""

    number: int
    started_at: float
    finished_at: float = 0.0
    health: dict[str, str] = field(default_factory=dict)
    drift: dict[str, str] = field(default_factory=dict)
    drills: dict[str, str] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)
    requests: dict[str, str] = field(default_factory=dict)
    digest: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.finished_at - self.started_at


class Watcher:
    """Watches every environment of ``project`` until stopped."""

    def __init__(
        self,
        project: Project,
        *,
        interval: float | None = None,
        cycles: int | None = None,
        wait: bool = False,
        on_cycle: Callable[[CycleReport], None] | None = None,
    ) -> None:
        self.project = project
        self.settings = project.config.watch
        self.interval = interval or self.settings.interval
        self.cycles = cycles
        self.wait = wait
        self.on_cycle = on_cycle
        self.stop = threading.Event()
        self.problems = Problems(self.emit, self.settings.alert_every)
        self.health = {env: HealthWatch(project, env, self.problems) for env in self._envs()}
        self.started_at = time.time()
        self.lease: Lease | None = None
        self.last_digest: float | None = None
        self._announced: set[str] = set()
        self._retention_at = 0.0
        self._cycle_started: float | None = None
        self._step = ""

    def _envs(self) -> list[str]:
        return list(self.project.config.environments)

    # ---- events that must get out even when the store is down --------------------------------

    def emit(self, event: Event) -> None:
        """Emit through the ledger; when the store cannot take it, to the subscribers alone."""
        try:
            self.project.emit(event)
        except StoreError:
            self.project.events.announce(event)

    def emit_once(self, event: Event) -> None:
        """Emit ``event`` unless its key was already announced, by this watcher or by one before
        it (reminders are new keys).

        The key travels in the event's data, so the ledger remembers what was reported: a
        restarted watcher does not report the same hand edit or the same day's overdue drill
        again, and the ledger and the digest count it once."""
        assert event.key is not None
        if event.key in self._announced or self._in_ledger(event):
            self._announced.add(event.key)
            return
        self._announced.add(event.key)
        self.emit(
            Event(
                event.kind, event.message, env=event.env, version=event.version,
                deployment=event.deployment, data={**event.data, "key": event.key},
                key=event.key,
            )
        )  # fmt: skip

    def _in_ledger(self, event: Event) -> bool:
        """The ledger already holds an event of this kind with this key (a store that cannot
        answer counts as no: an alert twice beats an alert lost)."""
        try:
            since = self._news_since(event)
            found = self.project.store.events(
                event.env, kind=str(event.kind), limit=200, since=since
            )
        except StoreError:
            return False
        return any(_key_of(record) == event.key for record in found)

    def _news_since(self, event: Event) -> float | None:
        """A drift is news again once the environment was switched or repaired since it was
        reported: the same hand edit made again later is a new incident."""
        if event.kind is not EventKind.DRIFT_DETECTED or event.env is None:
            return None
        from lastgood.watch.health import last_switch

        repaired = self.project.store.events(
            event.env, kind=EventKind.DRIFT_REPAIRED.value, limit=1
        )
        return max(last_switch(self.project, event.env), repaired[0].at if repaired else 0.0)

    # ---- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        """Take the watcher lease, cycle until stopped, release. Returns the exit code."""
        self._take_lease()
        if self.lease is None:
            return 0  # stopped while waiting for the lease
        restore_signals = self._handle_signals()
        watchdog = threading.Thread(target=self._watchdog, name="lastgood-watchdog", daemon=True)
        watchdog.start()
        code = 0
        envs = ", ".join(self._envs()) or "no environments"
        self.emit(
            Event(
                EventKind.WATCH_STARTED,
                f"watching {envs} every {format_duration(self.interval)}",
                data={"interval": self.interval, "pid": self.lease.pid},
            )
        )
        try:
            number = 0
            while not self.stop.is_set():
                number += 1
                began = time.monotonic()
                self.cycle(number)
                if self.cycles is not None and number >= self.cycles:
                    break
                self.stop.wait(max(0.0, self.interval - (time.monotonic() - began)))
        except LeaseLostError as exc:
            self.emit(Event(EventKind.WATCH_ALERT, f"the watcher stops: {exc.message}"))
            code = 1
        finally:
            self.stop.set()
            restore_signals()
            self._release()
        return code

    def cycle(self, number: int) -> CycleReport:
        """One pass over every environment, the documents and the schedules."""
        report = CycleReport(number, time.time())
        self._cycle_started = time.monotonic()
        try:
            if not self._renew(report):
                return report
            for env in self._envs():
                # drift first: when a hand edit breaks the checks, the edit is the cause, and
                # rolling back to another version would withdraw an innocent one
                with self._step_guard(report, f"drift:{env}"):
                    report.drift[env] = self._drift(env)
                with self._step_guard(report, f"health:{env}"):
                    drifted = report.drift.get(env) == "detected"
                    report.health[env] = self.health[env].step(number, drifted=drifted)
                with self._step_guard(report, f"drill:{env}"):
                    report.drills[env] = self._drills(env)
            with self._step_guard(report, "requests"):
                report.requests = self._requests()
            with self._step_guard(report, "reminders"):
                report.requests.update(self._reminders())
            with self._step_guard(report, "documents"):
                report.documents = self._documents()
            with self._step_guard(report, "digest"):
                report.digest = self._digest()
            self.problems.resolve("stalled", "the watcher's cycles run on time again")
        finally:
            self._cycle_started = None
            report.finished_at = time.time()
            report.problems = self.problems.open_names()
        if self.on_cycle is not None:
            self.on_cycle(report)
        return report

    @contextmanager
    def _step_guard(self, report: CycleReport, step: str) -> Iterator[None]:
        """Run one step; turn whatever it raises into a lasting problem, never a crash."""
        self._step = step
        try:
            yield
        except LeaseLostError:
            raise
        except StoreError as exc:
            self._store_problem(exc)
        except LastgoodError as exc:
            self.problems.raise_(f"step:{step}", f"{step} failed: {exc.message}")
        except Exception as exc:  # the watcher must outlive any one step's surprise
            self.problems.raise_(f"step:{step}", f"{step} failed: {type(exc).__name__}: {exc}")
        else:
            self.problems.resolve(f"step:{step}")
        finally:
            self._step = ""

    # ---- the lease ----------------------------------------------------------------------------

    def _take_lease(self) -> None:
        from lastgood import holder

        while not self.stop.is_set():
            try:
                self.lease, _ = self.project.store.acquire_lease(
                    WATCH_LEASE,
                    purpose="watch",
                    holder_name=holder.author(self.project.actor),
                    ttl=self.settings.lease,
                )
                return
            except LockedError as exc:
                if not self.wait:
                    raise LockedError(
                        f"another watcher is running on this store: {exc.message}",
                        hint="one watcher per store; pass --wait to take over when it stops",
                    ) from None
                self.stop.wait(min(self.settings.lease / 4, 5.0))

    def _renew(self, report: CycleReport) -> bool:
        """Renew the lease; a store that cannot be reached is a lasting problem, not a crash."""
        assert self.lease is not None
        try:
            self.lease = self.project.store.renew_lease(self.lease, self.settings.lease)
        except StoreError as exc:
            self._store_problem(exc)
            return False
        self.problems.resolve("store", "the watcher reaches the store again")
        return True

    def _store_problem(self, exc: StoreError) -> None:
        self.problems.raise_("store", f"the watcher cannot reach the store: {exc.message}")

    def _release(self) -> None:
        if self.lease is None:
            return
        self.emit(Event(EventKind.WATCH_STOPPED, "the watcher stopped"))
        with contextlib.suppress(StoreError):  # unreachable: it expires by itself
            self.project.store.release_lease(self.lease)
        self.lease = None

    # ---- signals and the watchdog -------------------------------------------------------------

    def _handle_signals(self) -> Callable[[], None]:
        """SIGTERM and SIGINT end the watcher after the step in progress (a rollback that has
        started always finishes). Only the main thread may install handlers."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def stop(_signum: int, _frame: Any) -> None:
            self.stop.set()

        for sig in previous:
            signal.signal(sig, stop)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _watchdog(self) -> None:
        """Raise ``stalled`` while a cycle runs longer than ``stall``; repeats like any alert."""
        beat = min(1.0, self.settings.stall / 4)
        while not self.stop.wait(beat):
            started = self._cycle_started
            if started is None:
                continue
            running = time.monotonic() - started
            if running > self.settings.stall:
                where = f" in {self._step}" if self._step else ""
                self.problems.raise_(
                    "stalled",
                    f"a watch cycle has been running for {format_duration(running)}{where}, "
                    f"longer than stall = {format_duration(self.settings.stall)}",
                )

    # ---- steps --------------------------------------------------------------------------------

    def _drift(self, env: str) -> str:
        """Compare what ``env`` serves with the ledger; alert with the diff, or restore."""
        project = self.project
        if env_is_busy(project, env, time.time()):
            return "busy"
        found = drift_module.detect(project, env)
        if found is None:
            return "none"
        settings = project.config.environment(env)
        action = "restore" if settings.on_drift == "restore" else "alert"
        self.emit_once(
            Event(
                EventKind.DRIFT_DETECTED,
                f"{env} serves content that differs from v{found.version}: {found.summary()}"
                + ("; restoring it" if action == "restore" else "; on_drift = alert: left as is"),
                env=env,
                version=found.version,
                data={
                    "diff": found.diff,
                    "modified": list(found.modified),
                    "missing": list(found.missing),
                    "extra": list(found.extra),
                    "expected_hash": found.expected_hash,
                    "actual_hash": found.actual_hash,
                    "action": action,
                },
                key=f"drift-detected:{env}:{found.version}:{found.actual_hash}",
            )
        )
        if action == "alert":
            return "detected"
        return self._restore(env, found.version)

    def _restore(self, env: str, version: int) -> str:
        from lastgood.operations.lease import EnvLease
        from lastgood.operations.place import Place
        from lastgood.operations.restore import ensure_intact

        place = Place(self.project, env)
        try:
            with EnvLease(place, "watch"):
                live = place.target.live()
                if live is None or live.version != version:
                    return "changed"  # a deploy or rollback got in first: look again next cycle
                ensure_intact(place, place.store.version(version), deployment=None)
        except LockedError:
            return "busy"
        return "restored"

    def _drills(self, env: str) -> str:
        """Run a scheduled drill when one is due; remind people of an overdue one."""
        project = self.project
        settings = project.config.environment(env)
        if settings.protected:
            return "protected"
        if project.store.env_state(env).live_version is None:
            return "nothing-live"
        now = time.time()
        records = project.store.deployments(env, limit=200)
        drills = [r for r in records if r.kind == "drill"]
        if settings.drill_schedule and schedule.is_due(
            settings.drill_schedule,
            drills[0].requested_at if drills else None,
            now,
            since=self.started_at,
        ):
            if env_is_busy(project, env, now):
                return "busy"
            return self._run_drill(env)
        from lastgood.operations.status import drill_standing

        standing = drill_standing(settings, records, now)
        if standing.overdue is None:
            return "ok"
        scheduled = settings.drill_schedule
        self.emit_once(
            Event(
                EventKind.DRILL_OVERDUE,
                standing.overdue
                + (f", or wait for drill_schedule {scheduled!r}" if scheduled else ""),
                env=env,
                data={"age": standing.age, "drill_every": settings.drill_every},
                key=f"drill-overdue:{env}:{int(now // 86400)}",  # a reminder a day
            )
        )
        return "overdue"

    def _run_drill(self, env: str) -> str:
        from lastgood.operations.drill import drill

        schedule_text = self.project.config.environment(env).drill_schedule
        result = drill(self.project, env, reason=f"scheduled drill ({schedule_text})")
        return "drill-passed" if result.passed else "drill-failed"

    def _requests(self) -> dict[str, str]:
        """Apply the change requests whose scheduled time has come (a frozen environment holds
        them until the freeze ends), and expire those whose time is up."""
        from lastgood.operations.requests import apply_due_requests

        return apply_due_requests(self.project)

    def _reminders(self) -> dict[str, str]:
        """Remind approvers of requests waiting longer than their environment's ``remind``."""
        from lastgood.operations.requests import remind_waiting

        return dict.fromkeys(remind_waiting(self.project), "reminded its approvers")

    def _documents(self) -> dict[str, str]:
        """Track every ``[[watch.document]]``; one unreadable document is its own problem."""
        if not self.settings.documents:
            return {}
        from lastgood import documents

        outcome: dict[str, str] = {}
        for result in documents.track_all(self.project):
            name = result.name
            if result.error is not None:
                self.problems.raise_(
                    f"document:{name}", f"document {name!r} cannot be read: {result.error.message}"
                )
                outcome[name] = "error"
                continue
            self.problems.resolve(f"document:{name}", f"document {name!r} can be read again")
            outcome[name] = result.status
        now = time.time()
        if now - self._retention_at >= RETENTION_EVERY:  # age out documents that stopped changing
            self._retention_at = now
            for spec in self.settings.documents:
                documents.apply_retention(self.project, spec, now=now)
        return outcome

    def _digest(self) -> str | None:
        """Send the status digest when its schedule says so."""
        expression = self.settings.digest
        if not expression:
            return None
        now = time.time()
        if not schedule.is_due(expression, self.last_digest, now, since=self.started_at):
            return None
        from lastgood.operations import report

        digest = report.build(self.project, since=now - self.settings.digest_period, until=now)
        report.send(self.project, digest)
        self.last_digest = now
        return "sent"
