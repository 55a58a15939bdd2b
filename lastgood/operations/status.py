"""``status``, ``history`` and ``check``: where each environment stands, read from the target.

Status reads what the target really serves (and hashes it), compares it with the ledger and says
so when they disagree. ``lastgood status`` (a command someone runs to act on what it says)
reconciles first when no other process holds the environment's lease, so a status after a crash
already tells the truth. The server's pages and API reads ask with ``repair=False``: a viewer
looking must change nothing (reconcile may end an orphaned rollout, which moves consumers), so
they show the crashed state as it is, and the next write repairs it.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

from lastgood.config import Environment
from lastgood.errors import LockedError, NotFoundError, TargetError
from lastgood.freezes import ChangeCalendar, Closure
from lastgood.operations.checking import Round, build_checks, live_context, run_round
from lastgood.operations.lease import EnvLease
from lastgood.operations.place import Place
from lastgood.operations.reconcile import reconcile
from lastgood.project import Project
from lastgood.record import Record, as_dict, field
from lastgood.rows import Deployment, EventRecord, VersionInfo
from lastgood.targets import Release
from lastgood.targets.base import UNKNOWN
from lastgood.units import format_duration, plural


class EnvStatus(Record, frozen=False):
    """Everything ``status`` shows for one environment."""

    env: str
    target: str
    live_version: int | None
    live_hash: str | None
    actual_hash: str | None
    ledger_version: int | None
    last_good: int | None
    live_verdict: str | None
    health: str
    health_at: float | None
    last_change: dict[str, Any] | None
    budget: float
    # the verified rollbacks' two figures, newest first (docs/concepts.md, "Time to restore"):
    restores: list[float] = field(default_factory=list)  # time to restore: trigger → active
    verified: list[float] = field(default_factory=list)  # time to verified: trigger → verified
    # what the budget judges: time to verified, or time to restore where nothing verified
    # (no checks, an offline rollback): the digest's rule too
    judged: list[float] = field(default_factory=list)
    unverified_restores: int = 0
    checked: bool = True  # checks are configured: without, nothing is ever verified
    last_drill: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    lock: str | None = None
    live_commit: str | None = None  # the git commit the live version was taken from
    live_dirty: bool | None = None  # ... from a folder with uncommitted changes
    fleet: dict[str, Any] | None = None  # served environments: lastgood.operations.fleet
    rollout: dict[str, Any] | None = None  # a gradual rollout under way: RolloutStatus.to_json
    freeze: dict[str, Any] | None = None  # a closure in force, or one starting within a day
    # the target could not say what it serves (a tool down or hanging): what it said; the rest
    # is the ledger's view
    unreachable: str | None = None

    @property
    def drifted(self) -> bool:
        return self.actual_hash is not None and self.actual_hash != self.live_hash

    @property
    def live_unknown(self) -> bool:
        """The target cannot tell what it serves: not what lastgood put there (a drift)."""
        return self.actual_hash is not None and self.actual_hash.startswith(UNKNOWN)

    @property
    def restore_p50(self) -> float | None:
        return statistics.median(self.restores) if self.restores else None

    @property
    def restore_max(self) -> float | None:
        return max(self.restores) if self.restores else None

    @property
    def verified_p50(self) -> float | None:
        return statistics.median(self.verified) if self.verified else None

    @property
    def verified_max(self) -> float | None:
        """The budget is judged on this: undone *and* proven healthy."""
        return max(self.verified) if self.verified else None

    @property
    def within_budget(self) -> bool:
        return self.unverified_restores == 0 and all(v <= self.budget for v in self.judged)

    def to_json(self) -> dict[str, Any]:
        data = as_dict(self)
        data.update(
            drifted=self.drifted,
            live_unknown=self.live_unknown,
            restore_p50=self.restore_p50,
            restore_max=self.restore_max,
            verified_p50=self.verified_p50,
            verified_max=self.verified_max,
            within_budget=self.within_budget,
        )
        return data


FREEZE_NOTICE = 86400.0  # status announces a freeze or window closing this long ahead


def status(
    project: Project, env: str | None = None, *, now: float | None = None, repair: bool = True
) -> list[EnvStatus]:
    """Status of one environment, or of all of them in config order; ``now`` (default: the
    clock) is the moment freezes and change windows are judged at. With ``repair`` (the CLI)
    it reconciles first, which writes; without (a page or an API read) it reads only."""
    names = [env] if env else list(project.config.environments)
    at = time.time() if now is None else now
    return [_env_status_once(Place(project, name), at, repair) for name in names]


def _env_status_once(place: Place, now: float, repair: bool) -> EnvStatus:
    """One environment's status, its target asked what it serves once (a tool that hangs
    costs one timeout, not one per question)."""
    with place.target.one_reading():
        return _env_status(place, now, repair)


def _read_target(place: Place) -> tuple[Release | None, str | None, str | None]:
    """What the target serves: (live release, its actual hash, None), or, when the target
    cannot be read (a tool down or hanging), (None, None, what it said). Reads only."""
    try:
        live = place.target.live()
        return live, place.target.actual_hash() if live else None, None
    except TargetError as exc:
        said = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
        return None, None, said


def change_standing(calendar: ChangeCalendar, now: float) -> dict[str, Any] | None:
    """What status says about an environment's freezes and windows: the closure in force at
    ``now`` (``state`` "active", with ``opens_at``, when changes are allowed again), else a
    freeze starting within :data:`FREEZE_NOTICE` ("upcoming"), else None. The end of a change
    window is not announced: it comes every working day, and would hide the freeze that
    matters. Infinite times are None, so the result is plain JSON."""
    closure = calendar.closed_at(now)
    if closure is not None:
        found = {"state": "active", **as_dict(closure), "text": calendar.describe(closure),
                 "opens_at": calendar.opens_at(now)}  # fmt: skip
    elif (closure := _next_freeze(calendar, now)) is not None:
        found = {"state": "upcoming", **as_dict(closure),
                 "text": calendar.describe_start(closure)}  # fmt: skip
    else:
        return None
    return {key: None if value == math.inf else value for key, value in found.items()}


def _next_freeze(calendar: ChangeCalendar, now: float) -> Closure | None:
    return ChangeCalendar(freezes=calendar.freezes).next_closure(now, FREEZE_NOTICE)


def _lock_of(place: Place) -> str | None:
    """Who holds the environment's lease now (a live holder), without taking it. Reads only."""
    from lastgood import holder

    lease = place.store.lease(f"env:{place.name}")
    if lease is None or not holder.lease_is_alive(lease, time.time()):
        return None
    return f"{lease.purpose} by {lease.holder}"


def _try_reconcile(place: Place) -> tuple[str | None, list[str], str | None]:
    """Reconcile unless another process holds the lease: (who holds it, what was corrected,
    why the environment's git refs could not be set). With ``[git] refs = true`` the refs are
    set again under the lease, so refs a crash left behind the ledger catch up here."""
    try:
        with EnvLease(place, "status"):
            corrected = reconcile(place)
            refs = place.project.git_refs
            return None, corrected, None if refs is None else refs.sync(place.name, again=True)
    except LockedError:
        lease = place.store.lease(f"env:{place.name}")
        return (f"{lease.purpose} by {lease.holder}" if lease else "locked"), [], None
    except TargetError:  # the target cannot say what it serves: status says so, from its read
        return None, [], None


def _commit_of_live(place: Place, result: EnvStatus) -> None:
    """The git commit the live version was taken from, when the store still holds it."""
    known = None if result.live_version is None else _known_version(place, result.live_version)
    if known is not None:
        result.live_commit, result.live_dirty = known.git_commit, known.git_dirty


def _known_version(place: Place, number: int) -> VersionInfo | None:
    """Version ``number``, or None when the store no longer holds it (a target may keep a
    release whose version was pruned)."""
    try:
        return place.store.version(number)
    except NotFoundError:
        return None


def _env_status(place: Place, now: float, repair: bool) -> EnvStatus:
    env, settings = place.name, place.settings
    if repair:
        lock, corrected, refs_failed = _try_reconcile(place)
    else:
        lock, corrected, refs_failed = _lock_of(place), [], None
    target = place.target
    live, actual, unreachable = _read_target(place)
    store = place.store
    state = store.env_state(env)
    records = store.deployments(env, limit=200)
    result = EnvStatus(
        env=env,
        target=target.describe(),
        live_version=live.version if live else None,
        live_hash=live.content_hash if live else None,
        actual_hash=actual,
        ledger_version=state.live_version,
        last_good=state.last_good,
        live_verdict=store.verdicts(env).get(live.version) if live else None,
        health="unknown",
        health_at=None,
        last_change=_last_change(records),
        budget=settings.budget,
        checked=bool(settings.checks),
        restores=[r.time_to_active for r in _restores(records) if r.time_to_active is not None],
        verified=[r.time_to_verified for r in _restores(records) if r.time_to_verified is not None],
        judged=[
            r.time_to_verified if r.time_to_verified is not None else (r.time_to_active or 0.0)
            for r in _restores(records)
            if r.status == "succeeded"
        ],
        lock=lock,
        freeze=change_standing(settings.calendar, now),
        unreachable=unreachable,
    )
    _commit_of_live(place, result)
    _warn_of_restores(result, records)
    _health(place, result)
    result.warnings.extend(f"reconciled: {note}" for note in corrected)
    if refs_failed:
        result.warnings.append(refs_failed)
    _warn_of_drill_left_live(place, result, live)
    _warn(result, live is not None)
    _drills(result, settings, records)  # least urgent: last
    if settings.target.type == "served":
        result.fleet = _fleet(place)
        result.rollout = _rollout(place)
    return result


def _warn_of_restores(result: EnvStatus, records: list[Deployment]) -> None:
    """Restores never verified count as misses against the budget: say which."""
    unverified = [
        f"#{r.id}" for r in outside_drills(records) if r.is_rollback and r.status != "succeeded"
    ]
    result.unverified_restores = len(unverified)
    if unverified:
        result.warnings.append(
            f"{plural(len(unverified), 'restore')} on {result.env} never verified "
            f"({', '.join(unverified[:5])}); "
            f"they count as misses against the budget. See 'lastgood history {result.env}'"
        )


def _warn_of_drill_left_live(place: Place, result: EnvStatus, live: Release | None) -> None:
    """A drill killed before it ended leaves its broken variant live: say how to undo it."""
    if live is not None and place.store.version(live.version).source == "drill":
        result.warnings.append(
            f"v{live.version} is a drill's broken variant and is live on {result.env} (the drill "
            f"was killed before it could end); put the version before it back: 'lastgood "
            f"rollback {result.env}'"
        )


def _fleet(place: Place) -> dict[str, Any] | None:
    """Where the consumers of a served environment stand: against the live version, or during a
    gradual rollout each against its cohort's version (as the server's fleet view counts)."""
    from lastgood.operations.fleet import read_fleet

    found = read_fleet(place.project, place.name)
    return None if found is None else found.to_json()


def _rollout(place: Place) -> dict[str, Any] | None:
    """The gradual rollout under way on a served environment (with its cohorts, from the
    store's reports), or None; an unreadable pointer is a warning elsewhere, not a failure of
    status. Reads only."""
    from lastgood.errors import LastgoodError
    from lastgood.operations.rollout_control import rollout_status

    try:
        found = rollout_status(place.project, place.name)
    except LastgoodError:
        return None
    return found.to_json() if found.rolling else None


class DrillStanding(Record):
    """Where an environment stands with drills: the last one, and whether one is overdue."""

    last: Deployment | None
    age: float | None  # of the last drill, whatever its result
    overdue: str | None  # the warning, when the last successful drill is too old (or none)


def drill_standing(
    settings: Environment, records: list[Deployment], now: float | None = None
) -> DrillStanding:
    """The one rule for drills, shared by ``status``, ``report`` and the watcher: a
    non-protected environment that has a ledger is overdue when its last successful drill is
    older than ``drill_every``, or when it never had one."""
    now = time.time() if now is None else now
    drills = [r for r in records if r.kind == "drill"]
    last = drills[0] if drills else None
    age = now - last.requested_at if last else None
    if settings.protected or not records:
        return DrillStanding(last, age, None)
    passed = [r for r in drills if r.status == "passed"]
    since_passed = now - passed[0].requested_at if passed else None
    if since_passed is not None and since_passed <= settings.drill_every:
        return DrillStanding(last, age, None)
    when = "never" if since_passed is None else f"{format_duration(since_passed)} ago"
    warning = (
        f"drill overdue on {settings.name}: last successful drill {when} (drill_every "
        f"{format_duration(settings.drill_every)}); run 'lastgood drill {settings.name}'"
    )
    return DrillStanding(last, age, warning)


def _drills(result: EnvStatus, settings: Environment, records: list[Deployment]) -> None:
    """The last drill, its result and age, and the overdue warning."""
    standing = drill_standing(settings, records)
    if standing.last is not None:
        last = standing.last
        result.last_drill = {"id": last.id, "status": last.status, "at": last.requested_at,
                             "age": standing.age}  # fmt: skip
    if standing.overdue:
        result.warnings.append(standing.overdue)


def _restores(records: list[Deployment]) -> list[Deployment]:
    """The latest 50 rollbacks, drills' own left out: the digest's set, so both give the same
    figures for the same rollbacks (restored in: every one that switched; verified in: every
    one that was verified)."""
    return [r for r in outside_drills(records) if r.is_rollback][:50]


def outside_drills(records: list[Deployment]) -> list[Deployment]:
    """``records`` without what belongs to a drill: the drill's record, the deploy of its
    broken variant and the rollbacks inside its time. Drills report their own figures; the
    same rule holds in status and in the digest, so both give the same numbers."""
    drills = [r for r in records if r.kind == "drill"]
    windows = [(r.requested_at, r.finished_at or r.requested_at) for r in drills]
    return [
        r
        for r in records
        if r.kind != "drill"
        and r.source != "drill"
        and not any(start <= r.requested_at <= end for start, end in windows)
    ]


def _last_change(records: list[Deployment]) -> dict[str, Any] | None:
    for record in records:
        if record.status != "unchanged":
            return record.to_json()
    return None


def _health(place: Place, result: EnvStatus) -> None:
    if not place.settings.checks:
        result.health = "no checks configured: nothing proves it healthy"
        return
    latest = place.store.check_records(env=place.name, limit=50)
    if not latest:
        result.health = "no checks run yet"
        return
    newest = latest[0]
    # one round's results share their time: round numbers restart with every watcher
    same_round = [
        r
        for r in latest
        if (r.deployment, r.phase, r.round, r.at)
        == (newest.deployment, newest.phase, newest.round, newest.at)
    ]
    failed = [r.name for r in same_round if not r.ok]
    result.health = "healthy" if not failed else "failing: " + ", ".join(failed)
    result.health_at = newest.at


def _warn(result: EnvStatus, has_live: bool) -> None:
    if result.unreachable:
        result.warnings.append(
            f"the target of {result.env} could not be read, so what it serves is unknown; the "
            f"rest is the ledger's view (it last recorded "
            f"{'v' + str(result.ledger_version) if result.ledger_version else 'nothing'} live)"
        )
    if result.live_unknown:
        result.warnings.append(
            f"live: unknown (the tool serves something lastgood did not put there); lastgood "
            f"put v{result.live_version} there last: 'lastgood deploy {result.env} --version "
            f"v{result.live_version}' pushes it again, 'lastgood rollback {result.env}' goes to "
            "last known good"
        )
    elif result.drifted:
        result.warnings.append(
            f"drift: the files live on {result.env} do not match v{result.live_version} "
            f"(edited by hand?); 'lastgood deploy {result.env} --version v{result.live_version}' "
            "rewrites them from the store"
        )
    if has_live and result.live_verdict is None:
        # 'lastgood check' only looks: it never makes a version good (only a bake does), so
        # advising it alone left the warning standing after a passing check
        label, env = f"v{result.live_version}", result.env
        result.warnings.append(
            f"{label} is live on {env} but was never verified (interrupted deploy?); "
            f"'lastgood deploy {env} --version {label}' bakes it (a passing 'lastgood check "
            f"{env}' does not make it good), 'lastgood rollback {env}' goes to last known good"
        )
    if result.live_verdict == "bad":
        result.warnings.append(
            f"v{result.live_version} is live on {result.env} and FAILED its checks"
        )
    if result.verified_max is not None and result.verified_max > result.budget:
        result.warnings.append(
            f"a restore took {format_duration(result.verified_max)} to be verified, over the "
            f"{format_duration(result.budget)} budget"
        )


class Timeline(Record):
    deployments: list[Deployment]
    events: list[EventRecord]


def history(project: Project, env: str, *, limit: int = 50) -> Timeline:
    """The ledger of ``env``: deployments and events, newest first."""
    store = Place(project, env).store
    return Timeline(store.deployments(env, limit=limit), store.events(env, limit=limit * 4))


def check_now(project: Project, env: str) -> Round:
    """Run ``env``'s checks once against what is live now, and record the round."""
    place = Place(project, env)
    live = place.target.live()
    checks = build_checks(place.settings.checks)
    number = int(time.time())
    return run_round(
        place,
        checks,
        live_context(place, live),
        phase="check",
        number=number,
        deployment=None,
    )
