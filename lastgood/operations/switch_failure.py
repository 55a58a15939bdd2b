"""What a deploy says when its switch failed: read the target back before claiming anything.

A push the tool refused (an error answer, a non-zero exit) or a live link that could not be
replaced is a clean failure: when the target, read back, still serves what it served before,
nothing live changed, and the deploy is refused-like (exit 5) but recorded ``failed`` — it did
fail, nothing interrupted it. A push that timed out may still land in the tool after lastgood
gave up, so it never claims that nothing changed; and a target that cannot be read back, or
that serves something else now, is said as it is (exit 1).
"""

from __future__ import annotations

from lastgood.errors import LastgoodError, SwitchFailedError, TargetError, TargetTimeoutError
from lastgood.operations.place import Place
from lastgood.targets import Release


def _label(version: int | None) -> str:
    return f"v{version}" if version else "nothing"


def failed_switch(
    place: Place, release: Release, before: int | None, error: TargetError
) -> LastgoodError:
    """The error a deploy raises after ``place``'s target failed to switch to ``release``
    (``before`` was live). Reads the target back (reads only)."""
    env, new = place.name, f"v{release.version}"
    status = f"'lastgood status {env}'"
    try:
        live = place.target.live()
    except TargetError as exc:
        return TargetError(
            f"{error.message}; reading back what {env} serves failed too: {exc.message}",
            hint=f"{status} records what is live once the target answers",
        )
    served = live.version if live else None
    if served != before:
        return TargetError(
            f"{error.message}; {env} now serves {_label(served)}, which was not verified",
            hint=f"{status} shows it; 'lastgood rollback {env}' puts last known good back",
        )
    if isinstance(error, TargetTimeoutError):
        return TargetTimeoutError(
            f"{error.message}; {_label(before)} is still live on {env} for now, but the push of "
            f"{new} may still land after lastgood gave up",
            hint=f"run {status} in a moment: if it shows {new} live (never verified), "
            f"'lastgood rollback {env}' undoes it, or deploy {new} again to bake it",
        )
    return SwitchFailedError(
        f"{error.message}; nothing live changed ({_label(before)} still live on {env})",
        hint=error.hint,
    )
