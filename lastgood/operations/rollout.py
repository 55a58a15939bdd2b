"""A deploy's gradual rollout: step by step to a growing share of the consumers, each step baked.

Used by :mod:`lastgood.operations.deploy` on a served environment with ``[env.NAME.rollout]``,
after validation, baseline, staging and preflight. ``current`` stays on the stable version while
the pointer (``PATH/rollout.json``, see :mod:`lastgood.rollout`) gives each step's cohort the new
one; every step bakes ``step_bake`` with the environment's checks, the last one (100 %) too,
with everyone on the new version through the pointer. Only then is ``current`` switched to the
new version and the pointer removed (consumers see no change), and the version becomes last
known good as after any deploy. Until that switch, ending the rollout either way is the removal
of the pointer: the same rule at every step.

A step that trips marks the version bad, then removes the pointer — one unlink puts every
consumer back on the stable version — and only then records the automatic rollback (which
verifies last known good); a deploy killed around the unlink leaves the version judged (see
:meth:`RolloutRun._stop`). Nothing is replayed: no step, no bake. A pointer that disappears under a
running step (``rollout abort``, ``rollback``) ends the deploy as *aborted*; a deploy killed
mid-rollout leaves the pointer, so consumers keep their versions until the next command's
reconcile ends it (see :func:`end_orphaned`); one stopped by SIGTERM or Ctrl-C ends it itself.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import TYPE_CHECKING

from lastgood import failpoint
from lastgood.errors import LastgoodError
from lastgood.events import Event, EventKind
from lastgood.operations.checking import Round, build_checks, run_round
from lastgood.operations.place import Place
from lastgood.operations.restore import ensure_intact
from lastgood.outcome import RESTORED, Outcome
from lastgood.record import Record
from lastgood.rollout import Pointer, RolloutPlan, new_salt, percent_text
from lastgood.targets.rollout_pointer import (
    pointer_lock,
    promote_requested,
    remove_pointer,
    write_pointer,
)
from lastgood.termination import pause
from lastgood.units import format_duration

if TYPE_CHECKING:
    from lastgood.checks import Check, CheckContext
    from lastgood.operations.deploy import DeployRun
    from lastgood.rows import Deployment
    from lastgood.targets.served import ServedTarget

ABORTED = "aborted"
INTERRUPTED = "interrupted"


class StepResult(Record):
    """How one step's bake ended: ``tripped``, ``aborted`` (the pointer went away) or passed."""

    tripped: bool
    aborted: bool
    trigger_at: float
    last: Round | None


class RolloutRun:
    """The steps of one deploy's rollout, under the deploy's lease."""

    def __init__(self, job: DeployRun, plan: RolloutPlan) -> None:
        self.job = job
        self.plan = plan
        self.place = job.place
        self.target: ServedTarget = job.target  # type: ignore[assignment]
        self.checks: list[Check] = build_checks(job.settings.checks)
        self.started_at = time.time()
        # this rollout's cohorts: others go first next time, unless the config fixes them
        self.salt = self.plan.salt or new_salt()

    def run(self) -> Outcome:
        """Every step, the last (100 %) included, then the switch of ``current``. Stopped by
        SIGTERM or Ctrl-C, it ends the rollout on its way out (everyone on ``current``), as the
        next command would after a kill."""
        try:
            return self._steps()
        except KeyboardInterrupt:  # termination.Terminated too
            self._end_on_stop()
            raise

    def _end_on_stop(self) -> None:
        """Remove the pointer and say so; never masks the interruption (errors are dropped:
        the next command's reconcile ends a rollout left behind)."""
        with contextlib.suppress(Exception):
            with pointer_lock(self.target.path):
                removed = remove_pointer(self.target.path)
            if removed:
                self.job.store.announce_switch(self.job.env)
                live = self.target.live()
                self.job._emit(
                    EventKind.ROLLOUT_INTERRUPTED,
                    f"the rollout of {self.job.version.label} on {self.job.env} was stopped "
                    f"(SIGTERM or Ctrl-C); every consumer now gets "
                    f"{_label(live.version if live else None)}",
                )

    def _steps(self) -> Outcome:
        pointer: Pointer | None = None
        last: Round | None = None
        for step, percent in enumerate(self.plan.steps, start=1):
            moved = self._begin_step(step, percent, pointer)
            if moved is None:
                assert pointer is not None
                return self._aborted(pointer)
            pointer = moved
            result = self._bake_step(pointer)
            if result.aborted:
                return self._aborted(pointer)
            if result.tripped:
                return self._stop(pointer, result)
            last = result.last
        assert pointer is not None
        return self._switch_current(pointer, last)

    def _begin_step(self, step: int, percent: float, before: Pointer | None) -> Pointer | None:
        """Write the pointer for ``step`` (after renewing the lease) and record it; None when
        the rollout was aborted since ``before`` (the previous step's pointer) was written."""
        job = self.job
        assert job.record is not None
        now = time.time()
        stable = self.target.live()
        pointer = Pointer(
            release=job.release.name, version=job.version.number,
            stable=stable.name if stable else None, stable_version=job.from_version,
            percent=percent, step=step, steps=self.plan.steps, started_at=self.started_at,
            step_started_at=now, deployment=job.record.id, salt=self.salt,
        )  # fmt: skip
        with pointer_lock(self.target.path):
            if before is not None and not self._still_rolling(before):
                return None
            job.lease.fence()
            write_pointer(self.target.path, pointer)
        failpoint.hit("rollout.after-pointer")
        progress: dict[str, object] = {"detail": f"rolling out: {pointer.progress()}"}
        if step == 1:  # the version went live, for some: the record says when (and announces)
            progress["activated_at"] = now
        job.record = job.store.update_deployment(job.record.id, by=job.project.actor, **progress)
        if step > 1:
            job.store.announce_switch(job.env)
        self._announce_step(pointer)
        return pointer

    def _announce_step(self, pointer: Pointer) -> None:
        job = self.job
        stable = f"v{pointer.stable_version}" if pointer.stable_version else "nothing"
        job._emit(
            EventKind.ROLLOUT_STEP,
            f"rolling out {job.version.label} on {job.env}: {pointer.progress()} of the "
            f"consumers, the others keep {stable}; baking {format_duration(self.plan.step_bake)}",
            step=pointer.step, steps=len(pointer.steps), percent=pointer.percent,
            stable=pointer.stable_version,
        )  # fmt: skip

    def _bake_step(self, pointer: Pointer) -> StepResult:
        """Rounds every ``interval`` until ``step_bake`` passed on a green round (or a promote
        asked to move on after one), ``failures`` rounds in a row failed, or the pointer went."""
        settings = self.job.settings
        deadline = pointer.step_started_at + self.plan.step_bake
        consecutive, last, number = 0, None, 0
        while True:
            if not self._still_rolling(pointer):
                return StepResult(False, True, time.time(), last)
            number += 1
            last = self._round(self._context(), pointer, number, deadline)
            consecutive = 0 if last.ok else consecutive + 1
            if consecutive >= settings.failures:
                return StepResult(True, False, last.at, last)
            promoted = promote_requested(self.target.path, pointer.step) is not None
            green = last.ok and not last.inconclusive  # inconclusive: wait for the reports
            if green and (time.time() >= deadline or not self.checks or promoted):
                return StepResult(False, False, last.at, last)
            failpoint.hit("rollout.mid-step")
            pause(_pause(deadline, settings.interval, last.ok))  # a stop asked ends it

    def _still_rolling(self, pointer: Pointer) -> bool:
        """Renew the lease; False when the pointer is gone or names another release (someone
        aborted the rollout). LeaseLostError when another process took the environment."""
        self.job.lease.fence()
        now = self.target.rollout()
        return now is not None and now.release == pointer.release

    def _context(self) -> CheckContext:
        from lastgood.checks import CheckContext

        job = self.job
        return CheckContext(job.env, job.version.number, self.target.staged_path(job.release),
                            job.project.root, fleet=job.store.consumers)  # fmt: skip

    def _round(
        self, context: CheckContext, pointer: Pointer, number: int, deadline: float
    ) -> Round:
        """Round ``number`` of this step (numbered per step, as people count them); ``fleet``
        checks compare the step's cohort with the consumers outside it, still on the stable
        version (:mod:`lastgood.operations.cohorts`)."""
        from lastgood.operations.cohorts import against_the_rest

        job = self.job
        assert job.record is not None
        label = f"{pointer.progress()} round {number}"
        planned = self._planned_rounds()
        if number <= planned:  # past it, failed rounds are being retried: no "of" to give
            label += f"/{planned}"
        baselines = against_the_rest(job.baselines, self.checks, job.store.consumers, job.env,
                                     job.from_version, pointer)  # fmt: skip
        return run_round(self.place, self.checks, context, phase="bake", number=number,
                         deployment=job.record.id, baselines=baselines, label=label,
                         settles_at=deadline)  # fmt: skip

    def _planned_rounds(self) -> int:
        """Rounds a green step takes at most: one at once, then one every ``interval`` until
        ``step_bake`` has passed (the last one on the deadline, see :func:`_pause`); fewer
        when the rounds themselves take time."""
        interval = self.job.settings.interval
        if self.plan.step_bake <= 0 or interval <= 0:
            return 1
        return 1 + math.ceil(self.plan.step_bake / interval - 1e-9)

    def _switch_current(self, pointer: Pointer, last: Round | None) -> Outcome:
        """Every step baked (the last one with everyone on the new version through the
        pointer): ``current`` switched to it, the pointer removed, the verdict as after any
        deploy. Consumers see no change: they already had the new version."""
        job = self.job
        assert job.record is not None
        with pointer_lock(self.target.path):
            if not self._still_rolling(pointer):
                return self._aborted(pointer)
            job.lease.fence()
            job.target.activate(job.release)
            remove_pointer(self.target.path)
        job.store.set_env(job.env, live_version=job.version.number)
        job.store.announce_switch(job.env)  # readers without an id get the new version now
        took = format_duration(time.time() - self.started_at)
        job.record = job.store.update_deployment(
            job.record.id,
            by=job.project.actor,
            detail=f"rolled out {self.plan.describe()} in {took}",
        )
        ensure_intact(self.place, job.version, deployment=job.record.id)
        job._emit(EventKind.ACTIVATED, f"{job.version.label} is live on {job.env} for everyone, "
                  f"after {format_duration(time.time() - self.started_at)} of rollout",
                  activated_at=time.time())  # fmt: skip
        return job._succeed(last)

    def _stop(self, pointer: Pointer, result: StepResult) -> Outcome:
        """A step tripped: the version is marked bad, everyone back on stable (the unlink),
        then the rest of the ledger: the automatic rollback to last known good, verified.

        The verdict comes before the unlink, and is true whatever follows: the version failed
        this step's checks. After the unlink, a process killed before its next write would
        leave a version nobody judged, free to be deployed again as if it had not failed; a
        process killed before the unlink leaves the pointer, which the next command removes
        (see :func:`end_orphaned`). Either way that command closes the record ``interrupted``,
        saying the version had failed. The unlink waits for the verdict's few writes only."""
        from lastgood.operations.verdicts import mark_bad

        job = self.job
        assert job.record is not None
        mark_bad(self.place, job.version, job.record.id)
        failpoint.hit("rollout.after-verdict")
        remove_pointer(self.target.path)
        failpoint.hit("rollout.after-stop")
        sent_back_at = time.time()  # the restore began here: the fleet's time counts from it
        job.store.announce_switch(job.env)
        job._emit(
            EventKind.ROLLOUT_STOPPED,
            f"the rollout of {job.version.label} on {job.env} stopped at {pointer.progress()}: "
            f"every consumer is back on {_label(pointer.stable_version)}",
            step=pointer.step, percent=pointer.percent,
        )  # fmt: skip
        during = f"at {pointer.progress()}"
        if job.store.env_state(job.env).last_good is None:
            return self._stopped_unproven(pointer, result, during)
        return job._fail(result.trigger_at, result.last, during=during, sent_back_at=sent_back_at,
                         judged=True)  # fmt: skip

    def _stopped_unproven(self, pointer: Pointer, result: StepResult, during: str) -> Outcome:
        """A step tripped with no last known good to restore: the stable version keeps serving
        everyone (it did before the rollout), the new one is bad (:meth:`_stop` marked it);
        exit 3 as after a restore."""
        job = self.job
        assert job.record is not None
        last = result.last
        why = f"{last.failed_names() if last else 'its checks'} on {job.env} {during}"
        summary = (
            f"{job.version.label} failed {why}; every consumer is back on "
            f"{_label(pointer.stable_version)}, which was live before (never proven good here)"
        )
        job.record = job.store.update_deployment(
            job.record.id, by=job.project.actor, status="failed-restored",
            failed_at=result.trigger_at, finished_at=time.time(), detail=summary,
        )  # fmt: skip
        job._emit(EventKind.DEPLOY_FAILED, summary)
        return Outcome(job.env, "deploy", RESTORED, summary, version=job.version.number,
                       from_version=job.from_version, deployment=job.record)  # fmt: skip

    def _aborted(self, pointer: Pointer) -> Outcome:
        """Someone removed the pointer (``rollout abort``, ``rollback``): the version is
        withdrawn, not bad (nothing proved it broken), and the record closed ``aborted``."""
        from lastgood.operations.verdicts import withdraw

        job = self.job
        assert job.record is not None
        stable = pointer.stable_version
        if stable is not None:
            withdraw(self.place, job.version.number, stable, job.record.id)
        summary = (
            f"the rollout of {job.version.label} on {job.env} was aborted at "
            f"{pointer.progress()}; every consumer is back on {_label(stable)}"
        )
        job.record = job.store.update_deployment(
            job.record.id, by=job.project.actor, status=ABORTED, finished_at=time.time(),
            detail=summary,
        )  # fmt: skip
        # exit 3, as a failed bake: the version is not live, every consumer is on last known
        # good, and a pipeline that goes on to announce the release on exit 0 must not
        return Outcome(job.env, "deploy", RESTORED, summary, version=job.version.number,
                       from_version=job.from_version, deployment=job.record)  # fmt: skip


def _pause(deadline: float, interval: float, green: bool) -> float:
    left = deadline - time.time()
    return left if green and 0 < left < interval else interval


def _label(version: int | None) -> str:
    return "nothing" if version is None else f"v{version}"


def end_orphaned(place: Place) -> str | None:
    """A rollout whose deploy is gone (killed, or its lease taken): remove the pointer so that
    every consumer gets what ``current`` serves, and say so. Called by reconcile under the
    lease, so no live deploy owns the pointer. Writes the target and emits an event."""
    from lastgood.targets.served import ServedTarget

    target = place.target
    if not isinstance(target, ServedTarget):
        return None
    try:
        pointer: Pointer | None = target.rollout()
    except LastgoodError:
        pointer = None  # unreadable: removed all the same
    if not remove_pointer(target.path):
        return None
    ended_at = time.time()
    place.store.announce_switch(place.name)
    live = target.live()
    where = f"v{pointer.version} at {pointer.progress()}" if pointer else "an unreadable rollout"
    failed = _failed(place, pointer)
    note = (
        f"the rollout of {where} on {place.name} was interrupted before it finished{failed}; "
        f"every consumer now gets {_label(live.version if live else None)}"
    )
    data = {"step": pointer.step, "percent": pointer.percent} if pointer else {}
    place.emit(Event(EventKind.ROLLOUT_INTERRUPTED, note, env=place.name,
                     deployment=pointer.deployment if pointer else None, data=data))  # fmt: skip
    if pointer is not None:
        close_ended(place, pointer, status=INTERRUPTED, ended_at=ended_at, detail=note)
    return note


def _failed(place: Place, pointer: Pointer | None) -> str:
    """What to add when the rollout's step had tripped (the version marked bad) before its
    deploy was killed, short of removing the pointer (see :meth:`RolloutRun._stop`)."""
    from lastgood.operations.verdicts import failed_while_running

    if pointer is None:
        return ""
    return failed_while_running(place, pointer.version, pointer.started_at)


def close_ended(
    place: Place, pointer: Pointer, *, status: str, ended_at: float, detail: str
) -> Deployment | None:
    """Close the record of a rollout whose deploy is gone, ended at ``ended_at`` (the removal
    of the pointer, which the fleet's time to restore counts from): ``aborted`` when a person
    ended it (the version withdrawn, as the deploy itself would), ``interrupted`` when reconcile
    found it. Call under the lease. A record already closed is left as it is; writes."""
    from lastgood.errors import NotFoundError
    from lastgood.operations.verdicts import withdraw

    if pointer.deployment is None:
        return None
    try:
        record = place.store.deployment(pointer.deployment)
    except NotFoundError:  # a pointer edited by hand: no record to close
        return None
    if record.status != "running" or record.to_version != pointer.version:
        return record
    if status == ABORTED and pointer.stable_version is not None:
        withdraw(place, pointer.version, pointer.stable_version, record.id)
    return place.store.update_deployment(
        record.id, by=place.project.actor, status=status, finished_at=ended_at, detail=detail
    )


__all__ = ["ABORTED", "INTERRUPTED", "RolloutRun", "close_ended", "end_orphaned", "percent_text"]
