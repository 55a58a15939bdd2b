"""Run check rounds: every check of a phase at once, each under its timeout, results recorded."""

from __future__ import annotations

import time

from lastgood.checks import Check, CheckContext, CheckResult, build_check, run_check
from lastgood.comparison import BaselineSource, judge, measured
from lastgood.config import CheckSpec
from lastgood.events import Event, EventKind
from lastgood.operations.place import Place
from lastgood.record import Record, replace
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

    @property
    def inconclusive(self) -> bool:
        """Whether a check passed only for want of what it needs to judge (a ``fleet`` check
        with too few reports): a bake goes on rather than end on such a round."""
        return any(result.ok and result.data.get("inconclusive") for result in self.results)

    def summary(self) -> str:
        if not self.results:
            return "no checks"
        if self.ok:
            passed = f"{len(self.results)}/{len(self.results)} checks passed"
            waiting = [f"'{r.name}' {r.detail}" for r in self.results if r.data.get("inconclusive")]
            return "; ".join([passed, *self._comparisons(), *waiting])
        return "; ".join(f"'{r.name}' failed: {r.detail}" for r in self.failed)

    def _comparisons(self) -> list[str]:
        """``'mean-score': scores.mean 40 → 36 (-10%, within max_drop 20%) …`` per compared
        check, so a passing round still shows how close it came."""
        return [
            f"'{r.name}': {r.data['comparison']}" for r in self.results if "comparison" in r.data
        ]

    def failed_names(self) -> str:
        """``'scores-not-zero', 'scorer-up'``, for sentences that say what failed."""
        return ", ".join(f"'{r.name}'" for r in self.failed) or "its checks"

    def failed_details(self) -> str:
        """What each failed check saw, ``; ``-separated."""
        return "; ".join(r.detail for r in self.failed)


def compared(check: Check, result: CheckResult, baselines: BaselineSource) -> CheckResult:
    """``result`` judged against its baseline too, when ``check`` compares (writes nothing).

    Without a baseline the comparison is skipped and the detail says why; the check's own
    bounds still decided ``ok``. A result that failed without measuring anything is left as is:
    its own detail already says what went wrong."""
    comparison = check.spec.compare
    value = measured(result.data)
    if comparison is None or (not result.ok and value is None) or result.data.get("inconclusive"):
        return result
    baseline = baselines.baseline(check.name)
    if baseline is None:
        note = f"not compared: no baseline ({baselines.missing(check.name)})"
        return replace(result, detail=f"{result.detail}; {note}")
    verdict = judge(value, baseline, comparison, check.value_name)
    data = {**result.data, "baseline": baseline.value, "comparison": verdict.text}
    return replace(
        result, ok=result.ok and verdict.ok, detail=f"{result.detail}; {verdict.text}", data=data
    )


def settled(result: CheckResult) -> CheckResult:
    """An inconclusive ``result`` at the end of a bake: a failure, since a version must not
    become known good without the evidence its checks need (writes nothing)."""
    if not (result.ok and result.data.get("inconclusive")):
        return result
    if result.data.get("first_live"):  # nobody could report before: passed, and said so
        detail = (
            f"{result.detail}; passed unjudged: nothing was live before this version, so no "
            "consumer could report earlier (the next deploy is judged)"
        )
        return replace(result, detail=detail, data={"first_live": True})
    detail = f"{result.detail}, and the bake time is over"
    return replace(result, ok=False, detail=detail)


def _record(result: CheckResult, deployment: int | None, env: str, done: Round) -> CheckRecord:
    baseline = result.data.get("baseline")
    return CheckRecord(
        deployment, env, done.phase, done.number, result.name, result.ok, result.detail,
        result.duration, done.at, value=measured(result.data),
        baseline=baseline if isinstance(baseline, float) else None,
    )  # fmt: skip


def build_checks(specs: tuple[CheckSpec, ...]) -> list[Check]:
    """Instantiate checks; raises ConfigError on a bad option before anything runs."""
    return [build_check(spec) for spec in specs]


def live_context(
    place: Place, release: Release | None, *, first_live: bool = False
) -> CheckContext:
    """What a check of ``place`` sees: its live files, as serving ``release`` (``first_live``:
    the first version ever live there, see :class:`~lastgood.checks.CheckContext`)."""
    return CheckContext(
        env=place.name,
        version=None if release is None else release.version,
        path=place.target.live_path(),
        root=place.project.root,
        fleet=place.store.consumers,
        first_live=first_live,
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
    baselines: BaselineSource | None = None,
    label: str | None = None,
    settles_at: float | None = None,
) -> Round:
    """Run ``checks`` concurrently, record the results in the ledger, emit the round event.

    The watcher passes ``record_passing=False``: a round every few seconds for months would
    bury the ledger, so only rounds with a failure are kept. With ``baselines`` (a deploy's
    bake), checks with ``max_drop`` / ``max_rise`` are also judged against their baseline.
    ``label`` names the round for people where ``round N`` is not enough (a rollout's
    ``step 2/3 (25%) round 1/3``). ``settles_at`` is the end of a bake: a round judged from
    then on fails an inconclusive result (:func:`settled`); before it, or without it, such a
    result passes."""
    if checks:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(checks))) as pool:
            results = tuple(pool.map(lambda check: run_check(check, context), checks))
    else:
        results = ()
    if baselines is not None:
        results = tuple(compared(c, r, baselines) for c, r in zip(checks, results, strict=True))
    if settles_at is not None and time.time() >= settles_at:
        results = tuple(settled(result) for result in results)
    done = Round(phase, number, results, time.time())
    env = place.name
    if record_passing or not done.ok:
        place.store.record_checks(_record(r, deployment, env, done) for r in results)
    _announce(place, done, context.version, deployment, label)
    return done


def _announce(
    place: Place, done: Round, version: int | None, deployment: int | None, label: str | None
) -> None:
    """Emit the round's event (with the values measured, when any), and check-failed."""
    env, phase, number = place.name, done.phase, done.number
    data: dict[str, object] = {"ok": done.ok, "phase": phase, "round": number}
    if label:
        data["label"] = label
    label = label or f"round {number}"
    values = {r.name: v for r in done.results if (v := measured(r.data)) is not None}
    if values:
        data["values"] = values
        baselines = {r.name: r.data["baseline"] for r in done.results if "baseline" in r.data}
        if baselines:
            data["baselines"] = baselines
    summary = done.summary()
    place.emit(
        Event(EventKind.CHECK_ROUND, f"{phase} {label}: {summary}", env=env,
              version=version, deployment=deployment, data=data)
    )  # fmt: skip
    if not done.ok:
        place.emit(
            Event(EventKind.CHECK_FAILED, f"{phase} {label} on {env}: {summary}", env=env,
                  version=version, deployment=deployment,
                  data={"failed": [r.name for r in done.failed], "phase": phase})
        )  # fmt: skip
