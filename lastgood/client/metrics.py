"""Business metrics a consumer reports, and the one header that carries them.

``LiveConfig.report("lead_score", 36.5)`` keeps the latest value per name; the consumer's next
request carries every value reported since its last one in ``X-Lastgood-Metrics:
lead_score=36.5,errors=0``, so reporting costs no request of its own. The server keeps each
value with the version the consumer served when it reported and the time it arrived; a
``fleet`` check (:mod:`lastgood.checks.fleet`) aggregates them over the consumers of a version.

Names are short identifiers (a letter, then letters, digits, ``_``, ``-`` or ``.``; at most 64
characters), so they travel in the header as they are: no escaping, and ``=`` and ``,`` stay
separators. Values are real numbers a finite float holds. The same rules are checked where the
header is read (:func:`lastgood.server.consumers.parse_metrics`) and where a check names its
metric.

Standard library only: ``import lastgood.client`` stays light.
"""

from __future__ import annotations

import decimal
import math
import numbers
import re
from collections.abc import Mapping

from lastgood.errors import UsageError

HEADER = "X-Lastgood-Metrics"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
MAX_METRICS = 32
"""Names one consumer may report (and one header may carry): a consumer is not a metrics
pipeline, and the server keeps every name for every consumer."""

NAME_HINT = "use a short identifier: a letter, then letters, digits, _ - or . (e.g. lead_score)"


def metric_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a metric name, or None when it can."""
    if not isinstance(name, str):
        return f"a metric name must be text, got {type(name).__name__}"
    if not NAME.fullmatch(name):
        return f"{name[:80]!r} is not a metric name"
    return None


def metric_value(name: str, value: object) -> float:
    """``value`` as a float; UsageError naming ``name`` when it is not a real number that a
    finite float holds. Any :class:`numbers.Real` is taken (``Decimal`` and ``Fraction`` too:
    the server keeps floats); ``bool`` is refused, as ``report("ok", True)`` is a mistake."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | decimal.Decimal):
        raise UsageError(
            f"metric {name!r}: {value!r} is not a number",
            hint="report a real number (int, float, Decimal, Fraction), e.g. "
            "report('lead_score', 36.5)",
        )
    try:
        number = float(value)
    except (ArithmeticError, ValueError):  # 10**400 overflows; a signalling Decimal NaN
        number = math.inf
    if not math.isfinite(number):
        raise UsageError(
            f"metric {name!r}: {_short(value)} is not a finite number",
            hint="report what was measured, within a float's range; skip the report when "
            "nothing was",
        )
    return number


def _short(value: object) -> str:
    """``value``'s repr, cut short: 10**400 has 401 digits."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}… ({len(text)} characters)"


def checked_metric(name: object, value: object) -> tuple[str, float]:
    """(name, value) when both are acceptable; UsageError saying which is not, and why."""
    problem = metric_name_problem(name)
    if problem is not None:
        raise UsageError(problem, hint=NAME_HINT)
    assert isinstance(name, str)
    return name, metric_value(name, value)


def header_value(values: Mapping[str, float]) -> str:
    """``lead_score=36.5,errors=0`` (``repr`` keeps every digit of a float)."""
    return ",".join(f"{name}={_number(value)}" for name, value in values.items())


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
