"""Problems that last: alerted when they start, again every ``alert_every``, and once more
when they are resolved.

The notifier delivers each dedupe key once, so a repeat is a new key: the problem's start time
plus how many ``alert_every`` periods it has lasted. A problem resolved and seen again later is
a new problem with a new start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lastgood.events import Event, EventKind
from lastgood.record import Record
from lastgood.units import format_duration


class Problem(Record, frozen=False):
    """One open problem: when it started and which repeat was announced last."""

    since: float
    env: str | None
    kind: EventKind
    recovered_kind: EventKind
    message: str
    announced: int = -1


class Problems:
    """The open problems of one watcher, keyed by a stable name like ``health:staging``."""

    def __init__(
        self,
        emit: Callable[[Event], None],
        alert_every: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._emit = emit
        self._every = alert_every
        self._clock = clock
        self._open: dict[str, Problem] = {}

    def raise_(
        self,
        name: str,
        message: str,
        *,
        env: str | None = None,
        kind: EventKind = EventKind.WATCH_ALERT,
        recovered: EventKind = EventKind.WATCH_RECOVERED,
        data: dict[str, Any] | None = None,
    ) -> bool:
        """Note that problem ``name`` holds now; announce it when new or due again. Returns
        whether an event was emitted."""
        now = self._clock()
        problem = self._open.get(name)
        if problem is None:
            problem = self._open[name] = Problem(now, env, kind, recovered, message)
        problem.message = message
        period = int((now - problem.since) // self._every)
        if period == problem.announced:
            return False
        problem.announced = period
        lasting = f" (ongoing for {format_duration(now - problem.since)})" if period else ""
        self._emit(
            Event(
                kind,
                message + lasting,
                env=env,
                data={"problem": name, "since": problem.since, "repeat": period, **(data or {})},
                key=f"{kind.value}:{name}:{problem.since:.3f}:{period}",
            )
        )
        return True

    def resolve(self, name: str, message: str | None = None) -> bool:
        """Problem ``name`` no longer holds: announce the recovery if it was open."""
        problem = self._open.pop(name, None)
        if problem is None:
            return False
        took = format_duration(self._clock() - problem.since)
        self._emit(
            Event(
                problem.recovered_kind,
                (message or f"resolved: {problem.message}") + f" (after {took})",
                env=problem.env,
                data={"problem": name, "since": problem.since},
                key=f"{problem.recovered_kind.value}:{name}:{problem.since:.3f}",
            )
        )
        return True

    def resume(self, name: str, problem: Problem) -> None:
        """Take over ``problem``, already announced by an earlier watcher (from the ledger):
        it is not announced again until its next period, and its recovery is announced."""
        self._open[name] = problem

    def is_open(self, name: str) -> bool:
        return name in self._open

    def open_names(self) -> list[str]:
        return sorted(self._open)
