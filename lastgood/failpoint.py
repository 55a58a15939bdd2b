"""Named failpoints: crash tests make a chosen step kill the process, as ``kill -9`` would.

``LASTGOOD_FAILPOINT=deploy.after-activate lastgood deploy staging`` dies right after the
switch. Every name used in the code is listed in ``NAMES`` so tests can walk them all.
"""

from __future__ import annotations

import os

from lastgood import settings

NAMES = (
    "deploy.after-lease",
    "deploy.after-stage",
    "deploy.before-activate",
    "deploy.after-activate",
    "deploy.mid-bake",
    "deploy.after-mark-bad",
    "deploy.before-restore",
    "deploy.after-restore",
    "deploy.after-mark-good",
    "rollback.after-lease",
    "rollback.before-activate",
    "rollback.after-activate",
    "rollback.after-verify",
    "target.after-stage-files",
    "target.before-rename-release",
    "target.mid-switch",
    "target.after-switch",
    "migration.mid-trees",
    "rollout.after-pointer",
    "rollout.mid-step",
    "rollout.after-verdict",
    "rollout.after-stop",
)

ROLLOUT_NAMES = (
    "rollout.after-pointer",
    "rollout.mid-step",
    "rollout.after-verdict",
    "rollout.after-stop",
)
"""Failpoints of a gradual rollout; ``tests/test_rollout.py`` kills those."""

MIGRATION_NAMES = ("migration.mid-trees",)
"""Failpoints inside store migrations; ``tests/test_store_migration.py`` kills those, the
deploy and rollback crash scenarios kill the rest."""

_armed: frozenset[str] | None = None


def _armed_names() -> frozenset[str]:
    global _armed
    if _armed is None:
        raw = settings.FAILPOINT.read() or ""
        _armed = frozenset(name.strip() for name in raw.split(",") if name.strip())
    return _armed


def hit(name: str) -> None:
    """Kill this process with SIGKILL when ``name`` is armed; otherwise do nothing."""
    if name in _armed_names():
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
