"""One served version onto the host's target: stage, switch, read back, verify, prune.

Plan, then apply: what the target serves and retains is read first, then only what is missing is
done. A version already retained (a rollback) is a pointer switch, never staged again. Every step
is the target's own, with the target's guarantees: staging is all-or-nothing and activation one
atomic switch (or a journal ``recover()`` finishes), so a ``kill -9`` anywhere leaves one
complete version live, and ``recover()`` at the start of the next placement cleans up.

What the agent then reports is read back from the target (``live()`` and ``actual_hash()``),
never what it meant to put there.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from lastgood.errors import TargetError
from lastgood.record import Record
from lastgood.targets.base import Release, Target
from lastgood.units import format_duration

REFUSED_VERDICTS = ("withdrawn", "bad")
"""Verdicts kept on the host that stop the agent putting a release live again: an offline
rollback on the host records ``withdrawn`` for what it took back."""


class Placement(Record):
    """What a placement did and what the target serves afterwards (read back)."""

    live: Release | None
    action: str  # "staged" (new release), "switched" (retained), "kept" (already live), "refused"
    took: float
    message: str

    @property
    def changed(self) -> bool:
        return self.action in ("staged", "switched")


def place(
    target: Target,
    version: int,
    content_hash: str,
    files: Mapping[str, bytes],
    keep: int,
    *,
    honour_verdicts: bool = True,
) -> Placement:
    """Make ``version`` (whose ``files`` hash to ``content_hash``, verified by the SDK) live on
    ``target``, unless the host withdrew it (``honour_verdicts=False`` takes it anyway). Writes
    the target. Raises TargetError when it cannot, or when what the target serves afterwards
    is not that version, byte for byte."""
    started = time.monotonic()
    target.recover()
    release = Release(version=version, content_hash=content_hash)
    live = target.live()
    where = target.describe()
    if live == release and _intact(target, release, files):
        return Placement(live, "kept", 0.0, f"v{version} is already live on {where}")
    verdict = target.verdict(release)
    if verdict in REFUSED_VERDICTS and honour_verdicts:
        return _refused(live, release, verdict, where)
    retained = target.holds(release)
    if not retained:
        target.stage(release, files)
    target.activate(release)
    serving = _verified(target, release, files)
    _prune(target, serving, keep)
    took = time.monotonic() - started
    how = "a pointer switch to the retained release" if retained else "staged and switched"
    message = f"v{version} live on {where} in {format_duration(took)}, verified ({how})"
    return Placement(serving, "switched" if retained else "staged", took, message)


def _refused(live: Release | None, release: Release, verdict: str | None, where: str) -> Placement:
    holding = f"v{live.version}" if live else "nothing"
    message = (
        f"v{release.version} is {verdict} on this host (an offline rollback took it back): "
        f"{where} keeps {holding}, until the server serves another version"
    )
    return Placement(live, "refused", 0.0, message)


def _intact(target: Target, release: Release, files: Mapping[str, bytes]) -> bool:
    """The live release still holds its files (no hand edit); repaired when it does not."""
    if target.untouched(release) or target.actual_hash() == release.content_hash:
        return True
    target.repair(release, files)
    return target.actual_hash() == release.content_hash


def _verified(target: Target, release: Release, files: Mapping[str, bytes]) -> Release:
    """Read back what the target serves; a retained copy edited by hand is repaired once."""
    live = target.live()
    if live != release:
        shown = live.name if live else "nothing"
        raise TargetError(
            f"{target.describe()} serves {shown} after switching to {release.name}",
            hint="another process switches this target too: run one agent per target",
        )
    if target.actual_hash() != release.content_hash:
        target.repair(release, files)
        actual = target.actual_hash()
        if actual != release.content_hash:
            raise TargetError(
                f"{target.describe()} serves files hashing to {(actual or 'nothing')[:12]}, "
                f"not v{release.version}'s {release.content_hash[:12]}",
                hint="something rewrites the target's files: find it and stop it",
            )
    target.seal(release)
    return live


def _prune(target: Target, live: Release, keep: int) -> None:
    """Keep ``keep`` releases, never the live one nor the offline rollback's destination."""
    previous = target.previous()
    target.prune(keep, [live] if previous is None else [live, previous])
