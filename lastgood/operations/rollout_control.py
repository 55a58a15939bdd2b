"""``rollout status|promote|abort``: look at a gradual rollout, hurry it on, or end it.

The running deploy owns the rollout (see :mod:`lastgood.operations.rollout`) and holds the
environment's lease, so these verbs never wait for it to act:

- **abort** removes the pointer on the target itself — one unlink, every consumer back on the
  stable version at once — then lets the deploy notice between two rounds and close its record
  ``aborted`` (or, when no deploy is left, reconciles the ledger itself). ``lastgood rollback``
  without ``--to`` during a rollout is the same abort.
- **promote** leaves a flag beside the pointer (``rollout-promote.json``, naming the step): the
  deploy ends that step after its next green round instead of waiting out ``step_bake``.
- **status** reads the pointer, the ledger record and the consumers' reports.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from lastgood.errors import LockedError, NotFoundError, RefusedError
from lastgood.events import Event, EventKind
from lastgood.operations.fleet import STALE_AFTER
from lastgood.operations.lease import env_is_busy
from lastgood.operations.place import Place
from lastgood.outcome import OK, Outcome
from lastgood.record import Record, as_dict
from lastgood.rollout import Pointer, percent_text
from lastgood.targets.rollout_pointer import pointer_lock, remove_pointer, request_promote
from lastgood.units import format_duration

if TYPE_CHECKING:
    from collections.abc import Iterable

    from lastgood.operations.fleet import FleetStanding
    from lastgood.project import Project
    from lastgood.rows import Consumer, Deployment
    from lastgood.targets.served import ServedTarget


class CohortFleet(Record):
    """The live consumers of one cohort: how many, and how many serve the cohort's version."""

    version: int | None
    total: int
    following: int

    def summary(self) -> str:
        label = "-" if self.version is None else f"v{self.version}"
        return f"{label} on {self.following}/{self.total} of its cohort"


class RolloutStatus(Record):
    """Where the rollout of one environment stands (``rolling`` False: none under way)."""

    env: str
    rolling: bool
    pointer: Pointer | None = None
    in_step: float | None = None  # seconds since this step began
    step_bake: float | None = None
    new: CohortFleet | None = None
    stable: CohortFleet | None = None
    promote_requested_by: str | None = None
    orphaned: bool = False  # no live deploy holds the environment: the next write ends it

    def summary(self) -> str:
        pointer = self.pointer
        if pointer is None:
            return f"no rollout is under way on {self.env}"
        took = format_duration(self.in_step or 0.0)
        stable = _label(pointer.stable_version)
        if self.orphaned:
            text = (
                f"rollout of v{pointer.version} on {self.env} interrupted at "
                f"{pointer.progress()}: its deploy is no longer running; abort it ('lastgood "
                f"rollout abort {self.env}': everyone back on {stable}) or deploy again; until "
                f"then the others get {stable}"
            )
        else:
            text = (
                f"rolling out v{pointer.version} on {self.env}: {pointer.progress()}, {took} in "
                f"this step; the others get {stable}"
            )
        if self.new is not None and self.stable is not None:
            text += f"; {self.new.summary()}, {self.stable.summary()}"
        return text

    def to_json(self) -> dict[str, Any]:
        data = as_dict(self)
        data["summary"] = self.summary()
        return data


def served_target(place: Place) -> ServedTarget:
    """``place``'s target when it is served; NotFoundError naming what to set otherwise."""
    from lastgood.targets.served import ServedTarget

    target = place.target
    if not isinstance(target, ServedTarget):
        raise NotFoundError(
            f"{place.name} is not a served environment, so it has no gradual rollout",
            hint=f'set target = {{ type = "served" }} and [env.{place.name}.rollout] '
            'steps = ["5%", "25%", "100%"] in lastgood.toml',
        )
    return target


def _under_way(place: Place) -> Pointer:
    pointer = served_target(place).rollout()
    if pointer is None:
        raise NotFoundError(
            f"no rollout is under way on {place.name}",
            hint=f"'lastgood status {place.name}' shows what is live; a deploy there starts one",
        )
    return pointer


def rollout_status(
    project: Project, env: str, reports: Iterable[Consumer] | None = None
) -> RolloutStatus:
    """Where ``env``'s rollout stands, with its fleet per cohort. Reads only."""
    from lastgood.targets.rollout_pointer import promote_requested

    place = Place(project, env)
    target = served_target(place)
    pointer = target.rollout()
    if pointer is None:
        return RolloutStatus(env, False)
    consumers = place.store.consumers(env) if reports is None else list(reports)
    new, stable = cohort_fleets(env, consumers, pointer)
    plan = place.settings.rollout
    now = time.time()
    return RolloutStatus(
        env, True, pointer, now - pointer.step_started_at, plan.step_bake if plan else None,
        new, stable, promote_requested(target.path, pointer.step),
        not env_is_busy(project, env, now),
    )  # fmt: skip


def cohort_fleets(
    env: str, consumers: Iterable[Consumer], pointer: Pointer, now: float | None = None
) -> tuple[CohortFleet, CohortFleet]:
    """The live consumers split by cohort, each against the version its cohort gets."""
    now = time.time() if now is None else now
    new_total = new_on = stable_total = stable_on = 0
    for consumer in consumers:
        if now - consumer.seen_at > STALE_AFTER or (
            consumer.version is None and consumer.kind != "agent"
        ):
            continue  # silent, or an SDK process that never served a config
        if pointer.includes(env, consumer.consumer_id):
            new_total += 1
            new_on += consumer.version == pointer.version
        else:
            stable_total += 1
            stable_on += consumer.version == pointer.stable_version
    return (CohortFleet(pointer.version, new_total, new_on),
            CohortFleet(pointer.stable_version, stable_total, stable_on))  # fmt: skip


def rolling_standing(env: str, consumers: Iterable[Consumer], pointer: Pointer) -> FleetStanding:
    """The fleet of a rolling-out environment: each live consumer counted against its own
    cohort's version, so the stable cohort is not "behind" (``verb`` says the step)."""
    from lastgood.operations.fleet import FleetStanding, serving

    now, everyone = time.time(), list(consumers)
    live, without_config = serving(everyone, now)
    behind = []
    for consumer in live:
        wanted = wanted_by(env, consumer, pointer)
        if consumer.version != wanted:
            shown = "-" if consumer.version is None else f"v{consumer.version}"
            behind.append(f"{consumer.name} ({shown}, wants {_label(wanted)})")
    verb = f"or {_label(pointer.stable_version)} by cohort ({pointer.progress()})"
    return FleetStanding(env=env, version=pointer.version, total=len(live),
                         following=len(live) - len(behind), behind=sorted(behind), verb=verb,
                         gone=len(everyone) - len(live) - without_config,
                         without_config=without_config)  # fmt: skip


def wanted_by(env: str, consumer: Consumer, pointer: Pointer) -> int | None:
    """The version ``consumer`` should serve during the rollout: its cohort's."""
    if pointer.includes(env, consumer.consumer_id):
        return pointer.version
    return pointer.stable_version


def promote_rollout(project: Project, env: str) -> Outcome:
    """Ask the running deploy to end the current step after its next green round. Writes the
    flag on the target and the ledger's event."""
    place = Place(project, env)
    pointer = _under_way(place)
    if not env_is_busy(project, env, time.time()):
        raise RefusedError(
            f"the deploy that ran the rollout of v{pointer.version} on {env} is gone, so "
            "nothing would act on a promote",
            hint=f"'lastgood rollout abort {env}' ends the rollout (everyone back on "
            f"{_label(pointer.stable_version)}); deploy again to start a new one",
        )
    request_promote(served_target(place).path, pointer.step, project.actor)
    summary = (
        f"{project.actor} promoted the rollout of v{pointer.version} on {env}: it leaves "
        f"{pointer.progress()} after its next green round"
    )
    place.emit(Event(EventKind.ROLLOUT_PROMOTED, summary, env=env, version=pointer.version,
                     deployment=pointer.deployment, data={"step": pointer.step}))  # fmt: skip
    return Outcome(env, "rollout-promote", OK, summary, version=pointer.version,
                   from_version=pointer.stable_version)  # fmt: skip


def abort_rollout(project: Project, env: str, *, reason: str = "") -> Outcome:
    """End ``env``'s rollout now: the pointer removed (everyone back on the stable version in
    one unlink), then the ledger made truthful. Writes the target, the events and the record
    (through the running deploy, or reconcile when none is left)."""
    place = Place(project, env)
    pointer = _under_way(place)
    started, folder = time.time(), served_target(place).path
    with pointer_lock(folder):  # never while a step is about to begin: see pointer_lock
        remove_pointer(folder)
    ended_at = time.time()
    took = ended_at - started
    place.store.announce_switch(env)
    because = f" ({reason})" if reason else ""
    summary = (
        f"{project.actor} aborted the rollout of v{pointer.version} on {env} at "
        f"{pointer.progress()}{because}: every consumer is back on "
        f"{_label(pointer.stable_version)} ({format_duration(took)})"
    )
    place.emit(Event(EventKind.ROLLOUT_ABORTED, summary, env=env, version=pointer.version,
                     deployment=pointer.deployment,
                     data={"step": pointer.step, "percent": pointer.percent,
                           "reason": reason}))  # fmt: skip
    record = _settle(place, pointer, ended_at, summary)
    return Outcome(env, "rollout-abort", OK, summary, version=pointer.stable_version,
                   from_version=pointer.version, deployment=record)  # fmt: skip


def _settle(place: Place, pointer: Pointer, ended_at: float, summary: str) -> Deployment | None:
    """Wait until the rollout's record is closed ``aborted``: by its deploy (which notices the
    pointer gone between two rounds) or, once the lease is free (its deploy is gone), here, in
    the name of the person who aborted it. Bounded by the lease's lifetime: a deploy that has
    not closed it by then is stuck, and the next command will. The record's ``finished_at``
    is then ``ended_at``, when the consumers were sent back (the deploy notices later)."""
    from lastgood.operations.lease import EnvLease
    from lastgood.operations.reconcile import reconcile
    from lastgood.operations.rollout import ABORTED, close_ended

    deadline = time.monotonic() + place.settings.lease_ttl
    while True:
        try:
            with EnvLease(place, "rollback"):
                detail = f"{summary}; the deploy that ran it was no longer running"
                close_ended(place, pointer, status=ABORTED, ended_at=ended_at, detail=detail)
                reconcile(place)
            break
        except LockedError:
            if _closed(place, pointer) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    if pointer.deployment is None:
        return None
    record = place.store.deployment(pointer.deployment)
    if record.status == ABORTED and (record.finished_at or ended_at) > ended_at:
        record = place.store.update_deployment(record.id, by=place.project.actor,
                                               finished_at=ended_at)  # fmt: skip
    return record


def _closed(place: Place, pointer: Pointer) -> bool:
    if pointer.deployment is None:
        return True
    return place.store.deployment(pointer.deployment).status != "running"


def _label(version: int | None) -> str:
    return "nothing" if version is None else f"v{version}"


__all__ = ["abort_rollout", "cohort_fleets", "percent_text", "promote_rollout", "rollout_status"]
