"""Run check rounds: every check of a phase at once, each under its timeout, results recorded."""

from __future__ import annotations

import time

from lastgood.checks import Check, CheckContext, CheckResult, build_check, run_check
from lastgood.config import CheckSpec
from lastgood.events import Event, EventKind
from lastgood.operations.place import Place
from lastgood.record import Record
from lastgood.rows import CheckRecord
from lastgood.targets import Release


class Round(Record):
    """One check round: all results, and whether every check passed."""

    phase: str
    number: int
    results: tuple[CheckResult, ...]
    at: float

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    @property
    def failed(self) -> list[CheckResult]:
        return [result for result in self.results if not result.ok]

    def summary(self) -> str:
        if not self.results:
            return "no checks"
        if self.ok:
            return f"{len(self.results)}/{len(self.results)} checks passed"
        return "; ".join(f"'{r.name}' failed: {r.detail}" for r in self.failed)

    def failed_names(self) -> str:
        """``'scores-not-zero', 'scorer-up'``, for sentences that say what failed."""
        return ", ".join(f"'{r.name}'" for r in self.failed) or "its checks"

    def failed_details(self) -> str:
        """What each failed check saw, ``; ``-separated."""
        return "; ".join(r.detail for r in self.failed)


def build_checks(specs: tuple[CheckSpec, ...]) -> list[Check]:
    """Instantiate checks; raises ConfigError on a bad option before anything runs."""
    return [build_check(spec) for spec in specs]


def live_context(place: Place, release: Release | None) -> CheckContext:
    """What a check of ``place`` sees: its live files, as serving ``release``."""
    return CheckContext(
        env=place.name,
        version=None if release is None else release.version,
        path=place.target.live_path(),
        root=place.project.root,
    )


def run_round(
    place: Place,
    checks: list[Check],
    context: CheckContext,
    *,
    phase: str,
    number: int,
    deployment: int | None,
    record_passing: bool = True,
) -> Round:
    """Run ``checks`` concurrently, record the results in the ledger, emit the round event.

    The watcher passes ``record_passing=False``: a round every few seconds for months would
    bury the ledger, so only rounds with a failure are kept."""
    if checks:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(checks))) as pool:
            results = tuple(pool.map(lambda check: run_check(check, context), checks))
    else:
        results = ()
    done = Round(phase, number, results, time.time())
    env = place.name
    if record_passing or not done.ok:
        place.store.record_checks(
            CheckRecord(deployment, env, phase, number, r.name, r.ok, r.detail, r.duration, done.at)
            for r in results
        )
    place.emit(
        Event(
            EventKind.CHECK_ROUND,
            f"{phase} round {number}: {done.summary()}",
            env=env,
            version=context.version,
            deployment=deployment,
            data={"ok": done.ok, "phase": phase, "round": number},
        )
    )
    if not done.ok:
        place.emit(
            Event(
                EventKind.CHECK_FAILED,
                f"{phase} round {number} on {env}: {done.summary()}",
                env=env,
                version=context.version,
                deployment=deployment,
                data={"failed": [r.name for r in done.failed], "phase": phase},
            )
        )
    return done
