"""Comparative checks: a value a check measures, judged against the value measured before.

A check that measures a number (``sql`` always; ``http`` and ``command`` when they name a
``value``) may carry ``max_drop`` and/or ``max_rise``. Each round of a deploy's bake compares
the value with its **baseline**, the same check's value measured against what was live before the
switch, so a change that halves the lead scores is caught, not only one that zeroes them.

A limit is written ``"20%"`` (a share of the baseline) or as a plain number (an absolute amount,
in the value's own units). Where the baseline comes from is a :class:`BaselineSource`: the
values measured before the switch (``lastgood.operations.baseline``), or, for a ``fleet`` check
during a gradual rollout, the rest of the fleet's reports (``lastgood.operations.cohorts``).

This module is imported while the config is read: it stays free of heavy imports and writes
nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Protocol

from lastgood.errors import ConfigError
from lastgood.record import Record

KEYS = ("max_drop", "max_rise")
_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_HINT = 'write {key} = "20%" (a share of the baseline) or {key} = 5 (in the value\'s own units)'


class Limit(Record):
    """How far a value may move from its baseline in one direction."""

    amount: float
    percent: bool

    def __str__(self) -> str:
        return f"{self.amount:g}%" if self.percent else f"{self.amount:g}"

    def allows(self, baseline: float, moved: float) -> bool:
        """Whether a move of ``moved`` (≥ 0, away from the baseline) is within the limit."""
        if not self.percent:
            return moved <= self.amount
        if baseline == 0:
            return moved == 0  # no share of zero is a sensible allowance: any move is too far
        return moved / abs(baseline) * 100 <= self.amount + 1e-9


class Comparison(Record):
    """A check's ``max_drop`` and ``max_rise`` (either may be None, never both)."""

    max_drop: Limit | None = None
    max_rise: Limit | None = None


class Baseline(Record):
    """A check's value before the change, and where it came from (for messages)."""

    value: float
    source: str  # e.g. "median of 3 rounds on v6 before v7"
    against: str = "the baseline"  # "the rest of the fleet" during a rollout's cohort comparison


class BaselineSource(Protocol):
    """Where the values a round is compared with come from.

    Before/after (a deploy's bake) answers with values measured before the switch; a rollout
    could answer with the rest of the fleet's reports, per round."""

    def baseline(self, name: str) -> Baseline | None:
        """The baseline of check ``name``, or None when there is none."""

    def missing(self, name: str) -> str:
        """Why check ``name`` has no baseline, as a phrase ("nothing was live before v1")."""


class Judgement(Record):
    """A comparison's outcome: whether the value is within its limits, and the sentence."""

    ok: bool
    text: str


def parse_comparison(item: Mapping[str, Any], where: str) -> Comparison | None:
    """``max_drop`` / ``max_rise`` of one check table (``where`` names it), or None.

    Raises ConfigError naming the check and the key, with a hint, when a limit is malformed."""
    limits = {key: _parse_limit(item[key], key, where) for key in KEYS if key in item}
    if not limits:
        return None
    return Comparison(max_drop=limits.get("max_drop"), max_rise=limits.get("max_rise"))


def _parse_limit(raw: object, key: str, where: str) -> Limit:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if raw >= 0 and math.isfinite(raw):
            return Limit(float(raw), percent=False)
    elif isinstance(raw, str) and (match := _LIMIT.match(raw)):
        return Limit(float(match.group(1)), percent=True)
    shown = str(raw).lower() if isinstance(raw, bool) else repr(raw)  # as TOML writes it
    raise ConfigError(
        f"{where}: {key} = {shown} is not a percentage or a number ≥ 0",
        hint=_HINT.format(key=key),
    )


def measured(data: Mapping[str, Any]) -> float | None:
    """The number a check result measured (``data["value"]``), or None."""
    value = data.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def judge(
    value: float | None, baseline: Baseline, comparison: Comparison, name: str = "value"
) -> Judgement:
    """Compare ``value`` (called ``name`` in the text) with ``baseline`` under
    ``comparison``'s limits (writes nothing).

    The caller handles a missing baseline; a missing value fails (a metric that cannot be
    measured is not a healthy one)."""
    if value is None:
        return Judgement(False, f"no {name} measured to compare with baseline {baseline.value:g}")
    change = value - baseline.value
    limit, key = (
        (comparison.max_drop, "max_drop") if change < 0 else (comparison.max_rise, "max_rise")
    )
    shown = f"{name} {baseline.value:g} → {value:g} ({_change(baseline.value, change)}"
    ok = limit is None or limit.allows(baseline.value, abs(change))
    verdict = "" if limit is None else f", {'within' if ok else 'over'} {key} {limit}"
    return Judgement(ok, f"{shown}{verdict}) against {baseline.against}, {baseline.source}")


def _change(before: float, change: float) -> str:
    """``-52%`` (or ``-21.5`` from a zero baseline, where a share means nothing)."""
    if before == 0:
        return f"{change:+g}"
    share = change / abs(before) * 100
    return f"{share:+.1f}%" if abs(share) < 10 else f"{share:+.0f}%"
