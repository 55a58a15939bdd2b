"""``type = "fleet"``: a business metric as the consumers themselves report it.

Applications report what they measure (``LiveConfig.report("lead_score", 36.5)``, see
:mod:`lastgood.client.metrics`); host agents report the values their host checks measure, under
each check's name. A fleet check's value is the mean (or median) of ``metric`` over the
consumers that serve the version being checked and reported it after that version went live to
them, within ``max_age``: a value measured under another version, or one nobody has reported
again for a long time, says nothing about this version now.

It is judged like any check that measures a value: by ``min`` / ``max``, and by ``max_drop`` /
``max_rise`` against a baseline. During a gradual rollout the baseline is the same aggregate
over the rest of the fleet, the consumers still on the stable version
(:mod:`lastgood.operations.cohorts`); otherwise the values reported on the old version before
the switch, as for every comparative check.

Fewer than ``min_consumers`` reports make a result *inconclusive*: it passes while the bake
runs (consumers need a moment to take the version and report), a bake cannot end on it, and
from the end of the bake on it fails, so a version never becomes known good unjudged; except in
the bake of an environment's first deploy (nothing was live before it, so no consumer could
report yet: ``context.first_live``), where it passes at the end, saying so.

The reports are read from the store (``context.fleet``), where the server flushes them every
0.5 s, so the check runs alike in the CLI and in the server. Reads only.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from lastgood.checks.base import Check, CheckContext, CheckResult, reject_unknown_options
from lastgood.client.metrics import NAME_HINT, metric_name_problem
from lastgood.config import CheckSpec
from lastgood.errors import ConfigError
from lastgood.record import Record
from lastgood.rows import Consumer
from lastgood.units import format_duration, parse_duration, plural

_OPTIONS = ("metric", "min", "max", "min_consumers", "aggregate", "max_age")
AGGREGATES = ("mean", "median")
MAX_AGE = 300.0
"""Default ``max_age``: reports older than five minutes are not counted."""


class Cohort(Record):
    """The consumers of one version that reported a metric, and its aggregate over them."""

    version: int | None
    values: tuple[float, ...]
    aggregate: str

    @property
    def value(self) -> float | None:
        if not self.values:
            return None
        if self.aggregate == "median":
            return float(statistics.median(self.values))
        return statistics.fmean(self.values)

    def describe(self) -> str:
        """``mean of 19 consumers on v2``."""
        on = "nothing" if self.version is None else f"v{self.version}"
        return f"{self.aggregate} of {plural(len(self.values), 'consumer')} on {on}"


class FleetCheck(Check):
    """Aggregate a metric the consumers of the checked version reported."""

    type_name = "fleet"

    def __init__(self, spec: CheckSpec) -> None:
        """Validate every option now: a typo must stop the deploy before anything goes live."""
        super().__init__(spec)
        reject_unknown_options(spec, _OPTIONS)
        self.metric = _metric(spec)
        self.minimum = _number(spec, "min")
        self.maximum = _number(spec, "max")
        self.min_consumers = _min_consumers(spec)
        self.aggregate = _aggregate(spec)
        self.max_age = _max_age(spec)
        if self.minimum is None and self.maximum is None and spec.compare is None:
            raise _option_error(spec, "min, max, max_drop or max_rise", "is needed",
                                'add max_drop = "20%" (or min = …, max = …)')  # fmt: skip

    @property
    def measures_value(self) -> bool:
        return True

    @property
    def value_name(self) -> str:
        return self.metric

    def cohort(
        self, consumers: Sequence[Consumer], version: int | None, now: float | None = None
    ) -> Cohort:
        """The consumers serving ``version`` whose ``metric`` was reported on it, after it
        went live to them and within ``max_age`` (writes nothing)."""
        now = time.time() if now is None else now
        values = []
        for consumer in consumers:
            if version is None or consumer.version != version:
                continue
            reading = consumer.readings().get(self.metric)
            if reading is None or reading.version != version or reading.at < consumer.since:
                continue
            if now - reading.at <= self.max_age:
                values.append(reading.value)
        return Cohort(version, tuple(values), self.aggregate)

    def shortfall(self, cohort: Cohort) -> str | None:
        """Why ``cohort`` is too small to judge, or None when it is large enough."""
        if len(cohort.values) >= self.min_consumers:
            return None
        on = "nothing" if cohort.version is None else f"v{cohort.version}"
        return (
            f"{plural(len(cohort.values), 'consumer')} on {on} reported {self.metric} within "
            f"{format_duration(self.max_age)}, fewer than min_consumers {self.min_consumers}"
        )

    def probe(self, context: CheckContext) -> CheckResult:
        """Read the reports once and judge the checked version's cohort."""
        if context.fleet is None:
            return self._inconclusive("no consumer reports can be read here (no store)")
        cohort = self.cohort(context.fleet(context.env), context.version)
        short = self.shortfall(cohort)
        if short is not None:
            return self._inconclusive(short, first_live=context.first_live)
        value = cohort.value
        assert value is not None
        shown = f"{self.metric} {value:g} ({cohort.describe()})"
        data = {"value": value, "consumers": len(cohort.values)}
        failed = self._failed_bounds(value)
        if failed:
            return CheckResult(self.name, False, f"{shown}, expected {failed}", data=data)
        # a passing bound is not named: next to a failed comparison it would read as the cause
        return CheckResult(self.name, True, shown, data=data)

    def _inconclusive(self, why: str, *, first_live: bool = False) -> CheckResult:
        """Too few reports; ``first_live`` marks a bake where none could exist before (the
        end of the bake passes it instead of failing: see ``settled``)."""
        data = {"inconclusive": True, "first_live": True} if first_live else {"inconclusive": True}
        return CheckResult(self.name, True, f"inconclusive: {why}", data=data)

    def _failed_bounds(self, value: float) -> str:
        """``≥ 0.01`` for the bound ``value`` breaks; "" when it keeps both."""
        if self.minimum is not None and value < self.minimum:
            return f"≥ {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"≤ {self.maximum:g}"
        return ""


def _metric(spec: CheckSpec) -> str:
    value = spec.options.get("metric")
    if value is None:
        raise _option_error(spec, "metric", "is missing", 'write metric = "lead_score"')
    if metric_name_problem(value) is not None:
        raise _option_error(spec, "metric", f"= {value!r} is not a metric name", NAME_HINT)
    assert isinstance(value, str)
    return value


def _number(spec: CheckSpec, key: str) -> float | None:
    value = spec.options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _option_error(spec, key, f"= {value!r} is not a number", f"write {key} = 10")
    return float(value)


def _min_consumers(spec: CheckSpec) -> int:
    value = spec.options.get("min_consumers", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _option_error(
            spec, "min_consumers", f"= {value!r} must be a whole number of at least 1",
            "write min_consumers = 5: how many consumers must report before a value counts",
        )  # fmt: skip
    return int(value)


def _aggregate(spec: CheckSpec) -> str:
    value = spec.options.get("aggregate", "mean")
    if value not in AGGREGATES:
        raise _option_error(spec, "aggregate", f"= {value!r} is not mean or median",
                            'write aggregate = "median" (or "mean", the default)')  # fmt: skip
    return str(value)


def _max_age(spec: CheckSpec) -> float:
    value = spec.options.get("max_age", MAX_AGE)
    seconds = parse_duration(value, name=f"fleet check {spec.name!r}: max_age")
    if seconds <= 0:
        hint = 'write max_age = "5m": reports older than that are not counted'
        raise _option_error(spec, "max_age", "must be more than 0", hint)
    return seconds


def _option_error(spec: CheckSpec, key: str, problem: str, hint: str) -> ConfigError:
    return ConfigError(f"fleet check {spec.name!r}: {key} {problem}", hint=hint)
