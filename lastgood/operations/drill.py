"""``drill``: rehearse the incident. Break the live version on purpose, let the real checks catch
it, let the automatic rollback put it back, prove the bytes, and measure every step.

Rollbacks are rehearsed in a controlled environment, never first tried in an incident. A drill
deploys a deliberately broken variant of the live version: the live files with some replaced by
the files named in ``[env.NAME.drill] files`` (a threshold that makes every score zero, say).
Where none are configured it falls back to the weaker drill: the live files plus a marker file,
with a failing check round injected, which proves the rollback but not the checks. Protected
environments refuse drills unless overridden, and the override is recorded.
"""

from __future__ import annotations

import contextlib
import json
import time

from lastgood.bundle import Bundle
from lastgood.checks import Check, CheckContext, CheckResult
from lastgood.config import CheckSpec, Environment
from lastgood.errors import ConfigError, RefusedError
from lastgood.events import Event, EventKind
from lastgood.operations.checking import build_checks, live_context, run_round
from lastgood.operations.place import Place
from lastgood.outcome import NEEDS_HUMAN, OK, RESTORED, Outcome
from lastgood.project import Project
from lastgood.record import Record
from lastgood.rows import Deployment, VersionInfo

BROKEN_VARIANT = "broken-variant"
INJECTED = "injected-failure"
MARKER = "lastgood-drill.txt"


class InjectedFailure(Check):
    """The weaker drill's failing check: every round fails, on purpose."""

    type_name = "drill-injected"

    def probe(self, context: CheckContext) -> CheckResult:
        return CheckResult(self.name, False, "failure injected by 'lastgood drill'")


class DrillResult(Record, frozen=False):
    """What a drill proved, with its figures."""

    env: str
    kind: str
    passed: bool
    summary: str
    live_version: int
    variant: int | None = None
    time_to_detect: float | None = None
    time_to_restore: float | None = None
    time_to_verified: float | None = None
    budget: float = 300.0
    bytes_verified: bool = False
    record: Deployment | None = None

    @property
    def exit_code(self) -> int:
        return OK if self.passed else NEEDS_HUMAN


def drill(
    project: Project, env: str, *, override_protection: bool = False, reason: str = ""
) -> DrillResult:
    """Run one drill on ``env``. Writes a variant version, the target and the ledger.

    The deploy of the broken variant and the rollback that ends the drill are verbs of their
    own, called with ``(project, env)``: each resolves the environment for itself."""
    place = Place(project, env)
    settings = place.settings
    _refuse_protected(settings, override_protection)
    live = _healthy_live_version(place)
    kind = BROKEN_VARIANT if settings.drill_files else INJECTED
    variant = _record_variant(place, live, kind)
    started = time.time()
    _announce(place, live, variant, kind)
    from lastgood.operations.deploy import deploy

    injected: list[Check] = [
        InjectedFailure(CheckSpec("drill-injected", "drill-injected", 5.0, {}))
    ]
    try:
        outcome = deploy(
            project, env, ref=variant.label, force=True, source="drill",
            message=f"drill on {env}", drill_checks=injected if kind == INJECTED else [],
        )  # fmt: skip
        result = _judge(place, live, variant, kind, outcome)
        _end_on(place, live)
    except BaseException as exc:  # Ctrl-C, SIGTERM, an error: the variant must not stay live
        _abandon(place, live, variant, kind, started, exc)
        raise
    return _record(place, result, started, reason, override_protection)


def _abandon(
    place: Place, live: VersionInfo, variant: VersionInfo, kind: str, started: float,
    error: BaseException,
) -> None:  # fmt: skip
    """A drill stopped half-way: put the live version back, then record the drill as failed,
    saying whether the version is back."""
    from lastgood.operations.ledger import describe

    settings = place.settings
    back = f"{live.label} was put back"
    try:
        _end_on(place, live)
    except BaseException as failure:
        back = (
            f"{live.label} could NOT be put back ({describe(failure)}): run 'lastgood rollback "
            f"{settings.name} --to {live.label}'"
        )
        raise
    finally:
        summary = f"the drill was stopped before it ended: {describe(error)}; {back}"
        result = DrillResult(
            settings.name, kind, False, summary, live.number, variant.number,
            budget=settings.budget,
        )  # fmt: skip
        with contextlib.suppress(Exception):
            _record(place, result, started, "drill stopped", False)


def _end_on(place: Place, live: VersionInfo) -> None:
    """A drill always ends on the version that was live before it, whatever happened in it."""
    served = place.target.live()
    if served is not None and served.version == live.number:
        return
    from lastgood.operations.rollback import rollback

    rollback(
        place.project, place.name, to=live.label,
        reason="drill: back to the version live before it",
    )  # fmt: skip


def _refuse_protected(settings: Environment, override: bool) -> None:
    if settings.approval is not None and not override:
        raise RefusedError(
            f"{settings.name} takes changes only through approved change requests, and a drill "
            "puts a broken copy of what is live there for its bake",
            hint=f"drill a staging copy, or insist with 'lastgood drill {settings.name} "
            "--override-protection' (recorded in the ledger)",
        )
    if settings.protected and not override:
        raise RefusedError(
            f"{settings.name} is protected: drills rehearse on an environment like production, "
            "not on production itself",
            hint=f"drill a staging copy, or insist with 'lastgood drill {settings.name} "
            "--override-protection' (recorded in the ledger)",
        )


def _healthy_live_version(place: Place) -> VersionInfo:
    """The live version, which must be last known good and pass its checks right now."""
    env = place.name
    live = place.target.live()
    state = place.store.env_state(env)
    if live is None or state.last_good != live.version:
        serving = f"v{live.version}" if live else "nothing"
        raise RefusedError(
            f"{env} serves {serving}, which is not its last known good version: a drill must "
            "start from a proven version, so its rollback has somewhere to go",
            hint=f"deploy a version and let it pass its bake first; see 'lastgood status {env}'",
        )
    checked = run_round(
        place, build_checks(place.settings.checks), live_context(place, live),
        phase="drill", number=0, deployment=None,
    )  # fmt: skip
    if not checked.ok:
        raise RefusedError(
            f"{env} is not healthy right now ({checked.summary()}); a drill would only add to it",
            hint=f"fix it first: 'lastgood check {env}'",
        )
    return place.store.version(live.version)


def _record_variant(place: Place, live: VersionInfo, kind: str) -> VersionInfo:
    """The broken variant as a version of its own (source ``drill``)."""
    project, settings = place.project, place.settings
    files = dict(place.store.files(live.number))
    if kind == BROKEN_VARIANT:
        for path, source in settings.drill_files.items():
            try:
                files[path] = (project.root / source).read_bytes()
            except OSError as exc:
                raise ConfigError(
                    f"env.{settings.name}.drill.files: cannot read {source!r} for {path!r}: "
                    f"{exc.strerror}",
                    hint="name a file in the workspace that holds the broken content",
                ) from exc
    else:
        files[MARKER] = f"drill of v{live.number} at {time.time():.0f}\n".encode()
    if Bundle(files).content_hash == live.content_hash:
        raise RefusedError(
            f"the drill variant of {settings.name} holds exactly the bytes of {live.label}, the "
            f"live version: env.{settings.name}.drill.files changes nothing, so the drill could "
            "not break anything; nothing was changed",
            hint="point each entry of the drill's files at a file whose content breaks the "
            "version (a threshold that makes every score zero, say)",
        )
    return place.store.add_version(
        Bundle(files), author=project.actor, source="drill",
        message=f"drill: {kind} of {live.label} on {settings.name}",
    )  # fmt: skip


def _announce(place: Place, live: VersionInfo, variant: VersionInfo, kind: str) -> None:
    weaker = " (the weaker kind: no broken variant is configured)" if kind == INJECTED else ""
    place.emit(
        Event(
            EventKind.DRILL_STARTED,
            f"drill on {place.name}: breaking {live.label} on purpose with {variant.label}{weaker}",
            env=place.name,
            version=variant.number,
            data={"kind": kind},
        )
    )


def _judge(
    place: Place, live: VersionInfo, variant: VersionInfo, kind: str, outcome: Outcome
) -> DrillResult:
    """Compare what happened with what must happen, record it, and emit drill-finished."""
    env, settings = place.name, place.settings
    result = DrillResult(env, kind, False, "", live.number, variant.number, budget=settings.budget)
    if outcome.exit_code != RESTORED or outcome.restore is None:
        result.summary = _not_caught(place, live, variant, outcome)
    else:
        _measure(result, outcome)
        target = place.target
        served = target.live()
        result.bytes_verified = (
            served is not None
            and served.version == live.number
            and target.actual_hash() == live.content_hash
        )
        result.passed = result.bytes_verified and (result.time_to_verified or 0) <= settings.budget
        result.summary = _verdict_sentence(result, live, variant)
    return result


def _measure(result: DrillResult, outcome: Outcome) -> None:
    deployed, restore = outcome.deployment, outcome.restore
    assert deployed is not None and restore is not None and restore.trigger_at is not None
    if deployed.activated_at is not None:
        result.time_to_detect = restore.trigger_at - deployed.activated_at
    result.time_to_restore = restore.time_to_active
    result.time_to_verified = restore.time_to_verified


def _not_caught(place: Place, live: VersionInfo, variant: VersionInfo, outcome: Outcome) -> str:
    """The checks let the broken variant through: put the live version back by hand."""
    if outcome.exit_code == OK:
        from lastgood.operations.rollback import rollback
        from lastgood.operations.verdicts import mark_bad

        mark_bad(place, variant, None)  # it is broken by construction
        back = rollback(
            place.project, place.name, to=live.label, reason="drill: undo the uncaught variant"
        )
        restored = "restored" if back.exit_code == OK else "could NOT verify"
        return (
            f"the checks did not catch {variant.label}, the broken variant: they let it pass its "
            f"bake. {live.label} was {restored} by a rollback. Add a check that sees this breakage"
        )
    return f"the drill did not end as rehearsed: {outcome.summary}"


def _verdict_sentence(result: DrillResult, live: VersionInfo, variant: VersionInfo) -> str:
    verified = (
        f"verified in {_seconds(result.time_to_verified)}"
        if result.time_to_verified is not None
        else "not verified (no checks configured)"
    )
    figures = (
        f"detected in {_seconds(result.time_to_detect)}, restored in "
        f"{_seconds(result.time_to_restore)}, {verified} (budget {_seconds(result.budget)})"
    )
    if not result.bytes_verified:
        return f"{live.label} was not served byte for byte after the rollback; {figures}"
    if not result.passed:
        return f"the restore took longer than the budget: {figures}"
    weaker = (
        " (the weaker drill: a failing round was injected, so it proved the rollback, not the "
        "checks; configure [env.NAME.drill] files for the real one)"
        if result.kind == INJECTED
        else ""
    )
    return f"drill passed: {variant.label} was caught and {live.label} restored; {figures}{weaker}"


def _record(
    place: Place, result: DrillResult, started: float, reason: str, override: bool
) -> DrillResult:
    """Write the drill into the ledger, once, when it is over (a killed drill leaves only its
    deploy and rollback records, which the next command reconciles), and emit drill-finished."""
    figures = {
        "kind": result.kind,
        "override_protection": override,
        "time_to_detect": result.time_to_detect,
        "time_to_restore": result.time_to_restore,
        "time_to_verified": result.time_to_verified,
        "bytes_verified": result.bytes_verified,
        "summary": result.summary,
    }
    now = time.time()
    result.record = place.store.begin_deployment(
        env=result.env,
        kind="drill",
        status="passed" if result.passed else "failed",
        from_version=result.live_version,
        to_version=result.variant,
        actor=place.project.actor,
        reason=reason or f"{result.kind} drill",
        source="drill",
        requested_at=started,
        verified_at=now if result.passed else None,
        finished_at=now,
        detail=json.dumps(figures),
    )
    place.emit(
        Event(
            EventKind.DRILL_FINISHED,
            f"drill on {result.env}: {result.summary}",
            env=result.env,
            version=result.live_version,
            deployment=result.record.id,
            data={"passed": result.passed, "kind": result.kind, **figures},
        )
    )
    return result


def _seconds(value: float | None) -> str:
    from lastgood.units import format_duration

    return format_duration(value)
