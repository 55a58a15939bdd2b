"""Health between deploys: the watcher's check rounds and what it does when they trip.

A trip is ``failures`` failed rounds in a row. Within the ``guard`` window after the deploy that
put the live version there, the change is the likely cause: lastgood rolls back to last known
good by itself. Outside it, ``on_failure`` decides: ``alert`` (the default) tells people and
touches nothing; ``rollback`` rolls back too. After an automatic rollback the watcher never
rolls back again on that environment until its checks have passed once, so a broken world
(a database down for everyone) cannot make it walk back through every version.
"""

from __future__ import annotations

import contextlib
import json
import time

from lastgood.errors import LastgoodError, LockedError
from lastgood.events import EventKind
from lastgood.operations.checking import Round, build_checks, live_context, run_round
from lastgood.operations.lease import env_is_busy
from lastgood.operations.place import Place
from lastgood.project import Project
from lastgood.record import Record
from lastgood.rows import CheckRecord, Deployment
from lastgood.units import format_duration
from lastgood.watch.alerts import Problem, Problems


class HealthState(Record, frozen=False):
    """What the watcher remembers about one environment's health between cycles."""

    failures: int = 0
    first_failed_at: float | None = None
    held_back: bool = False  # rolled back automatically; no more until a round passes


class Trip(Record):
    """The decision taken when the checks tripped."""

    action: str  # "rollback", "alert" or "held-back"
    why: str
    deploy: Deployment | None


def latest_deploy(project: Project, env: str, live_version: int) -> Deployment | None:
    """The deploy that made ``live_version`` live, when it is the latest change on ``env``."""
    for record in project.store.deployments(env, limit=20):
        if record.status in ("unchanged", "refused"):
            continue
        if record.kind == "deploy" and record.to_version == live_version:
            return record if record.activated_at is not None else None
        if record.kind in ("deploy", "rollback", "auto-rollback", "offline-rollback"):
            return None  # something else changed the environment after that deploy
    return None


def decide(
    project: Project,
    env: str,
    live_version: int,
    state: HealthState,
    at: float,
    *,
    drifted: bool = False,
) -> Trip:
    """Roll back or only alert, by drift, the guard window and ``on_failure``."""
    settings = project.config.environment(env)
    deploy = latest_deploy(project, env, live_version)
    if drifted:
        return Trip(
            "alert",
            f"the live files differ from v{live_version} (edited by hand, see drift-detected): "
            "the edit is the likely cause, not the version, and on_drift = alert leaves it to "
            f"a person; 'lastgood deploy {env} --version v{live_version}' (or on_drift = "
            '"restore") puts the files back',
            deploy,
        )
    if state.held_back:
        return Trip("held-back", "lastgood already rolled back here and is waiting for the "
                    "checks to pass once before it acts again", deploy)  # fmt: skip
    if deploy is not None and deploy.activated_at is not None:
        age = at - deploy.activated_at
        if age <= settings.guard:
            return Trip(
                "rollback",
                f"within the guard window: v{live_version} went live {format_duration(age)} ago "
                f"(deploy #{deploy.id}, guard {format_duration(settings.guard)})",
                deploy,
            )
    if settings.on_failure == "rollback":
        return Trip("rollback", "outside the guard window, and on_failure = rollback", deploy)
    return Trip("alert", "outside the guard window, and on_failure = alert", deploy)


RESUME_WINDOW = 600.0  # a failing streak older than this is history, not a streak to continue


def failing_streak(records: list[CheckRecord], now: float, since: float) -> list[float]:
    """When each of the newest consecutive failing watch rounds ran, newest first. A streak
    stops at a passing round, at ``since`` (the last switch: a new version starts afresh) and
    at RESUME_WINDOW ago."""
    rounds: dict[float, bool] = {}
    for record in records:  # newest first; one round's results share its time
        if record.phase == "watch":
            rounds[record.at] = rounds.get(record.at, True) and record.ok
    streak: list[float] = []
    for at, ok in rounds.items():
        if ok or at < since or now - at > RESUME_WINDOW:
            break
        streak.append(at)
    return streak


def last_switch(project: Project, env: str) -> float:
    """When the target of ``env`` last changed version, as the ledger says (0 when never)."""
    for record in project.store.deployments(env, limit=20):
        if record.activated_at is not None:
            return record.activated_at
    return 0.0


class HealthWatch:
    """Runs one environment's checks each cycle and applies the policy."""

    def __init__(self, project: Project, env: str, problems: Problems) -> None:
        self.project = project
        self.env = env
        self.place = Place(project, env)  # resolved once for every cycle of this watcher
        self.problems = problems
        self.state = HealthState()
        # The first round, and the first passing round after failures, are kept in the ledger
        # (status shows the latest kept round); other passing rounds are not.
        self._record_passing = True
        self._version: int | None = None  # the live version the failure count is about
        with contextlib.suppress(LastgoodError):  # a store or target down: the loop alerts it
            self._resume()

    def _resume(self) -> None:
        """Carry on from the watcher before this one, as the ledger tells it: a health failure
        it announced stays open (not announced again; its recovery will be), a streak of
        failing rounds keeps counting (so ``watch --once`` from cron still trips), and an
        automatic rollback it made still holds back the next one. Reads only."""
        store, name = self.project.store, f"health:{self.env}"
        live = self.project.target(self.env).live()
        self._version = live.version if live else None
        since = last_switch(self.project, self.env)
        streak = failing_streak(store.check_records(env=self.env, limit=200), time.time(), since)
        self.state.failures = len(streak)
        self.state.first_failed_at = streak[-1] if streak else None
        failed = store.events(self.env, kind=EventKind.HEALTH_FAILED.value, limit=1)
        recovered = store.events(self.env, kind=EventKind.HEALTH_RECOVERED.value, limit=1)
        if not failed or (recovered and recovered[0].at >= failed[0].at):
            return
        data = json.loads(failed[0].data or "{}")
        since, repeat = float(data.get("since", failed[0].at)), int(data.get("repeat", 0))
        self.problems.resume(
            name,
            Problem(since, self.env, EventKind.HEALTH_FAILED, EventKind.HEALTH_RECOVERED,
                    failed[0].message, announced=repeat),
        )  # fmt: skip
        latest = store.deployments(self.env, limit=1)
        self.state.held_back = bool(latest) and (latest[0].kind, latest[0].source) == (
            "auto-rollback", "watch",
        )  # fmt: skip

    def step(self, cycle: int, *, drifted: bool = False) -> str:
        """One cycle; returns what happened, in a word, for the cycle report. ``drifted``: the
        live files differ from the ledger's version and were left so (``on_drift = alert``)."""
        project, env, place = self.project, self.env, self.place
        settings = place.settings
        if not settings.checks:
            return "no-checks"
        now = time.time()
        if env_is_busy(project, env, now):
            return "busy"
        live = place.target.live()
        if live is None:
            return "nothing-live"
        if live.version != self._version:  # a new version starts its own count
            self.state.failures, self.state.first_failed_at = 0, None
            self._version = live.version
        try:
            checks = build_checks(settings.checks)
        except LastgoodError as exc:
            self.problems.raise_(
                f"checks:{env}", f"the checks of {env} cannot run: {exc.message}", env=env
            )
            return "checks-broken"
        self.problems.resolve(f"checks:{env}", f"the checks of {env} run again")
        done = run_round(
            place, checks, live_context(place, live), phase="watch", number=cycle,
            deployment=None, record_passing=self._record_passing,
        )  # fmt: skip
        self._record_passing = False
        if done.ok:
            return self._passed(live.version)
        self._record_passing = True
        return self._failed(live.version, done, drifted)

    def _passed(self, version: int) -> str:
        recovered = self.state.failures > 0 or self.state.held_back
        self.state = HealthState()
        self.problems.resolve(
            f"health:{self.env}", f"the checks of {self.env} pass again on v{version}"
        )
        return "recovered" if recovered else "ok"

    def _failed(self, version: int, done: Round, drifted: bool) -> str:
        state = self.state
        state.failures += 1
        if state.first_failed_at is None:
            state.first_failed_at = done.at
        if state.failures < self.place.settings.failures:
            return "failing"
        trip = decide(self.project, self.env, version, state, done.at, drifted=drifted)
        self.problems.raise_(
            f"health:{self.env}",
            f"the checks of {self.env} fail on v{version} ({state.failures} rounds in a row: "
            f"{done.failed_details()}); {trip.why}"
            + (f". To roll back: lastgood rollback {self.env}" if trip.action == "alert" else ""),
            env=self.env,
            kind=EventKind.HEALTH_FAILED,
            recovered=EventKind.HEALTH_RECOVERED,
            data={
                "failed": [r.name for r in done.failed],
                "action": trip.action,
                "version": version,
            },
        )
        if trip.action != "rollback":
            return trip.action
        return self._roll_back(version, done, trip)

    def _roll_back(self, version: int, done: Round, trip: Trip) -> str:
        from lastgood.operations.rollback import rollback

        reason = f"health checks failed on v{version}: {done.failed_names()}; {trip.why}"
        try:
            outcome = rollback(
                self.project, self.env, reason=reason, source="watch", trigger_at=done.at,
                automatic=True,
            )  # fmt: skip
        except LockedError:
            return "busy"  # a person or a deploy got there first; look again next cycle
        except LastgoodError as exc:
            self.problems.raise_(
                f"rollback:{self.env}",
                f"lastgood could not roll {self.env} back: {exc.message}",
                env=self.env,
            )
            return "rollback-failed"
        self.problems.resolve(f"rollback:{self.env}")
        self.state = HealthState(held_back=True)
        return "rolled-back" if outcome.exit_code in (0, 3) else "restore-unverified"
