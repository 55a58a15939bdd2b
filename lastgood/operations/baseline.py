"""The baselines of comparative checks: their values against what is live, before a switch.

A deploy measures each check with ``max_drop`` / ``max_rise`` :data:`SAMPLES` times against
the live version (proven good here), ``interval`` apart, and keeps the median of the passing
samples: one noisy reading neither trips a good change nor hides a bad one. The first sample is
the deploy's baseline round (all checks, which refuses the deploy when it fails); the others run
only the comparative checks. Every sample is recorded in the ledger (phase ``baseline``, with
its value). A check without a baseline (nothing live before, a live version not proven good, or
no passing sample) is not compared: its rounds say so in their detail, and its own bounds still
apply.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from lastgood.checks import Check, CheckContext
from lastgood.comparison import Baseline, BaselineSource, measured
from lastgood.config import CheckSpec
from lastgood.operations.checking import Round, run_round
from lastgood.operations.place import Place
from lastgood.record import Record, field

SAMPLES = 3
"""Samples per comparative check: the median of three survives one outlier, at the cost of two
extra ``interval`` pauses before the switch, paid only by environments with comparisons."""


class MeasuredBaseline(Record):
    """A :class:`~lastgood.comparison.BaselineSource` of values measured before the switch."""

    values: dict[str, Baseline] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    reason: str = "no baseline was measured"

    def baseline(self, name: str) -> Baseline | None:
        return self.values.get(name)

    def missing(self, name: str) -> str:
        return self.reasons.get(name, self.reason)


def baseline_note(specs: tuple[CheckSpec, ...], source: BaselineSource) -> str:
    """What the bake will compare, for the activation message: ``""`` when no check compares,
    else each comparing check with its baseline or why it has none (writes nothing)."""
    parts = []
    for spec in specs:
        if spec.compare is None:
            continue
        found = source.baseline(spec.name)
        if found is None:
            parts.append(f"{spec.name} not compared: no baseline ({source.missing(spec.name)})")
        else:
            parts.append(f"{spec.name} compared with {found.value:g} ({found.source})")
    return "; ".join(parts)


def no_baseline(reason: str) -> MeasuredBaseline:
    """A source that has no baseline for any check, saying why (``reason``)."""
    return MeasuredBaseline(reason=reason)


class Sampling(Record):
    """What :func:`measure` needs beyond the checks: where, for whom, and how to pause."""

    place: Place
    context: CheckContext
    deployment: int
    before: str  # "v6 before v7", for the baseline's source
    pause: float
    renew: Callable[[], None]  # keeps the deploy's lease between samples


def measure(sampling: Sampling, checks: list[Check], first: Round | None) -> MeasuredBaseline:
    """The baselines of ``checks`` that compare; ``first`` is the baseline round already run
    (or None in a drill, which ran none). Runs and records the remaining samples (writes)."""
    comparing = [check for check in checks if check.spec.compare is not None]
    if not comparing:
        return no_baseline("no check compares")
    rounds = [first] if first is not None else []
    while len(rounds) < SAMPLES:
        if rounds:
            time.sleep(sampling.pause)
            sampling.renew()
        rounds.append(
            run_round(sampling.place, comparing, sampling.context, phase="baseline",
                      number=len(rounds) + 1, deployment=sampling.deployment)
        )  # fmt: skip
    return _summarize(comparing, rounds, sampling.before)


def _summarize(checks: list[Check], rounds: list[Round], before: str) -> MeasuredBaseline:
    """The median of each check's passing samples, or why it has none."""
    values: dict[str, Baseline] = {}
    reasons: dict[str, str] = {}
    for check in checks:
        results = [r for done in rounds for r in done.results if r.name == check.name]
        samples = [v for r in results if r.ok and (v := measured(r.data)) is not None]
        if samples:
            how = f"median of {len(samples)} rounds" if len(samples) > 1 else "1 round"
            values[check.name] = Baseline(statistics.median(samples), f"{how} on {before}")
        else:
            detail = results[-1].detail if results else "it did not run"
            failed = "failed" if not results or not results[-1].ok else "measured nothing in"
            reasons[check.name] = f"it {failed} every baseline round on {before}: {detail}"
    return MeasuredBaseline(values, reasons)
