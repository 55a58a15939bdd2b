"""Results of the verbs that change what is live, with the exit code each one means.

Exit codes (DESIGN.md): 0 done and healthy · 3 failed its checks, last known good restored and
verified · 4 failed and the restore failed or could not be verified · 5 refused before anything
live changed (raised as :class:`lastgood.errors.RefusedError`).
"""

from __future__ import annotations

from typing import Any

from lastgood.record import Record, as_dict, field
from lastgood.rows import Deployment

OK = 0
RESTORED = 3
NEEDS_HUMAN = 4


class PlanStep(Record):
    """One line of a plan: what would happen, in order."""

    action: str
    detail: str


class Outcome(Record, frozen=False):
    """What a deploy or rollback did, for the CLI to render and the server to return."""

    env: str
    action: str
    exit_code: int
    summary: str
    version: int | None = None
    from_version: int | None = None
    restored_version: int | None = None
    deployment: Deployment | None = None
    restore: Deployment | None = None
    plan: list[PlanStep] = field(default_factory=list)
    changes: dict[str, list[str]] = field(default_factory=dict)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        data = as_dict(self)
        data["deployment"] = self.deployment.to_json() if self.deployment else None
        data["restore"] = self.restore.to_json() if self.restore else None
        return data
