"""Cron schedules for drills and digests, on top of :mod:`cronsim`.

Times are computed in UTC, so a schedule means the same on every machine a watcher may run on;
the docs say so next to every cron key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from lastgood.units import plural


def validate(expression: str) -> None:
    """Raise ValueError when ``expression`` is not a five-field schedule cronsim accepts.

    cronsim also reads a sixth field (seconds, or a year in some dialects), which would make
    ``0 3 * * 1 *`` mean something else than it seems; only the five fields the docs describe
    are accepted."""
    from cronsim import CronSim, CronSimError

    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"it has {plural(len(fields), 'field')}, not 5")
    try:
        CronSim(expression, datetime.now(UTC))
    except CronSimError as exc:
        raise ValueError(str(exc).rstrip(".").lower() or "invalid") from None


def next_after(expression: str, after: float) -> float:
    """The first time strictly after ``after`` (epoch seconds) that ``expression`` matches."""
    from cronsim import CronSim

    start = datetime.fromtimestamp(after, UTC)
    return next(CronSim(expression, start)).timestamp()


def explain(expression: str) -> str:
    """The schedule in words, e.g. "At 03:00 on Monday", for status and the docs."""
    from cronsim import CronSim

    return CronSim(expression, datetime.now(UTC)).explain()


def is_due(expression: str, last_run: float | None, now: float, *, since: float) -> bool:
    """Whether a run is due: a scheduled time has passed since the last run (or since
    ``since``, when the watcher started, for a schedule that never ran)."""
    return next_after(expression, last_run if last_run is not None else since) <= now
