"""Verdicts per environment (good, bad, withdrawn) and the last-known-good pointer they imply.

Every change of verdict goes through here, so the store and the target always agree, and last
known good always names a version whose verdict is *good*: when the version it names is marked
bad or withdrawn, it moves to the newest version still proven good there (or to none).
"""

from __future__ import annotations

from lastgood.events import Event, EventKind
from lastgood.operations.place import Place
from lastgood.rows import BAD, GOOD, WITHDRAWN, VersionInfo
from lastgood.targets import Release


def _release(version: VersionInfo) -> Release:
    return Release(version.number, version.content_hash)


def is_quarantined(place: Place, version: VersionInfo) -> bool:
    """True when this version, or any version with the same content, failed at ``place``."""
    return quarantined_by(place, version) is not None


def quarantined_by(place: Place, version: VersionInfo) -> int | None:
    """The version whose failure at ``place`` quarantines ``version``: itself when it failed,
    else the newest with the same content that did (a snapshot of content seen before gets a
    new number, so the refusal must name the one that really ran); None when none did."""
    verdicts = place.store.verdicts(place.name)
    if verdicts.get(version.number) == BAD:
        return version.number
    twins = place.store.versions_by_hash(version.content_hash)
    failed = [twin.number for twin in twins if verdicts.get(twin.number) == BAD]
    return max(failed, default=None)


def mark_good(place: Place, version: VersionInfo, deployment: int | None) -> None:
    """``version`` passed its bake at ``place``: it becomes last known good.

    In a protected environment (production) that is a milestone people want to hear about, so
    it is announced as ``last-good-changed`` when the pointer really moves."""
    store, env = place.store, place.name
    protected = place.settings.protected
    before = store.env_state(env).last_good if protected else None
    store.set_verdict(env, version.number, GOOD, deployment=deployment)
    store.set_env(env, last_good=version.number)
    place.target.record_verdict(_release(version), GOOD)
    if protected and before != version.number:
        was = "nothing" if before is None else f"v{before}"
        place.emit(
            Event(
                EventKind.LAST_GOOD_CHANGED,
                f"{version.label} is now last known good on {env} (was {was})",
                env=env,
                version=version.number,
                deployment=deployment,
                data={"previous": before, "message": version.message, "author": version.author},
                key=f"last-good-changed:{env}:{version.number}:{deployment}",
            )
        )


def mark_bad(place: Place, version: VersionInfo, deployment: int | None) -> None:
    """``version`` failed its checks at ``place``: quarantined, never a rollback destination."""
    place.store.set_verdict(place.name, version.number, BAD, deployment=deployment)
    place.target.record_verdict(_release(version), BAD)
    repoint_last_good(place)


def withdraw(place: Place, left: int | None, destination: int, deployment: int | None) -> None:
    """A rollback left version ``left``: withdrawn (not bad; may be deployed again).

    A bad version stays bad: withdrawing never lifts a quarantine."""
    store, env = place.store, place.name
    if left is None or left == destination or store.verdicts(env).get(left) == BAD:
        return
    store.set_verdict(env, left, WITHDRAWN, deployment=deployment)
    place.target.record_verdict(_release(store.version(left)), WITHDRAWN)
    repoint_last_good(place)


def repoint_last_good(place: Place) -> int | None:
    """Keep last known good on a *good* version: the one named, else the newest good one."""
    store, env = place.store, place.name
    current = store.env_state(env).last_good
    verdicts = store.verdict_times(env)
    if current is not None and verdicts.get(current, ("",))[0] == GOOD:
        return current
    good = sorted((at, number) for number, (verdict, at) in verdicts.items() if verdict == GOOD)
    newest = good[-1][1] if good else None
    if newest != current:
        store.set_env(env, last_good=newest)
    return newest


def failed_while_running(place: Place, version: int | None, since: float | None) -> str:
    """``"; v8 had failed its checks (marked bad)"`` when ``version`` was marked bad at
    ``place`` at or after ``since`` (by the deploy that began then, before its process was
    gone), else ``""``: what reconcile adds to the record it closes ``interrupted``."""
    if version is None or since is None:
        return ""
    verdict, at = place.store.verdict_times(place.name).get(version, ("", 0.0))
    return (
        f"; v{version} had failed its checks (marked bad)" if verdict == BAD and at >= since else ""
    )
