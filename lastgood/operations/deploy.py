"""``deploy``: snapshot → validate → stage → preflight → activate → bake → good, or roll back.

Plan first, then apply: :func:`plan_deploy` computes what would change and touches nothing
(``--dry-run`` prints it); :func:`deploy` applies it under the environment's lease. A version
becomes last known good only after a full bake that never tripped and ended on a green round; a
version that trips is marked bad here and the last known good is put back and verified.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from lastgood import failpoint, refs
from lastgood.bundle import Bundle
from lastgood.checks import Check, CheckContext
from lastgood.comparison import BaselineSource
from lastgood.errors import (
    BaselineError,
    LastgoodError,
    LeaseLostError,
    PreflightError,
    QuarantinedError,
    TargetError,
)
from lastgood.events import Event, EventKind
from lastgood.operations.baseline import SAMPLES, Sampling, baseline_note, measure, no_baseline
from lastgood.operations.checking import Round, build_checks, live_context, run_round
from lastgood.operations.commits import planned_commit, version_to_change
from lastgood.operations.gate import clear_change, clear_claimed, clear_version
from lastgood.operations.lease import EnvLease
from lastgood.operations.ledger import closed_on_error
from lastgood.operations.place import Place
from lastgood.operations.reconcile import reconcile
from lastgood.operations.resolve import resolve
from lastgood.operations.restore import ensure_intact, release_of, stage, still_ours
from lastgood.operations.snapshot import newest_recorded, read_workspace, snapshot
from lastgood.operations.switch_failure import failed_switch
from lastgood.operations.verdicts import mark_bad, mark_good, quarantined_by
from lastgood.outcome import NEEDS_HUMAN, OK, RESTORED, Outcome, PlanStep
from lastgood.project import Project
from lastgood.record import Record
from lastgood.rows import GOOD, ChangeRequest, Deployment, VersionInfo
from lastgood.units import format_duration, plural
from lastgood.validate import validate_bundle


class Candidate(Record):
    """What would be deployed: an existing version, or the folder not yet recorded."""

    version: VersionInfo | None
    bundle: Bundle
    source: str = "the folder"  # what a new version would be recorded from

    @property
    def label(self) -> str:
        return self.version.label if self.version else "a new version"


def _candidate(place: Place, ref: str | None) -> Candidate:
    project = place.project
    if ref is not None and ref.startswith(f"{refs.GIT}:"):
        version, bundle, sha = planned_commit(project, ref[len(refs.GIT) + 1 :])
        return Candidate(version, bundle, f"{ref} (commit {sha[:12]})")
    if ref is not None:
        version = resolve(project, ref, env=place.name)
        return Candidate(version, Bundle(place.store.files(version.number)))
    bundle = read_workspace(project)
    head = newest_recorded(project)
    same = head is not None and head.content_hash == bundle.content_hash
    return Candidate(head if same else None, bundle)


def file_changes(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    """Added, changed and removed paths between two manifests (path → file hash)."""
    return {
        "added": sorted(set(after) - set(before)),
        "changed": sorted(p for p in set(after) & set(before) if after[p] != before[p]),
        "removed": sorted(set(before) - set(after)),
    }


def plan_deploy(project: Project, env: str, *, ref: str | None = None) -> Outcome:
    """The plan of a deploy, computed without changing anything."""
    place = Place(project, env)
    candidate = _candidate(place, ref)
    live = place.target.live()
    before = place.store.manifest(live.version) if live else {}
    changes = file_changes(before, candidate.bundle.manifest)
    state = place.store.env_state(env)
    steps = _plan_steps(place, candidate, live.version if live else None, state.last_good)
    return Outcome(
        env=env,
        action="deploy",
        exit_code=OK,
        summary=f"plan: deploy {candidate.label} to {env}",
        version=candidate.version.number if candidate.version else None,
        from_version=live.version if live else None,
        plan=steps,
        changes=changes,
        dry_run=True,
    )


def _plan_steps(
    place: Place, candidate: Candidate, live: int | None, last_good: int | None
) -> list[PlanStep]:
    settings = place.settings
    label = candidate.label
    steps = []
    if candidate.version is None:
        steps.append(PlanStep("snapshot", f"record {candidate.source} as {label}"))
    files = plural(len(candidate.bundle.files), "file")
    steps.append(PlanStep("validate", f"{files}, syntax and schemas"))
    proven = live is not None and place.store.verdicts(place.name).get(live) == GOOD
    if proven and settings.checks:
        names = ", ".join(spec.name for spec in settings.checks)
        what = f"one round of {names} against v{live}; a failure refuses"
        comparing = [spec.name for spec in settings.checks if spec.compare is not None]
        if comparing:
            what += f"; {', '.join(comparing)} sampled {SAMPLES} times for their baseline"
        steps.append(PlanStep("baseline", what))
    steps.append(PlanStep("stage", f"{label} on {place.target.describe()}"))
    names = ", ".join(spec.name for spec in settings.preflight) or "none configured"
    steps.append(PlanStep("preflight", names))
    checks = ", ".join(spec.name for spec in settings.checks) or "no checks configured"
    fallback = f"v{last_good}" if last_good else "no last known good yet"
    if settings.rollout is not None and live not in (None, _number(candidate)):
        return [*steps, _rollout_step(place, label, live, checks, fallback)]
    live_text = f"v{live}" if live else "nothing"
    steps.append(PlanStep("activate", f"{label} (live now: {live_text})"))
    steps.append(
        PlanStep(
            "bake",
            f"{format_duration(settings.bake)} of {checks} every "
            f"{format_duration(settings.interval)}; {settings.failures} failed rounds roll "
            f"back to {fallback}",
        )
    )
    return steps


def _number(candidate: Candidate) -> int | None:
    return candidate.version.number if candidate.version else None


def _rollout_step(
    place: Place, label: str, live: int | None, checks: str, fallback: str
) -> PlanStep:
    """The plan's step for a gradual rollout (see :mod:`lastgood.operations.rollout`)."""
    settings = place.settings
    plan = settings.rollout
    assert plan is not None
    return PlanStep(
        "rollout",
        f"{label} to {plan.describe()} of the consumers (the others keep v{live}), each step "
        f"{format_duration(plan.step_bake)} of {checks} every "
        f"{format_duration(settings.interval)}; {settings.failures} failed rounds put everyone "
        f"back on {fallback}",
    )


def deploy(
    project: Project,
    env: str,
    *,
    message: str = "",
    ref: str | None = None,
    force: bool = False,
    source: str = "cli",
    drill_checks: list[Check] | None = None,
    ignore_baseline: bool = False,
    request: ChangeRequest | None = None,
) -> Outcome:
    """Deploy the folder (or ``ref``) to ``env`` and bake it. Writes the store and the target.

    Before the switch one round of the environment's checks runs against what is live (the
    baseline); when it fails the deploy is refused (BaselineError) unless ``ignore_baseline``.
    ``drill_checks`` makes this a drill's deploy (see ``operations.drill``): no preflight and no
    baseline (a drill rehearses a change that went live, from a live version it has just
    checked), and these checks join every bake round. ``request`` is the approved change
    request this deploy applies: an environment that requires approval refuses a deploy without
    one (see :mod:`lastgood.operations.gate`), before anything is recorded."""
    place = Place(project, env)
    settings = place.settings
    clear_change(place, request=request, drill=drill_checks is not None)
    build_checks(settings.checks + settings.preflight)
    if ref is None:
        bundle = read_workspace(project)
        validate_bundle(bundle.files, project.config.schemas, project.root)
        version = snapshot(project, message, source=source, bundle=bundle).version
    else:
        version = version_to_change(project, ref, env=env)
    clear_version(request, version)
    files = place.store.files(version.number)
    if ref is not None:
        validate_bundle(files, project.config.schemas, project.root)
    with EnvLease(place, "deploy", force=False) as lease:
        failpoint.hit("deploy.after-lease")
        reconcile(place)
        clear_claimed(place, request)
        job = DeployRun(place, lease, version, files, message, source)
        job.drill_checks = drill_checks
        job.ignore_baseline = ignore_baseline
        return job.run(force)


class DeployRun:
    """One deploy under a held lease, step by step, each step recorded."""

    def __init__(
        self,
        place: Place,
        lease: EnvLease,
        version: VersionInfo,
        files: dict[str, bytes],
        message: str,
        source: str,
    ) -> None:
        self.place = place
        self.project = place.project
        self.store = place.store
        self.settings = place.settings
        self.env = place.name
        self.lease = lease
        self.version = version
        self.files = files
        self.message = message
        self.source = source
        self.drill_checks: list[Check] | None = None
        self.ignore_baseline = False
        self.baselines: BaselineSource = no_baseline("no baseline was measured")
        self.target = place.target
        self.release = release_of(version)
        live = self.target.live()
        self.from_version = live.version if live else None
        self.record: Deployment | None = None

    def run(self, force: bool) -> Outcome:
        verdicts = self.store.verdicts(self.env)
        if self.from_version == self.version.number and verdicts.get(self.version.number) == GOOD:
            repaired = ensure_intact(self.place, self.version, deployment=None)
            return self._unchanged(repaired)
        failed = quarantined_by(self.place, self.version)
        if failed is not None and not force:
            self._refuse_quarantined(failed)
        self.record = self.store.begin_deployment(
            env=self.env,
            kind="deploy",
            from_version=self.from_version,
            to_version=self.version.number,
            actor=self.project.actor,
            reason=self.message or self.version.message,
            source=self.source,
        )
        with closed_on_error(self.project, lambda: self.record.id if self.record else None):
            self._emit(
                EventKind.DEPLOY_STARTED, f"deploying {self._arrow()} by {self.project.actor}"
            )
            self._baseline()
            self._stage_and_preflight()
            if self._rolls_out():
                return self._roll_out()
            self._activate()
            return self._bake()

    def _rolls_out(self) -> bool:
        """A gradual rollout needs something stable to keep serving the rest: with nothing live
        (or the same version live) a deploy switches everyone at once; a drill too."""
        live_other = self.from_version not in (None, self.version.number)
        return self.settings.rollout is not None and live_other and self.drill_checks is None

    def _roll_out(self) -> Outcome:
        from lastgood.operations.rollout import RolloutRun

        assert self.settings.rollout is not None
        return RolloutRun(self, self.settings.rollout).run()

    def _arrow(self) -> str:
        before = f"v{self.from_version}" if self.from_version else "nothing"
        return f"{before} → {self.version.label} on {self.env}"

    def _emit(self, kind: EventKind, message: str, **data: object) -> None:
        self.project.emit(
            Event(
                kind,
                message,
                env=self.env,
                version=self.version.number,
                deployment=self.record.id if self.record else None,
                data=dict(data),
            )
        )

    def _unchanged(self, repaired: list[str]) -> Outcome:
        record = self.store.begin_deployment(
            env=self.env,
            kind="deploy",
            status="repaired" if repaired else "unchanged",
            from_version=self.from_version,
            to_version=self.version.number,
            actor=self.project.actor,
            reason=self.message or "already live and known good",
            source=self.source,
            finished_at=time.time(),
        )
        self.record = record
        self._emit(
            EventKind.DEPLOY_UNCHANGED, f"{self.version.label} is already live on {self.env}"
        )
        summary = f"{self.version.label} is already live and known good on {self.env}; "
        if repaired:
            files = plural(len(repaired), "file")
            summary += f"rewrote {files} edited by hand: {', '.join(repaired)}"
        else:
            summary += "nothing to do"
        return Outcome(
            self.env,
            "deploy",
            OK,
            summary,
            version=self.version.number,
            from_version=self.from_version,
            deployment=record,
        )

    def _refuse_quarantined(self, failed: int) -> None:
        """Refuse, naming the version that failed: ``self.version`` or its twin by content."""
        label = self.version.label
        if failed == self.version.number:
            message = f"{label} failed its checks on {self.env} before and is quarantined there"
        else:
            message = (
                f"{label} has the same content as v{failed}, which failed its checks on "
                f"{self.env}, so it is quarantined there"
            )
        self.project.emit(
            Event(EventKind.DEPLOY_REFUSED, message, env=self.env, version=self.version.number)
        )
        raise QuarantinedError(
            message,
            hint=f"if the version was at fault, fix the files and deploy a new version; if a "
            f"check was wrong (lastgood.toml is not versioned: fix it there), deploy it again "
            f"with 'lastgood deploy {self.env} --version {self.version.label} --force'",
        )

    def _baseline(self) -> None:
        """One round of the checks against what is live now, before anything changes, and the
        baselines of the checks that compare (:mod:`lastgood.operations.baseline`).

        A failure here is the environment's (or a check's), never the new version's: the deploy
        is refused and no version is blamed. Only a live version proven good here is a baseline:
        skipped with nothing live, a live version that failed here or was never verified (the
        deploy is then the fix, judged by its bake), no checks; a drill (which checked the live
        version itself) runs no refusing round but still samples the checks that compare;
        ``ignore_baseline`` runs it and goes ahead anyway (recorded)."""
        assert self.record is not None
        reason = self._why_no_baseline()
        if reason is not None:
            self.baselines = no_baseline(reason)
            return
        live = self.target.live()
        checks, context = build_checks(self.settings.checks), live_context(self.place, live)
        done = None
        if self.drill_checks is None:
            done = run_round(
                self.place, checks, context, phase="baseline", number=1,
                deployment=self.record.id,
            )  # fmt: skip
            if not done.ok:
                self._baseline_failed(done)
        before = f"v{self.from_version} before {self.version.label}"
        sampling = Sampling(self.place, context, self.record.id, before, self.settings.interval,
                            self.lease.fence)  # fmt: skip
        self.baselines = measure(sampling, checks, done)

    def _why_no_baseline(self) -> str | None:
        """Why nothing live can serve as a baseline, or None when it can."""
        if not self.settings.checks:
            return "no checks"
        if self.from_version is None:
            return f"nothing was live before {self.version.label}"
        verdict = self.store.verdicts(self.env).get(self.from_version)
        if verdict != GOOD:
            state = f"is marked {verdict} here" if verdict else "was never verified here"
            return f"v{self.from_version}, live before {self.version.label}, {state}"
        return None

    def _baseline_failed(self, done: Round) -> None:
        if not self.ignore_baseline:
            self._refuse_baseline(done)
        self._emit(
            EventKind.BASELINE_IGNORED,
            f"the checks already fail on {self.env} before the change ({done.summary()}); "
            f"deploying {self.version.label} anyway (--ignore-baseline)",
        )

    def _refuse_baseline(self, done: Round) -> None:
        assert self.record is not None
        message = (
            f"the checks of {self.env} already fail before the change, against "
            f"{self._live_label()} (live now): {done.summary()}; nothing was switched and "
            f"{self.version.label} is not blamed"
        )
        self.store.update_deployment(
            self.record.id, by=self.project.actor, status="refused", finished_at=time.time(),
            detail=message,
        )  # fmt: skip
        self._emit(EventKind.DEPLOY_REFUSED, message)
        raise BaselineError(
            message,
            hint=f"fix what is broken (or the check itself: 'lastgood check {self.env}' runs "
            f"them now), or deploy anyway with 'lastgood deploy {self.env} --ignore-baseline'",
        )

    def _stage_and_preflight(self) -> None:
        stage(self.target, self.release, self.files)
        failpoint.hit("deploy.after-stage")
        self._emit(EventKind.STAGED, f"staged {self.release.name} on {self.target.describe()}")
        if not self.settings.preflight or self.drill_checks is not None:
            return
        checks = build_checks(self.settings.preflight)
        staged = self.target.staged_path(self.release)
        if staged is not None:
            done = self._preflight_round(checks, staged)
        else:
            with tempfile.TemporaryDirectory(prefix="lastgood-preflight-") as folder:
                done = self._preflight_round(checks, materialize(Path(folder), self.files))
        if not done.ok:
            self._refuse_preflight(done)
        self._emit(EventKind.PREFLIGHT_PASSED, f"preflight passed: {done.summary()}")

    def _preflight_round(self, checks: list, path: Path) -> Round:  # type: ignore[type-arg]
        context = CheckContext(self.env, self.version.number, path, self.project.root)
        assert self.record is not None
        return run_round(
            self.place,
            checks,
            context,
            phase="preflight",
            number=1,
            deployment=self.record.id,
        )

    def _refuse_preflight(self, done: Round) -> None:
        assert self.record is not None
        message = f"preflight failed for {self.version.label} on {self.env}: {done.summary()}"
        self.store.update_deployment(
            self.record.id,
            by=self.project.actor,
            status="refused",
            failed_at=time.time(),
            finished_at=time.time(),
            detail=message,
        )
        self._emit(EventKind.PREFLIGHT_FAILED, message)
        raise PreflightError(
            message + f"; nothing live changed ({self._live_label()} still live)",
            hint="fix the files and deploy again; 'lastgood check' runs the live checks",
        )

    def _live_label(self) -> str:
        return f"v{self.from_version}" if self.from_version else "nothing"

    def _activate(self) -> None:
        assert self.record is not None
        self.lease.fence()
        failpoint.hit("deploy.before-activate")
        try:
            self.target.activate(self.release)
        except TargetError as exc:  # closed 'failed' by closed_on_error; exit 5 if unchanged
            raise failed_switch(self.place, self.release, self.from_version, exc) from exc
        activated_at = time.time()
        self.store.set_env(self.env, live_version=self.version.number)
        self.record = self.store.update_deployment(
            self.record.id, by=self.project.actor, activated_at=activated_at
        )
        failpoint.hit("deploy.after-activate")
        ensure_intact(self.place, self.version, deployment=self.record.id)
        note = baseline_note(self.settings.checks, self.baselines)
        self._emit(
            EventKind.ACTIVATED,
            f"{self.version.label} is live on {self.env}; baking for "
            f"{format_duration(self.settings.bake)}" + (f"; {note}" if note else ""),
            bake=self.settings.bake,
            activated_at=activated_at,
        )

    def _bake(self) -> Outcome:
        from lastgood.operations.bake import Bake

        assert self.record is not None and self.record.activated_at is not None
        checks = build_checks(self.settings.checks) + list(self.drill_checks or [])
        result = Bake(self, checks).run()
        # the last round may have run after someone broke our lease and switched the target:
        # prove the lease and the target are still ours before any verdict is written
        still_ours(self.place, self.lease, self.release)
        if result.tripped:
            return self._fail(result.trigger_at, result.last)
        return self._succeed(result.last)

    def _succeed(self, last: Round | None) -> Outcome:
        assert self.record is not None
        mark_good(self.place, self.version, self.record.id)
        failpoint.hit("deploy.after-mark-good")
        self.record = self.store.update_deployment(
            self.record.id, by=self.project.actor, status="succeeded", verified_at=time.time(),
            finished_at=time.time(),
        )  # fmt: skip
        self._emit(
            EventKind.BAKE_PASSED, f"{self.version.label} is now last known good on {self.env}"
        )
        self._prune()
        if self.settings.checks:
            summary = f"{self.version.label} is live on {self.env} and passed its bake"
        else:
            summary = (
                f"{self.version.label} is live on {self.env}; no checks are configured, so "
                "nothing proved it healthy (it became last known good at once: with no checks "
                "there is nothing to bake)"
            )
        self._emit(EventKind.DEPLOY_SUCCEEDED, summary)
        return Outcome(
            self.env,
            "deploy",
            OK,
            summary,
            version=self.version.number,
            from_version=self.from_version,
            deployment=self.record,
        )

    def _prune(self) -> None:
        keep = int(self.target.options.get("keep", 10))
        state = self.store.env_state(self.env)
        protect = [self.release]
        if state.last_good is not None:
            protect.append(release_of(self.store.version(state.last_good)))
        self.target.prune(keep, protect)

    def _fail(
        self,
        trigger_at: float,
        last: Round | None,
        *,
        during: str = "",
        sent_back_at: float | None = None,
        judged: bool = False,
    ) -> Outcome:
        """Mark the version bad (unless ``judged`` already) and restore last known good.
        ``during`` says where a gradual rollout stood (``at step 1/3 (5%)``), for the record
        and the summary; ``sent_back_at`` when its pointer was removed, which began the
        restore (the fleet's time counts from it)."""
        assert self.record is not None
        names = last.failed_names() if last else "its checks"
        details = last.failed_details() if last else ""
        why = f"{names} on {self.env} ({details})" if details else f"{names} on {self.env}"
        why = f"{why} {during}" if during else why
        if not judged:
            mark_bad(self.place, self.version, self.record.id)
        failpoint.hit("deploy.after-mark-bad")
        self.record = self.store.update_deployment(
            self.record.id, by=self.project.actor, failed_at=trigger_at, detail=why
        )
        self._emit(EventKind.DEPLOY_FAILED, f"{self.version.label} failed {why}")
        last_good = self.store.env_state(self.env).last_good
        if last_good is None or last_good == self.version.number:
            return self._no_fallback(why)
        from lastgood.operations.rollback import auto_rollback

        try:
            restore = auto_rollback(
                self.place,
                self.lease,
                self.store.version(last_good),
                failed=self.version,
                trigger_at=trigger_at,
                parent=self.record.id,
                why=why,
                began_at=sent_back_at,
            )
        except LeaseLostError:
            raise  # another process took over: it owns what happens next
        except LastgoodError as exc:  # the failed version is still live: a person is needed
            return self._restore_broke(why, last_good, exc)
        return self._after_restore(restore, why)

    def _restore_broke(self, why: str, last_good: int, error: LastgoodError) -> Outcome:
        return self._needs_human(
            f"{self.version.label} failed {why}; restoring v{last_good} failed: "
            f"{error.message}. {self.version.label} may still be live. A person is needed: see "
            f"'lastgood status {self.env}'"
        )

    def _after_restore(self, restore: Deployment, why: str) -> Outcome:
        assert self.record is not None
        ok = restore.status == "succeeded"
        self.record = self.store.update_deployment(
            self.record.id, by=self.project.actor, status="failed-restored" if ok else "failed",
            finished_at=time.time(),
        )  # fmt: skip
        restored = f"v{restore.to_version}"
        took = format_duration(restore.time_to_active)
        if ok:
            summary = (
                f"{self.version.label} failed {why}; restored {restored} in {took} and verified "
                f"it. See 'lastgood history {self.env}'"
            )
        else:
            summary = (
                f"{self.version.label} failed {why}; {restored} was put back in "
                f"{took} but could not be verified: {restore.detail}. A person is needed: see "
                f"'lastgood status {self.env}'"
            )
        return Outcome(
            self.env,
            "deploy",
            RESTORED if ok else NEEDS_HUMAN,
            summary,
            version=self.version.number,
            from_version=self.from_version,
            restored_version=restore.to_version,
            deployment=self.record,
            restore=restore,
        )

    def _no_fallback(self, why: str) -> Outcome:
        return self._needs_human(
            f"{self.version.label} failed {why} and there is no last known good "
            f"version to restore: {self.version.label} is still live. A person is needed: fix and "
            f"deploy, or 'lastgood rollback {self.env} --to REF'"
        )

    def _needs_human(self, summary: str) -> Outcome:
        """The failed version may still be live and nothing restored it: close the record
        ``failed``, announce restore-failed, exit 4."""
        assert self.record is not None
        self.record = self.store.update_deployment(
            self.record.id, by=self.project.actor, status="failed", finished_at=time.time()
        )
        self._emit(EventKind.RESTORE_FAILED, summary)
        return Outcome(
            self.env,
            "deploy",
            NEEDS_HUMAN,
            summary,
            version=self.version.number,
            from_version=self.from_version,
            deployment=self.record,
        )

    def live_context(self) -> CheckContext:
        """What the bake's checks see; ``first_live`` when nothing was live before this deploy
        (a ``fleet`` check then passes a bake its consumers could not report in)."""
        return live_context(self.place, self.release, first_live=self.from_version is None)


def materialize(folder: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` into ``folder`` (a temporary one): what a check of them reads."""
    for relative, data in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder
