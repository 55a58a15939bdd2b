"""The digest's records: what :func:`lastgood.operations.report.build` returns and every format
renders.

They live here, beside the renderers, and not in the verb, so that imports run one way: the
verb imports the renderers (to send a digest) and these records; the renderers import only the
records and never the verb that builds them.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from lastgood.record import Record, as_dict


class Change(Record):
    """One deploy in the period: what went where, who, why, when and how it ended."""

    id: int
    at: float
    version: int | None
    from_version: int | None
    actor: str
    reason: str
    result: str
    checked: bool = True  # the environment has checks; without, nothing proved it healthy


class Incident(Record):
    """Something that went wrong: a failed deploy, a failed health round, a failed restore."""

    kind: str
    at: float
    version: int | None
    message: str


class Restore(Record):
    """One rollback, automatic or manual, with its restore times and its budget verdict."""

    id: int
    kind: str
    at: float
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    status: str
    time_to_active: float | None
    time_to_verified: float | None
    over_budget: bool

    @property
    def automatic(self) -> bool:
        return self.kind == "auto-rollback"


class DrillRun(Record):
    """One drill: when, whether it passed, and how long its restore took."""

    id: int
    at: float
    status: str
    time_to_restore: float | None
    time_to_verified: float | None
    summary: str


class EnvDigest(Record):
    """Everything the digest says about one environment."""

    env: str
    budget: float
    protected: bool
    live_version: int | None
    last_good: int | None
    changes: list[Change]
    incidents: list[Incident]
    rollbacks: list[Restore]
    drills: list[DrillRun]
    last_drill: DrillRun | None
    last_drill_age: float | None
    drill_overdue: str | None  # the warning status gives, when the drill is overdue
    drift_detected: int
    drift_repaired: int
    checked: bool = True  # the environment has checks configured

    @property
    def people(self) -> dict[str, int]:
        """Changes per person, most active first."""
        return dict(Counter(change.actor for change in self.changes).most_common())

    @property
    def restore_times(self) -> list[float]:
        return [r.time_to_active for r in self.rollbacks if r.time_to_active is not None]

    @property
    def restore_p50(self) -> float | None:
        return statistics.median(self.restore_times) if self.restore_times else None

    @property
    def restore_max(self) -> float | None:
        return max(self.restore_times) if self.restore_times else None

    @property
    def verified_times(self) -> list[float]:
        return [r.time_to_verified for r in self.rollbacks if r.time_to_verified is not None]

    @property
    def verified_p50(self) -> float | None:
        return statistics.median(self.verified_times) if self.verified_times else None

    @property
    def verified_max(self) -> float | None:
        return max(self.verified_times) if self.verified_times else None

    @property
    def over_budget(self) -> int:
        return sum(1 for r in self.rollbacks if r.over_budget)

    @property
    def automatic(self) -> int:
        return sum(1 for r in self.rollbacks if r.automatic)

    @property
    def manual(self) -> int:
        return len(self.rollbacks) - self.automatic

    @property
    def quiet(self) -> bool:
        """Nothing happened in the period."""
        return not (
            self.changes or self.incidents or self.rollbacks or self.drills
            or self.drift_detected or self.drift_repaired
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        data = as_dict(self)
        data.update(
            people=self.people,
            restore_p50=self.restore_p50,
            restore_max=self.restore_max,
            verified_p50=self.verified_p50,
            verified_max=self.verified_max,
            over_budget=self.over_budget,
            automatic_rollbacks=self.automatic,
            manual_rollbacks=self.manual,
            quiet=self.quiet,
        )
        return data


class DocumentChange(Record):
    """A tracked document that changed in the period: its new versions and lines changed."""

    name: str
    versions: list[int]
    added: int
    removed: int
    last_at: float


class Digest(Record):
    """The status digest for one period: per environment, then the documents."""

    since: float
    until: float
    generated_at: float
    envs: list[EnvDigest]
    documents: list[DocumentChange]

    @property
    def quiet(self) -> bool:
        """Nothing happened anywhere in the period."""
        return all(env.quiet for env in self.envs) and not self.documents

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "generated_at": self.generated_at,
            "quiet": self.quiet,
            "envs": [env.to_json() for env in self.envs],
            "documents": [as_dict(document) for document in self.documents],
        }
