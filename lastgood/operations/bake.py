"""The bake: check rounds every ``interval`` for ``bake`` after activation.

``failures`` consecutive failed rounds trip it. It passes when the bake time is over and the
latest round is green; while rounds keep failing past the bake time it goes on until they pass or
trip, so a version never becomes known good on a red round. A round that is green only because
a check could not judge yet (inconclusive: a ``fleet`` check short of reports) does not end it,
and from the end of the bake time such a result fails.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lastgood import failpoint
from lastgood.checks import Check
from lastgood.operations.checking import Round, run_round
from lastgood.operations.restore import still_ours
from lastgood.record import Record
from lastgood.termination import pause

if TYPE_CHECKING:
    from lastgood.operations.deploy import DeployRun


class BakeResult(Record):
    tripped: bool
    trigger_at: float
    last: Round | None
    rounds: int


class Bake:
    """Runs the rounds for one deploy; renews the lease between rounds."""

    def __init__(self, job: DeployRun, checks: list[Check]) -> None:
        self.job = job
        self.checks = checks
        self.settings = job.settings

    def run(self) -> BakeResult:
        """Run rounds until the bake passes or trips."""
        assert self.job.record is not None and self.job.record.activated_at is not None
        deadline = self.job.record.activated_at + self.settings.bake
        context = self.job.live_context()
        consecutive, number, last = 0, 0, None
        while True:
            number += 1
            if number > 1:
                still_ours(self.job.place, self.job.lease, self.job.release)
            last = run_round(
                self.job.place,
                self.checks,
                context,
                phase="bake",
                number=number,
                deployment=self.job.record.id,
                baselines=self.job.baselines,
                settles_at=deadline,
            )
            consecutive = 0 if last.ok else consecutive + 1
            if consecutive >= self.settings.failures:
                return BakeResult(True, last.at, last, number)
            if last.ok and not last.inconclusive and (time.time() >= deadline or not self.checks):
                return BakeResult(False, last.at, last, number)
            failpoint.hit("deploy.mid-bake")
            pause(self._pause(deadline, last.ok))  # a stop asked (SIGTERM, the server) ends it

    def _pause(self, deadline: float, green: bool) -> float:
        left = deadline - time.time()
        if green and 0 < left < self.settings.interval:
            return left
        return self.settings.interval
