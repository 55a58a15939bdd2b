"""Looking after the store: ``store verify``, ``prune`` and ``store copy``.

Prune decides here which versions may go, because only here is known what every target keeps:
a version retained on a target is a rollback's way back, so it stays, whatever its age. The
store itself adds its own protections (the newest version, live and last known good in the
ledger, both ends of a running deploy) and refuses to break them even if asked.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from lastgood.errors import NotFoundError, RefusedError, StoreError, TargetError, UsageError
from lastgood.events import Event, EventKind
from lastgood.operations.place import Place
from lastgood.project import Project
from lastgood.record import Record
from lastgood.rows import UNFINISHED_REQUESTS, VersionInfo
from lastgood.store.integrity import Integrity
from lastgood.store.pruning import Pruned
from lastgood.units import plural


def verify(project: Project) -> Integrity:
    """Read and check every blob, tree, version and document version in the store."""
    return project.store.check_integrity()


class PruneResult(Record):
    """What a prune dropped (or would drop), and why the rest of the old versions stayed."""

    pruned: Pruned
    kept: dict[int, str]  # version → why it was kept although old enough to go
    dry_run: bool

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "versions": [f"v{n}" for n in self.pruned.versions],
            "trees": self.pruned.trees,
            "blobs": self.pruned.blobs,
            "freed_bytes": self.pruned.freed_bytes,
            "kept": {f"v{n}": why for n, why in sorted(self.kept.items())},
        }


def prune(
    project: Project,
    *,
    keep: int | None = None,
    older_than: float | None = None,
    dry_run: bool = False,
    only: Collection[int] | None = None,
) -> PruneResult:
    """Drop versions outside the newest ``keep`` and created more than ``older_than`` seconds
    ago (both, when both are given), except every version that is live, last known good,
    where a rollback would go, retained on a target, being deployed, quarantined, or the
    newest; then free what only they held. ``only`` limits it to versions a person agreed to
    drop (a plan shown earlier): what changed since is kept, never added."""
    if keep is None and older_than is None:
        raise UsageError(
            "say which versions may go: --keep N (the newest N stay), --older-than AGE, or both",
            hint="for example: lastgood prune --keep 200 --older-than 90d --dry-run",
        )
    store = project.store
    candidates = _candidates(store.versions(), keep=keep, older_than=older_than)
    if only is not None:
        candidates = [number for number in candidates if number in set(only)]
    reasons = _reasons_to_keep(project)
    kept = {n: reasons[n] for n in candidates if n in reasons}
    pruned = store.drop_versions([n for n in candidates if n not in reasons], dry_run=dry_run)
    if pruned.versions and not dry_run:
        listed = ", ".join(f"v{n}" for n in pruned.versions[:20])
        more = f" and {len(pruned.versions) - 20} more" if len(pruned.versions) > 20 else ""
        project.emit(Event(
            EventKind.PRUNED,
            f"pruned {plural(len(pruned.versions), 'version')} ({listed}{more})",
            data={"versions": list(pruned.versions), "freed_bytes": pruned.freed_bytes},
        ))  # fmt: skip
    return PruneResult(pruned, kept, dry_run)


def _candidates(
    versions: list[VersionInfo], *, keep: int | None, older_than: float | None
) -> list[int]:
    """Versions (newest first in) that the rules let go, before any protection."""
    cutoff = None if older_than is None else time.time() - older_than
    return [
        version.number
        for index, version in enumerate(versions)
        if (keep is None or index >= keep) and (cutoff is None or version.created_at < cutoff)
    ]


def _reasons_to_keep(project: Project) -> dict[int, str]:
    """Every version that must stay, with the first reason found."""
    store = project.store
    reasons: dict[int, str] = {}
    head = store.head()
    if head is not None:
        reasons[head.number] = "the newest version (its number would be given out again)"
    for record in store.deployments(status="running"):
        for number in (record.to_version, record.from_version):
            if number is not None:
                reasons.setdefault(number, f"{record.kind} #{record.id} on {record.env} is running")
    for env in sorted(project.config.environments):
        _keep_for_environment(Place(project, env), reasons)
    for request in store.change_requests(limit=None):
        if request.status in UNFINISHED_REQUESTS:
            reasons.setdefault(request.version, f"proposed by change request {request.label}")
    for number in store.protected_versions():  # the store's own rules, whatever else it knows
        reasons.setdefault(number, "failed somewhere: its quarantine needs it")
    return reasons


def _keep_for_environment(place: Place, reasons: dict[int, str]) -> None:
    """What ``env`` needs: live, last known good, where a rollback would go next, and every
    release its target keeps. A target whose live release cannot be seen refuses the prune:
    without it, nobody can tell what the target keeps."""
    from lastgood.operations.rollback import choose_destination

    env = place.name
    state = place.store.env_state(env)
    for pointer, role in ((state.live_version, "live"), (state.last_good, "last known good")):
        if pointer is not None:
            reasons.setdefault(pointer, f"{role} in {env}")
    try:
        target = place.target
        if state.live_version is not None and target.live() is None:
            raise TargetError(f"it shows nothing live, while the ledger says v{state.live_version}")
        retained = target.retained()
    except (TargetError, OSError) as exc:  # a folder that is a file, unreadable, gone
        why = exc.message if isinstance(exc, TargetError) else f"{exc.strerror}: {exc.filename}"
        raise RefusedError(
            f"cannot tell which versions {env}'s target keeps ({why}): refusing to prune anything",
            hint=f"fix the target (see 'lastgood status {env}') and prune again",
        ) from exc
    for release in retained:
        reasons.setdefault(release.version, f"retained on {env}'s target")
    try:
        after = choose_destination(place, state.live_version)
    except NotFoundError:
        return
    reasons.setdefault(after.number, f"where 'lastgood rollback {env}' would go")


class CopyResult(Record):
    """A finished ``store copy``: rows per table, and the destination's own check."""

    source: str
    destination: str
    rows: dict[str, int]
    integrity: Integrity

    def to_json(self) -> dict[str, object]:
        return {"source": self.source, "destination": self.destination, "rows": self.rows,
                "verified": self.integrity.healthy}  # fmt: skip


def copy(project: Project, destination_url: str) -> CopyResult:
    """Copy the whole store into the empty database at ``destination_url``, check the copy.

    Refused, with nothing written, when the destination is this store under another name,
    holds any table at all, or a deploy or rollback is running (its record would be copied
    half-way)."""
    from lastgood.store import open_store
    from lastgood.store.copying import copy_store, refuse_unless_empty, same_database

    if same_database(project.store_url, destination_url):
        raise UsageError("the destination is the store itself", hint="give another --to URL")
    running = project.store.deployments(status="running", limit=1)
    if running:
        record = running[0]
        raise RefusedError(
            f"{record.kind} #{record.id} on {record.env} is running: refusing to copy a store "
            "in mid-change",
            hint="wait for it to end ('lastgood status'), stop 'lastgood watch' and "
            "'lastgood serve', then copy",
        )
    refuse_unless_empty(destination_url)
    open_store(destination_url).close()  # creates the schema, at the same revision
    copied = copy_store(project.store_url, destination_url)
    destination = open_store(destination_url)
    try:
        integrity = destination.check_integrity()
    finally:
        destination.close()
    if not integrity.healthy:
        first = integrity.damage[0]
        raise StoreError(
            f"the copy in {copied.destination} does not check out: {first.kind} {first.name}: "
            f"{first.problem}",
            hint="the destination now holds that copy: drop and recreate it before copying "
            "again; run 'lastgood store verify' on the source first",
        )
    return CopyResult(copied.source, copied.destination, copied.rows, integrity)
