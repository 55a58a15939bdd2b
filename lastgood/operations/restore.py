"""Put a version live (a pointer switch when the target retains it) and verify it.

Shared by rollback and automatic rollback: no validation, no preflight, no bake. Staging happens
only when the target no longer holds the release.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Mapping
from pathlib import Path

from lastgood import failpoint
from lastgood.errors import LeaseLostError, StagingError, TargetError
from lastgood.events import Event, EventKind
from lastgood.operations.checking import Round, build_checks, live_context, run_round
from lastgood.operations.lease import EnvLease
from lastgood.operations.place import Place
from lastgood.record import Record
from lastgood.rows import VersionInfo
from lastgood.targets import Release, Target
from lastgood.units import format_size

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def release_of(version: VersionInfo) -> Release:
    return Release(version.number, version.content_hash)


def switch_to(place: Place, lease: EnvLease, version: VersionInfo, *, point: str) -> float:
    """Make ``version`` live on ``place``'s target; returns when it became active (epoch)."""
    target = place.target
    release = release_of(version)
    if not target.holds(release):
        try:
            stage(target, release, place.store.files(version.number))
        except StagingError as exc:  # a restore, not a refusal: what is live may be failing
            raise TargetError(
                exc.message.removesuffix(NOTHING_CHANGED) + f"; {place.name} was not switched",
                hint=exc.hint,
            ) from exc
    lease.fence()
    failpoint.hit(point)
    target.activate(release)
    activated_at = time.time()
    place.store.set_env(place.name, live_version=version.number)
    return activated_at


NOTHING_CHANGED = "; nothing live changed"


def stage(target: Target, release: Release, files: Mapping[str, bytes]) -> None:
    """Stage ``release`` on ``target``; any failure is a StagingError (exit 5): staging never
    touches what is live, so whatever stopped it, nothing live changed. Writes the target."""
    try:
        target.stage(release, files)
    except OSError as exc:
        raise _staging_error(target, release, files, exc) from exc
    except TargetError as exc:
        raise StagingError(
            f"could not stage {release.name} on {target.describe()}: {exc.message}"
            + NOTHING_CHANGED,
            hint=exc.hint,
        ) from exc


def _staging_error(
    target: Target, release: Release, files: Mapping[str, bytes], exc: OSError
) -> StagingError:
    where = exc.filename or _folder_of(target)
    if exc.errno not in _NO_SPACE:
        return StagingError(
            f"could not stage {release.name} on {target.describe()}: {exc.strerror or exc} "
            f"({where})" + NOTHING_CHANGED,
            hint="fix the permission or the file in the way named above, then run the command "
            "again",
        )
    needed = sum(len(data) for data in files.values())
    free = _free_space(Path(str(where)))
    return StagingError(
        f"no space left on the device while staging {release.name} on {target.describe()}: "
        f"writing {where} failed; the release needs {format_size(needed)}"
        + (f" and {format_size(free)} is free there" if free is not None else "")
        + NOTHING_CHANGED,
        hint="free space on that file system (a lower target.keep keeps fewer old releases), "
        "then run the command again",
    )


def _folder_of(target: Target) -> str:
    """The folder a target stages into, for a disk error that names no file."""
    path = target.options.get("path")
    if isinstance(path, str) and path:
        return str((target.root / Path(path).expanduser()).resolve())
    return target.describe()


def _free_space(path: Path) -> int | None:
    """Bytes free on the file system holding ``path`` (or its nearest existing folder)."""
    import shutil  # only when a disk error is being explained: it costs a rollback 2 ms

    for folder in (path, *path.parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return None


def ensure_intact(place: Place, version: VersionInfo, *, deployment: int | None) -> list[str]:
    """Make sure the target serves ``version`` byte for byte; repair hand edits if not.

    Hashes what the target really serves; on a mismatch rewrites the differing files from the
    store (each atomically) and records it. Returns the paths repaired (usually none).
    """
    target, env = place.target, place.name
    release = release_of(version)
    if target.untouched(release):
        return []
    if target.actual_hash() == version.content_hash:
        target.seal(release)
        return []
    changed = target.repair(release, place.store.files(version.number))
    place.emit(
        Event(
            EventKind.DRIFT_REPAIRED,
            f"the live files of {version.label} on {env} had been changed by hand; rewrote "
            f"{len(changed)} of them: {', '.join(changed[:5])}{' …' if len(changed) > 5 else ''}",
            env=env,
            version=version.number,
            deployment=deployment,
            data={"paths": changed},
        )
    )
    if target.actual_hash() != version.content_hash:
        raise TargetError(
            f"the files live on {env} still do not match {version.label} after repair",
            hint=f"inspect {target.describe()} by hand",
        )
    return changed


class Verification(Record):
    ok: bool
    rounds: tuple[Round, ...]
    at: float

    def summary(self) -> str:
        return self.rounds[-1].summary() if self.rounds else "no checks configured"


def still_ours(place: Place, lease: EnvLease, release: Release) -> None:
    """Renew the lease and confirm the target still serves ``release``, before judging it.

    Raises LeaseLostError when another process took the lease or switched the target (an
    offline rollback, a hand change): the result of a round would then judge the wrong content.
    """
    lease.fence()
    live = place.target.live()
    if live != release:
        env = place.name
        serving = f"v{live.version}" if live else "nothing"
        raise LeaseLostError(
            f"{env} was switched to {serving} by someone else while v{release.version} was being "
            "checked; this process stops without judging it",
            hint=f"see 'lastgood status {env}' and 'lastgood history {env}'",
        )


def verify(place: Place, version: VersionInfo, *, deployment: int, lease: EnvLease) -> Verification:
    """Confirm the content byte for byte, then run check rounds until one passes: at most
    ``verify_rounds`` of them, ``interval`` apart. The lease is renewed around every round."""
    ensure_intact(place, version, deployment=deployment)
    settings = place.settings
    checks = build_checks(settings.checks)
    release = release_of(version)
    context = live_context(place, release)
    rounds: list[Round] = []
    for number in range(1, settings.verify_rounds + 1):
        if number > 1:
            time.sleep(settings.interval)
            still_ours(place, lease, release)
        done = run_round(
            place, checks, context, phase="verify", number=number, deployment=deployment
        )
        rounds.append(done)
        if done.ok:
            break
    ok = not rounds or rounds[-1].ok
    still_ours(place, lease, release)
    return Verification(ok, tuple(rounds), time.time())
