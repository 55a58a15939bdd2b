"""Make the ledger tell the truth about what a target really serves.

Runs at the start of every command that works on an environment. It finishes any switch a killed
process left half-done on the target, closes ledger records whose process is gone, records offline
rollbacks, and, when the target serves something other than what the ledger says, records that.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from lastgood.errors import NotFoundError, TargetError
from lastgood.events import Event, EventKind
from lastgood.operations.place import Place
from lastgood.project import STORE_DIR
from lastgood.rows import GOOD
from lastgood.units import plural

OFFLINE_LOG = "offline.jsonl"
ROLLOUT_ENDED = "rollout-ended"
"""An offline log entry's ``kind`` when ``rollback --offline`` ended a gradual rollout (it holds
the pointer it removed) instead of switching ``current``."""


def offline_log_path(project_root: Path) -> Path:
    return project_root / STORE_DIR / OFFLINE_LOG


def reconcile(place: Place) -> list[str]:
    """Bring the ledger in line with the target; returns sentences saying what was fixed.

    Call it while holding the environment's lease: every running record then belongs to a
    process that is gone.
    """
    notes: list[str] = []
    env = place.name
    try:
        recovered = place.target.recover()
    except TargetError as exc:  # a rollback must still be able to supersede the stuck switch
        failed = (
            f"could not check the target of {env} for an interrupted switch or leftovers: "
            f"{exc.message}"
        )
        notes.append(failed)
        place.emit(Event(EventKind.TARGET_RECOVERY_FAILED, failed, env=env))
        recovered = None
    if recovered:
        notes.append(recovered)
        place.emit(Event(EventKind.TARGET_RECOVERED, recovered, env=env))
    notes.extend(_ingest_offline(place))
    notes.extend(_end_rollout(place))
    notes.extend(_close_interrupted(place))
    notes.extend(_align_live(place))
    return notes


def _end_rollout(place: Place) -> list[str]:
    """A gradual rollout left by a deploy that is gone ends: everyone on the stable version."""
    from lastgood.operations.rollout import end_orphaned

    note = end_orphaned(place)
    return [note] if note else []


def _close_interrupted(place: Place) -> list[str]:
    notes = []
    env, store = place.name, place.store
    live = place.target.live()
    serving = f"v{live.version}" if live else "nothing"
    for record in store.deployments(env, status="running"):
        failed = ""
        if record.kind == "deploy":  # a rollout's step tripped, then its process was killed
            from lastgood.operations.verdicts import failed_while_running

            failed = failed_while_running(place, record.to_version, record.requested_at)
        note = (
            f"{record.kind} #{record.id} (v{record.from_version} → v{record.to_version}) was "
            f"interrupted before it finished{failed}; the target serves {serving}"
        )
        store.update_deployment(
            record.id, by=place.project.actor, status="interrupted", finished_at=time.time(),
            detail=note,
        )  # fmt: skip
        if record.is_rollback and live is not None and live.version == record.to_version:
            # the switch happened: what the rollback left is withdrawn, as if it had finished
            from lastgood.operations.verdicts import withdraw

            withdraw(place, record.from_version, live.version, record.id)
        place.emit(Event(EventKind.RECONCILED, note, env=env, deployment=record.id))
        notes.append(note)
    return notes


def _align_live(place: Place) -> list[str]:
    env = place.name
    live = place.target.live()
    state = place.store.env_state(env)
    truth = None if live is None else live.version
    if truth == state.live_version:
        return []
    note = (
        f"the ledger said {_label(state.live_version)} is live on {env}, but the target serves "
        f"{_label(truth)}; the ledger now says {_label(truth)}"
    )
    place.store.set_env(env, live_version=truth)
    place.emit(Event(EventKind.RECONCILED, note, env=env, version=truth))
    return [note]


def _ingest_offline(place: Place) -> list[str]:
    """Record this environment's offline rollbacks; a torn line is set aside, never fatal."""
    root = place.project.root
    path = offline_log_path(root)
    if not path.exists():
        return []
    with offline_log_lock(root):
        keep, notes, torn = [], [], []
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = _parse_offline(line)
            if entry is None:
                torn.append(line)
            elif entry.get("env") != place.name:
                keep.append(line)
            elif entry.get("kind") == ROLLOUT_ENDED:
                notes.append(_record_offline_rollout_end(place, entry))
            else:
                notes.append(_record_offline(place, entry))
        if torn:
            _set_aside(path, torn)
            notes.append(
                f"set aside {plural(len(torn), 'unreadable line')} of {path} in {path}.bad "
                "(an offline rollback interrupted while it wrote its record?)"
            )
        _rewrite(path, keep)
    return notes


def _parse_offline(line: str) -> dict[str, object] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "env" in entry else None


def _set_aside(path: Path, lines: list[str]) -> None:
    with open(path.with_name(path.name + ".bad"), "a", encoding="utf-8") as bad:
        bad.write("\n".join(lines) + "\n")


@contextlib.contextmanager
def offline_log_lock(project_root: Path) -> Iterator[None]:
    """Serialize appends to and rewrites of the offline log across processes (flock)."""
    import fcntl

    lock_path = project_root / STORE_DIR / "offline.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _record_offline(place: Place, entry: dict[str, object]) -> str:
    """Write one of ``place``'s offline rollbacks into the ledger, with its verdicts."""
    env, store = place.name, place.store
    record = store.begin_deployment(
        env=env,
        kind="offline-rollback",
        status=str(entry.get("status", "succeeded")),
        from_version=entry.get("from_version"),
        to_version=entry.get("to_version"),
        actor=str(entry.get("actor", "")),
        reason=str(entry.get("reason", "")),
        source="offline",
        trigger_at=entry.get("requested_at"),
        requested_at=entry.get("requested_at"),
        activated_at=entry.get("activated_at"),
        verified_at=entry.get("verified_at"),
        finished_at=entry.get("activated_at"),
        detail="performed with --offline; recorded by the next command",
    )
    left, to = entry.get("from_version"), entry.get("to_version")
    if isinstance(left, int) and isinstance(to, int):
        from lastgood.operations.verdicts import mark_good, withdraw

        withdraw(place, left, to, record.id)
        if record.status == "succeeded" and store.verdicts(env).get(to) == GOOD:
            mark_good(place, store.version(to), record.id)
    note = (
        f"recorded the offline rollback on {env}: v{entry.get('from_version')} → "
        f"v{entry.get('to_version')} by {entry.get('actor')}"
    )
    place.emit(Event(EventKind.OFFLINE_ROLLBACK_RECORDED, note, env=env, deployment=record.id))
    return note


def _record_offline_rollout_end(place: Place, entry: dict[str, object]) -> str:
    """Write into the ledger that ``rollback --offline`` ended a rollout: its deploy record
    closed ``aborted`` at the pointer's removal and the new version withdrawn, as an online
    abort does. Not an offline rollback "v8 → v7": v8 was never live for everyone."""
    from lastgood.operations.rollout import ABORTED, close_ended
    from lastgood.operations.verdicts import withdraw
    from lastgood.rollout import parse_pointer

    env = place.name
    try:
        pointer = parse_pointer(json.dumps(entry.get("pointer")).encode(), offline_log_path(
            place.project.root))  # fmt: skip
    except TargetError as exc:
        return f"could not record an offline end of a rollout on {env}: {exc.message}"
    by, why = entry.get("actor"), entry.get("reason")
    ended_at = entry.get("ended_at")
    note = (
        f"recorded that {by} ended the rollout of v{pointer.version} on {env} offline at "
        f"{pointer.progress()}{f' ({why})' if why else ''}: every consumer went back to "
        f"{_label(pointer.stable_version)}"
    )
    at = float(ended_at) if isinstance(ended_at, int | float) else time.time()
    record = close_ended(place, pointer, status=ABORTED, ended_at=at, detail=note)
    if record is None and pointer.stable_version is not None:  # no record: the verdict still
        with contextlib.suppress(NotFoundError):  # a pointer written by hand names any number
            withdraw(place, pointer.version, pointer.stable_version, None)
    place.emit(Event(EventKind.OFFLINE_ROLLBACK_RECORDED, note, env=env,
                     version=pointer.stable_version, deployment=pointer.deployment))  # fmt: skip
    return note


def _rewrite(path: Path, lines: list[str]) -> None:
    if not lines:
        path.unlink()
        return
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _label(version: int | None) -> str:
    return "nothing" if version is None else f"v{version}"
