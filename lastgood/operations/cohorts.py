"""During a gradual rollout, a ``fleet`` check's baseline is the rest of the fleet.

While a step gives the new version to a cohort, the other consumers keep the stable one and go
on reporting the same metric: the mean (or median) of their reports is what the new cohort's is
compared with, round by round, under the same ``max_drop`` / ``max_rise``. Both sides are read
at the same moment, so a metric that moves with the time of day moves on both, which a
baseline measured before the switch cannot offer. The failure reads ``lead_score 36 → 18 (-50%,
over max_drop 20%) against the rest of the fleet, mean of 19 consumers on v2``.

The rest is the consumers the step's pointer does *not* send the new version to. A consumer
just moved into the cohort still shows the stable version until its next request says
otherwise, and its reports on the stable version are still fresh: counted as the rest, it would
compare the new cohort with itself a moment ago. So at the 100 % step there is no rest at all.

When the rest is too small to judge (fewer than ``min_consumers`` reports, or the 100 % step),
the check falls back on the baseline measured before the switch, as for every other comparative
check; every other check always does. Reads the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lastgood.checks import Check
from lastgood.checks.fleet import Cohort, FleetCheck
from lastgood.comparison import Baseline, BaselineSource
from lastgood.rows import Consumer

if TYPE_CHECKING:
    from lastgood.rollout import Pointer

REST = "the rest of the fleet"


class RestOfFleet:
    """A :class:`~lastgood.comparison.BaselineSource`: ``fleet`` checks against the consumers
    still on ``stable`` (outside ``pointer``'s cohort, when given), others (and fleet checks
    without enough of them) against ``before``."""

    def __init__(
        self,
        before: BaselineSource,
        checks: Sequence[Check],
        read: Callable[[str], Sequence[Consumer]],
        env: str,
        stable: int | None,
        pointer: Pointer | None = None,
    ) -> None:
        self.before = before
        self.pointer = pointer
        self.fleet = {check.name: check for check in checks if isinstance(check, FleetCheck)}
        self.read = read
        self.env = env
        self.stable = stable
        self.short: dict[str, str] = {}  # why the rest could not serve, by check

    def baseline(self, name: str) -> Baseline | None:
        check = self.fleet.get(name)
        if check is None:
            return self.before.baseline(name)
        rest = check.cohort(self._rest(), self.stable)
        short = self._short(check, rest)
        if short is None and rest.value is not None:
            return Baseline(rest.value, rest.describe(), against=REST)
        self.short[name] = short or "no value"
        return self.before.baseline(name)

    def _short(self, check: FleetCheck, rest: Cohort) -> str | None:
        """Why ``rest`` cannot be the baseline, or None when it can."""
        pointer = self.pointer
        if self.stable is None:
            return "nothing was live before"
        if pointer is not None and pointer.percent >= 100:
            return (
                f"at {pointer.progress()} every consumer was sent v{pointer.version}, so none "
                f"is left on v{self.stable}"
            )
        return check.shortfall(rest)

    def _rest(self) -> list[Consumer]:
        """The consumers outside the step's cohort (all of them without a pointer)."""
        consumers = self.read(self.env)
        pointer = self.pointer
        if pointer is None:
            return list(consumers)
        return [c for c in consumers if not pointer.includes(self.env, c.consumer_id)]

    def missing(self, name: str) -> str:
        before = self.before.missing(name)
        short = self.short.get(name)
        return before if short is None else f"from {REST}: {short}; before the switch: {before}"


def against_the_rest(
    before: BaselineSource,
    checks: Sequence[Check],
    read: Callable[[str], Sequence[Consumer]],
    env: str,
    stable: int | None,
    pointer: Pointer | None = None,
) -> BaselineSource:
    """The baselines of one rollout round at ``pointer``'s step: ``before`` itself when no check
    is a fleet check."""
    if not any(isinstance(check, FleetCheck) for check in checks):
        return before
    return RestOfFleet(before, checks, read, env, stable, pointer)
