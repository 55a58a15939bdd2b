"""``rollback``: put back a known good version and verify it; simpler than deploying, always.

Without ``--to`` it restores the last known good version, or, when that is already live, the
most recently proven good version before it — unless the live last known good was edited by
hand on the target (drift): then it rewrites that version's exact bytes and withdraws nothing,
since the edit is what broke it, not the version. It never lands on a version that failed in this
environment. It skips validation, preflight and bake, and when the target still holds the
release it is a pointer switch. The version rolled away from is marked *withdrawn* (not bad: it
may be deployed again), so rolling back twice in a row keeps walking back.
"""

from __future__ import annotations

import json
import os
import time

from lastgood import config as config_module
from lastgood import failpoint, holder
from lastgood.errors import NotFoundError, QuarantinedError, RefusedError, TargetError
from lastgood.events import Event, EventKind
from lastgood.operations.checking import build_checks, live_context, run_round
from lastgood.operations.lease import EnvLease
from lastgood.operations.ledger import closed_on_error
from lastgood.operations.place import Place
from lastgood.operations.reconcile import (
    ROLLOUT_ENDED,
    offline_log_lock,
    offline_log_path,
    reconcile,
)
from lastgood.operations.resolve import resolve
from lastgood.operations.restore import (
    Verification,
    ensure_intact,
    release_of,
    switch_to,
    verify,
)
from lastgood.operations.verdicts import mark_good, quarantined_by, withdraw
from lastgood.outcome import NEEDS_HUMAN, OK, Outcome
from lastgood.project import Project
from lastgood.rows import BAD, GOOD, WITHDRAWN, Deployment, VersionInfo
from lastgood.targets import open_target
from lastgood.targets.base import UNVERIFIED
from lastgood.units import format_duration, plural


def choose_destination(place: Place, live: int | None) -> VersionInfo:
    """Last known good, or when it is live already, the newest other good version."""
    store, env = place.store, place.name
    state = store.env_state(env)
    verdicts = store.verdict_times(env)
    last_good = state.last_good
    if last_good is not None and last_good != live and verdicts.get(last_good, ("",))[0] == GOOD:
        return store.version(last_good)
    good = sorted(
        (at, number)
        for number, (verdict, at) in verdicts.items()
        if verdict == GOOD and number != live
    )
    if not good:
        raise NotFoundError(
            f"no known good version to roll back to on {env} (live: "
            f"{'v' + str(live) if live else 'nothing'})",
            hint=f"name one with 'lastgood rollback {env} --to REF'; 'lastgood history {env}' "
            "shows what ran there",
        )
    return store.version(good[-1][1])


def rollback(
    project: Project,
    env: str,
    *,
    to: str | None = None,
    reason: str = "",
    force: bool = False,
    source: str = "cli",
    trigger_at: float | None = None,
    automatic: bool = False,
) -> Outcome:
    """Restore a known good version on ``env`` and verify it. Writes the store and the target.

    The watcher passes ``automatic`` (recorded as an automatic rollback by ``lastgood``) and
    ``trigger_at``, the moment its policy decided, so the restore time is measured from the
    detection rather than from when the lease was free.
    """
    requested_at = time.time()
    place = Place(project, env)  # an unknown name fails here, before the lease
    if to is None and _rolling_out(place):  # everyone back on stable: nothing to switch
        from lastgood.operations.rollout_control import abort_rollout

        return abort_rollout(project, env, reason=reason)
    with EnvLease(place, "rollback", force=force) as lease:
        failpoint.hit("rollback.after-lease")
        reconcile(place)
        live = place.target.live()
        live_number = live.version if live else None
        if to is None and _drifted_last_good(place, live_number):
            assert live_number is not None
            repaired = place.store.version(live_number)
            record = _open_record(
                place, live_number, repaired, reason, source, requested_at,
                trigger_at=trigger_at, automatic=automatic,
            )  # fmt: skip
            with closed_on_error(project, lambda: record.id):
                done = _restore_in_place(place, lease, repaired, record)
            checked = bool(place.settings.checks)
            return _outcome(env, done, live_number, checked=checked, in_place=True)
        destination = _destination(place, to, live_number, force)
        if destination.number == live_number:
            return _already_live(place, destination)
        record = _open_record(
            place, live_number, destination, reason, source, requested_at,
            trigger_at=trigger_at, automatic=automatic,
        )  # fmt: skip
        try:
            with closed_on_error(project, lambda: record.id):
                done = restore(place, lease, destination, record, point="rollback.before-activate")
        except TargetError as exc:  # the restore itself failed: a person is needed (exit 4)
            return _restore_failed(place, live_number, destination, exc)
        failpoint.hit("rollback.after-verify")
        checked = bool(place.settings.checks)
        return _outcome(env, done, live_number, checked=checked)


def _rolling_out(place: Place) -> bool:
    """A gradual rollout is under way (its pointer is on the served target). Reads only."""
    from lastgood.targets.served import ServedTarget

    target = place.target
    if not isinstance(target, ServedTarget):
        return False
    try:
        return target.rollout() is not None
    except TargetError:
        return True  # an unreadable pointer: the abort removes it


def _restore_failed(
    place: Place, live: int | None, destination: VersionInfo, error: TargetError
) -> Outcome:
    """A rollback whose switch could not be carried out (a full disk, a file in the way): the
    record is closed ``failed``; what is live now is read back and said."""
    env = place.name
    served = place.target.live()
    now = _label(served.version if served else None)
    hint = f" ({error.hint})" if error.hint else ""
    summary = (
        f"could not restore {destination.label} on {env}: {error.message}{hint}. {now} is live. "
        f"A person is needed: see 'lastgood status {env}'"
    )
    place.emit(Event(EventKind.RESTORE_FAILED, summary, env=env, version=destination.number))
    return Outcome(env, "rollback", NEEDS_HUMAN, summary, version=destination.number,
                   from_version=live)  # fmt: skip


def _drifted_last_good(place: Place, live: int | None) -> bool:
    """The live version is last known good but its files were edited by hand: what to undo is
    the edit, so a plain rollback rewrites those bytes instead of walking back a version."""
    if live is None or place.store.env_state(place.name).last_good != live:
        return False
    actual = place.target.actual_hash()
    if actual == UNVERIFIED:  # kept on another machine only: nothing here says it was edited
        return False
    return actual != place.store.version(live).content_hash


def _restore_in_place(
    place: Place, lease: EnvLease, version: VersionInfo, record: Deployment
) -> Deployment:
    """Put live ``version``'s exact bytes back, verify, close ``record``. Nothing is withdrawn:
    the version did nothing wrong. A switch to the same release (a pointer switch, or the files
    target's journal superseding one a process left half-done), then the byte check of
    ``verify`` rewrites whatever was edited by hand."""
    activated_at = switch_to(place, lease, version, point="rollback.before-activate")
    record = place.store.update_deployment(
        record.id, by=place.project.actor, activated_at=activated_at
    )
    checked = verify(place, version, deployment=record.id, lease=lease)
    if checked.ok:
        return _verified(place, version, record, checked)
    return _unverified(place, version, record, checked)


def _already_live(place: Place, destination: VersionInfo) -> Outcome:
    """Nothing to switch; still make sure the live files are exactly the version's."""
    env = place.name
    repaired = ensure_intact(place, destination, deployment=None)
    files = plural(len(repaired), "file")
    note = f"rewrote {files} edited by hand" if repaired else "nothing to do"
    summary = f"{destination.label} is already live on {env}; {note}"
    return Outcome(
        env, "rollback", OK, summary, version=destination.number, from_version=destination.number
    )


def _open_record(
    place: Place,
    live: int | None,
    destination: VersionInfo,
    reason: str,
    source: str,
    requested_at: float,
    *,
    trigger_at: float | None = None,
    automatic: bool = False,
) -> Deployment:
    """The ledger record of a rollback, timed from the request (or the trigger); emits
    rollback-started, or auto-rollback-started for the watcher's automatic ones."""
    actor = "lastgood" if automatic else place.project.actor
    record = place.store.begin_deployment(
        env=place.name,
        kind="auto-rollback" if automatic else "rollback",
        from_version=live,
        to_version=destination.number,
        actor=actor,
        reason=reason,
        source=source,
        trigger_at=trigger_at or requested_at,
        requested_at=requested_at,
    )
    because = f" ({reason})" if reason else ""
    with closed_on_error(place.project, lambda: record.id):  # a store that fails here closes it too
        _announce_start(place, record, live, destination, actor, because, automatic)
    return record


def _announce_start(
    place: Place, record: Deployment, live: int | None,
    destination: VersionInfo, actor: str, because: str, automatic: bool,
) -> None:  # fmt: skip
    env = place.name
    place.emit(
        Event(
            EventKind.AUTO_ROLLBACK_STARTED if automatic else EventKind.ROLLBACK_STARTED,
            f"rolling back {env}: {_label(live)} → {destination.label} by {actor}{because}",
            env=env,
            version=destination.number,
            deployment=record.id,
        )
    )


def _destination(place: Place, to: str | None, live: int | None, force: bool) -> VersionInfo:
    if to is None:
        return choose_destination(place, live)
    env = place.name
    destination = resolve(place.project, to, env=env)
    if place.settings.approval is not None:
        return _ran_here(place, destination, force)
    if force:
        return destination
    failed = quarantined_by(place, destination)
    if failed is not None:
        same = "" if failed == destination.number else f" has the same content as v{failed}, which"
        raise QuarantinedError(
            f"{destination.label}{same} failed its checks on {env}; rolling back to it would "
            "bring the failure back",
            hint=f"pick another version, or insist with 'lastgood rollback {env} --to "
            f"{destination.label} --force'",
        )
    proven = place.store.verdicts(env).get(destination.number) in (GOOD, WITHDRAWN)
    kept = release_of(destination) in place.target.retained()  # damaged or not
    if not proven and not kept:
        raise RefusedError(
            f"{destination.label} never ran on {env}: a rollback only goes back to what ran "
            "there, skipping validation, preflight and bake",
            hint=f"deploy it instead: 'lastgood deploy {env} --version {destination.label}'",
        )
    return destination


def _ran_here(place: Place, destination: VersionInfo, force: bool) -> VersionInfo:
    """Where changes need approval, a rollback goes back only to a version that ran there and
    was judged (good, withdrawn by a rollback, or — with ``--force`` — bad): anything else
    would put unreviewed content live without a request. A release the target merely keeps
    is not enough (it may have been staged before approvals were required)."""
    env = place.name
    verdict = place.store.verdicts(env).get(destination.number)
    if verdict in (GOOD, WITHDRAWN) or (force and verdict == BAD):
        return destination
    if verdict == BAD:
        raise QuarantinedError(
            f"{destination.label} failed its checks on {env}; rolling back to it would bring the "
            "failure back",
            hint=f"pick another version, or insist with 'lastgood rollback {env} --to "
            f"{destination.label} --force'",
        )
    from lastgood.operations.gate import opening_command

    opening = opening_command(place, f"--version {destination.label} -m WHY")
    raise RefusedError(
        f"{destination.label} never ran on {env}, which takes new content only through an "
        "approved change request",
        hint=f"open one: '{opening}'; 'lastgood rollback {env}' goes back to last known good",
    )


def restore(
    place: Place,
    lease: EnvLease,
    destination: VersionInfo,
    record: Deployment,
    *,
    point: str,
) -> Deployment:
    """Switch to ``destination``, verify, and close ``record`` with the truth."""
    store = place.store
    _mark_left_on_target(place, record.from_version, destination)
    activated_at = switch_to(place, lease, destination, point=point)
    record = store.update_deployment(record.id, by=place.project.actor, activated_at=activated_at)
    failpoint.hit("rollback.after-activate")
    checked = verify(place, destination, deployment=record.id, lease=lease)
    withdraw(place, record.from_version, destination.number, record.id)
    if checked.ok:
        return _verified(place, destination, record, checked)
    return _unverified(place, destination, record, checked)


def _mark_left_on_target(place: Place, left: int | None, destination: VersionInfo) -> None:
    """Before the switch, write ``withdrawn`` onto the target for the version being left, so
    that an offline rollback after this one is killed never walks back to it. The store's
    verdict follows once the rollback is done (or the next command reconciles it). Writes the
    target only."""
    if left is None or left == destination.number:
        return
    if place.store.verdicts(place.name).get(left) == BAD:
        return  # bad is stronger, and already on the target
    place.target.record_verdict(release_of(place.store.version(left)), WITHDRAWN)


def _baked_before(place: Place, destination: VersionInfo) -> bool:
    """Whether ``destination`` passed a bake on this environment: good, or withdrawn by a
    rollback after a deploy of it passed (a person rolling back to it again, verified now,
    makes it last known good again; otherwise two ``rollback --to`` in a row would leave no
    good version at all)."""
    verdict = place.store.verdicts(place.name).get(destination.number)
    if verdict == GOOD:
        return True
    return verdict == WITHDRAWN and place.store.passed_bake(place.name, destination.number)


def _verified(
    place: Place, destination: VersionInfo, record: Deployment, checked: Verification
) -> Deployment:
    store, env = place.store, place.name
    if _baked_before(place, destination):
        mark_good(place, destination, record.id)  # proven by a bake before, verified now
    unchecked = not place.settings.checks
    record = store.update_deployment(
        record.id,
        by=place.project.actor,
        status="succeeded",
        verified_at=None if unchecked else checked.at,  # nothing proved it: no verified time
        finished_at=time.time(),
        detail=checked.summary(),
    )
    kind = (
        EventKind.AUTO_ROLLED_BACK
        if record.kind == "auto-rollback"
        else EventKind.ROLLBACK_PERFORMED
    )
    proof = (
        "not verified: no checks are configured, so nothing proved it healthy"
        if unchecked
        else f"verified in {format_duration(record.time_to_verified)}"
    )
    place.emit(
        Event(
            kind,
            f"restored {destination.label} on {env} in {format_duration(record.time_to_active)}, "
            f"{proof}",
            env=env,
            version=destination.number,
            deployment=record.id,
            data={
                "from": record.from_version,
                "to": destination.number,
                "actor": record.actor,
                "reason": record.reason,
                "time_to_active": record.time_to_active,
                "time_to_verified": record.time_to_verified,
            },
        )
    )
    _check_budget(place, record)
    return record


def _check_budget(place: Place, record: Deployment) -> None:
    """Announce a restore slower than the environment's budget: the five-minute rule broken."""
    budget = place.settings.budget
    took = record.time_to_verified
    if took is None or took <= budget:
        return
    env = place.name
    place.emit(
        Event(
            EventKind.BUDGET_EXCEEDED,
            f"restoring v{record.to_version} on {env} took {format_duration(took)}, over the "
            f"budget of {format_duration(budget)}",
            env=env,
            version=record.to_version,
            deployment=record.id,
            data={"time_to_verified": took, "budget": budget, "kind": record.kind},
        )
    )


def _unverified(
    place: Place, destination: VersionInfo, record: Deployment, checked: Verification
) -> Deployment:
    env = place.name
    record = place.store.update_deployment(
        record.id,
        by=place.project.actor,
        status="unverified",
        failed_at=checked.at,
        finished_at=time.time(),
        detail=checked.summary(),
    )
    place.emit(
        Event(
            EventKind.RESTORE_FAILED,
            f"{destination.label} is live again on {env} but its checks still fail: "
            f"{checked.summary()}",
            env=env,
            version=destination.number,
            deployment=record.id,
        )
    )
    return record


def auto_rollback(
    place: Place,
    lease: EnvLease,
    destination: VersionInfo,
    *,
    failed: VersionInfo,
    trigger_at: float,
    parent: int,
    why: str,
    began_at: float | None = None,
) -> Deployment:
    """Restore ``destination`` after ``failed`` tripped its bake; timed from ``trigger_at``.

    ``began_at`` (the record's ``requested_at``) is when the restore began, if before now: a
    gradual rollout's failed step removed its pointer first, which already sent every consumer
    back to the stable version. Such a record's source is ``rollout`` (``auto`` otherwise), so
    the fleet is timed from that unlink whatever order its reports and this record come in
    (see :func:`lastgood.operations.fleet.standing`)."""
    env = place.name
    record = place.store.begin_deployment(
        env=env,
        kind="auto-rollback",
        from_version=failed.number,
        to_version=destination.number,
        actor="lastgood",
        reason=f"{failed.label} failed: {why}",
        source="auto" if began_at is None else "rollout",
        parent=parent,
        trigger_at=trigger_at,
        requested_at=time.time() if began_at is None else began_at,
    )
    with closed_on_error(place.project, lambda: record.id):
        place.emit(
            Event(
                EventKind.AUTO_ROLLBACK_STARTED,
                f"{failed.label} failed on {env}; restoring last known good {destination.label}",
                env=env,
                version=destination.number,
                deployment=record.id,
            )
        )
        restored = restore(place, lease, destination, record, point="deploy.before-restore")
    failpoint.hit("deploy.after-restore")
    return restored


def _outcome(
    env: str, done: Deployment, live: int | None, *, checked: bool, in_place: bool = False
) -> Outcome:
    took = format_duration(done.time_to_active)
    if done.status == "succeeded":
        proof = (
            f"verified in {format_duration(done.time_to_verified)}"
            if checked
            else "its files confirmed byte for byte; no checks are configured, so nothing "
            "proved it healthy"
        )
        summary = (
            f"restored v{done.to_version} on {env} in {took} ({proof}); {_label(live)} is withdrawn"
        )
        if in_place:
            summary = (
                f"v{done.to_version} is last known good and was live with files edited by hand: "
                f"restored its exact bytes on {env} in {took} ({proof}); nothing withdrawn"
            )
        return Outcome(
            env,
            "rollback",
            OK,
            summary,
            version=done.to_version,
            from_version=live,
            restored_version=done.to_version,
            deployment=done,
        )
    summary = (
        f"v{done.to_version} is live again on {env} (switched in {took}) but its checks fail: "
        f"{done.detail}. A person is needed: see 'lastgood status {env}'"
    )
    return Outcome(
        env,
        "rollback",
        NEEDS_HUMAN,
        summary,
        version=done.to_version,
        from_version=live,
        restored_version=done.to_version,
        deployment=done,
    )


def _label(version: int | None) -> str:
    return "nothing" if version is None else f"v{version}"


def _offline_hint(project_config: config_module.Config, env: str) -> str:
    """What to do when the target holds nothing to go back to; a host agent's workspace has
    no store, so there the way is the server."""
    kept = ("without the store, only releases kept whole on the target can be restored, never "
            "one withdrawn or bad there (nor one whose metadata file was damaged); ")  # fmt: skip
    if project_config.agent.env is not None or project_config.agent.servers:
        return (
            kept + f"roll back on the server ('lastgood --server URL rollback {env}'): "
            "this host's agent puts that version live"
        )
    return (
        kept + f"with the store, 'lastgood rollback {env} --to REF' stages any version "
        "that ran here"
    )


def rollback_offline(
    project_config: config_module.Config, env: str, *, reason: str = ""
) -> Outcome:
    """Switch ``env``'s target to its previous good release using only what the target holds.

    For when the store is unreachable: no store, no lease. The switch is logged in the workspace
    and recorded in the ledger by the next normal command.
    """
    requested_at = time.time()
    settings = project_config.environment(env)
    target = open_target(env, settings.target, project_config.root)
    target.recover()
    ended = _end_rollout_offline(project_config, env, target, reason, requested_at)
    if ended is not None:  # as online: a rollout under way is ended, and nothing else switched
        return ended
    live = target.live()
    previous = target.previous()
    if previous is None:  # as online: nothing to go back to is not a failure of the target
        raise NotFoundError(
            f"the {env} target holds no earlier good release to switch to "
            f"({target.describe()}, live: {live.name if live else 'nothing'})",
            hint=_offline_hint(project_config, env),
        )
    target.activate(previous)
    activated_at = time.time()
    if live is not None:
        target.record_verdict(live, WITHDRAWN)  # a second offline rollback must not go back
    checked = _verify_offline(project_config, env, settings, previous.version)
    from_version = live.version if live else None
    entry: dict[str, object] = {
        "env": env,
        "from_version": from_version,
        "to_version": previous.version,
        "actor": holder.author(),
        "reason": reason,
        "requested_at": requested_at,
        "activated_at": activated_at,
        "verified_at": time.time() if checked and settings.checks else None,
        "status": "succeeded" if checked else "unverified",
    }
    _append_offline(project_config, entry)
    took = format_duration(activated_at - requested_at)
    if checked:
        proof = (
            "checks pass"
            if settings.checks
            else "not verified: no checks are configured, so nothing proved it healthy"
        )
        summary = f"switched {env} to {previous.name} offline in {took}; {proof}"
        return Outcome(
            env,
            "rollback",
            OK,
            summary,
            version=previous.version,
            from_version=from_version,
        )
    summary = f"switched {env} to {previous.name} offline in {took}, but its checks fail"
    return Outcome(env, "rollback", NEEDS_HUMAN, summary, version=previous.version)


def _end_rollout_offline(
    project_config: config_module.Config, env: str, target: object, reason: str, at: float
) -> Outcome | None:
    """During a gradual rollout an offline rollback ends the rollout, as the online one does:
    the pointer goes (everyone back on the stable version ``current`` kept), the new release is
    withdrawn on the target, and nothing else is switched. None when no rollout is under way.
    Writes the target and the workspace's offline log."""
    from lastgood.targets.rollout_pointer import pointer_lock, read_pointer, remove_pointer
    from lastgood.targets.served import ServedTarget

    if not isinstance(target, ServedTarget) or (pointer := read_pointer(target.path)) is None:
        return None
    with pointer_lock(target.path):
        remove_pointer(target.path)
    ended_at = time.time()
    for release in target.retained():
        if release.name == pointer.release:
            target.record_verdict(release, WITHDRAWN)
    stable = pointer.stable_version
    # not a rollback "v8 → v7" (v8 was never live for everyone): the next command closes the
    # rollout's deploy record as an abort, as the online rollback does
    _append_offline(project_config, {
        "env": env, "kind": ROLLOUT_ENDED, "pointer": pointer.to_json(), "actor": holder.author(),
        "reason": reason, "requested_at": at, "ended_at": ended_at,
    })  # fmt: skip
    summary = (
        f"ended the rollout of v{pointer.version} on {env} offline at {pointer.progress()} in "
        f"{format_duration(ended_at - at)}: every consumer is back on {_label(stable)}"
    )
    return Outcome(env, "rollback", OK, summary, version=stable, from_version=pointer.version)


def _verify_offline(
    project_config: config_module.Config,
    env: str,
    settings: config_module.Environment,
    version: int,
) -> bool:
    """Run the checks once more per round without a store; nothing is recorded."""
    from lastgood.checks import CheckContext, run_check

    target = open_target(env, settings.target, project_config.root)
    context = CheckContext(env, version, target.live_path(), project_config.root)
    checks = build_checks(settings.checks)
    for number in range(settings.verify_rounds):
        if number:
            time.sleep(settings.interval)
        if all(run_check(check, context).ok for check in checks):
            return True
    return False


def _append_offline(project_config: config_module.Config, entry: dict[str, object]) -> None:
    path = offline_log_path(project_config.root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with offline_log_lock(project_config.root), open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")
        log.flush()
        os.fsync(log.fileno())


__all__ = [
    "auto_rollback",
    "choose_destination",
    "live_context",
    "rollback",
    "rollback_offline",
    "run_round",
]
