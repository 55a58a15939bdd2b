"""``bisect``: find the first bad version between a good and a bad one, by binary search.

Three ways to judge a candidate:

- **preflight** (the default): the environment's preflight checks run against the candidate's
  files in a temporary folder, as a deploy's preflight would. Nothing live changes, nothing on
  the target changes.
- **run** (``--run CMD``): a command judges, like ``git bisect run``: exit 0 good, 125 skip,
  1-127 bad, anything else (128 and up: killed by a signal) stops the bisect. It gets the
  ``LASTGOOD_*`` variables of a check, ``LASTGOOD_PATH`` pointing at the candidate's files.
- **live** (``--live``): each candidate is deployed with the environment's checks (a normal
  deploy, source ``bisect``: a failing one is rolled back by itself), optionally judged by the
  command too; at the end what was live is put back, and the last known good pointer with it,
  whatever happens, Ctrl-C included. Refused on protected environments and where changes need
  approval: a bisect must never be the way around a review.

The candidates are what lies between GOOD and BAD. When both were taken from git commits, one
an ancestor of the other, that is the commits between them that changed the workspace's folder,
in history's order (each as its version, recorded from the commit when it is not one yet: an
``import-git`` after the fact numbers versions out of history's order). Otherwise it is the
versions numbered between them (drill variants left out). 1,000 candidates take at most 10
rounds. The answer is recorded as a ``bisect-finished`` event.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lastgood.checks import CheckContext
from lastgood.checks.base import run_check
from lastgood.errors import LastgoodError, RefusedError, UsageError
from lastgood.events import Event, EventKind
from lastgood.operations.checking import build_checks
from lastgood.operations.deploy import materialize
from lastgood.operations.place import Place
from lastgood.operations.resolve import resolve
from lastgood.project import Project
from lastgood.record import Record, field
from lastgood.rows import VersionInfo
from lastgood.units import plural

GOOD, BAD, SKIP = "good", "bad", "skip"
SKIP_CODE = 125
"""The exit code of a ``--run`` command that cannot judge this candidate (as git's)."""


class Judgement(Record):
    """One round: a candidate and what was found."""

    version: int
    verdict: str  # good, bad or skip
    detail: str


class BisectResult(Record, frozen=False):
    """What a bisect found, and how."""

    env: str
    mode: str  # preflight, run or live
    good: int
    bad: int
    candidates: int
    rounds: list[Judgement] = field(default_factory=list)
    first_bad: VersionInfo | None = None
    last_good: int | None = None  # the version just before it that was judged good
    undecided: list[int] = field(default_factory=list)  # skipped: the first bad is among these
    diff: str = ""
    restored: str | None = None  # live mode: what was put back
    over: str = "versions"  # the candidates: versions by number, or commits by history

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "mode": self.mode,
            "good": self.good,
            "bad": self.bad,
            "candidates": self.candidates,
            "rounds": [round_.__dict__ for round_ in self.rounds],
            "first_bad": None if self.first_bad is None else self.first_bad.__dict__,
            "last_good": self.last_good,
            "undecided": self.undecided,
            "diff": self.diff,
            "restored": self.restored,
            "over": self.over,
        }


Judge = Callable[[VersionInfo], Judgement]


def bisect(
    project: Project,
    env: str,
    *,
    good: str,
    bad: str,
    live: bool = False,
    run: str | None = None,
    timeout: float = 300.0,
    on_round: Callable[[Judgement, int], None] | None = None,
) -> BisectResult:
    """Find the first bad version between ``good`` and ``bad`` on ``env`` (see the module);
    ``on_round`` hears each round as it is judged, with how many candidates are left."""
    place = Place(project, env)
    first_good, known_bad = resolve(project, good, env=env), resolve(project, bad, env=env)
    candidates = _commit_candidates(project, first_good, known_bad)
    over = "commits"
    if candidates is None:
        over = "versions"
        if first_good.number >= known_bad.number:
            raise UsageError(
                f"--good {good} ({first_good.label}) is not older than --bad {bad} "
                f"({known_bad.label}): bisect looks for where good turned bad",
                hint="give the older version as --good",
            )
        candidates = _candidates(project, first_good.number, known_bad.number)
    mode = "live" if live else "run" if run is not None else "preflight"
    result = BisectResult(env, mode, first_good.number, known_bad.number, len(candidates))
    result.over = over
    if live:
        _refuse_live(place)
        with _putting_back(place, result):
            _search(candidates, _live_judge(place, run, timeout), result, on_round)
    else:
        _search(candidates, _offline_judge(place, run, timeout), result, on_round)
    _conclude(project, result, candidates, known_bad)
    return result


def _commit_candidates(
    project: Project, good: VersionInfo, bad: VersionInfo
) -> list[VersionInfo] | None:
    """The versions of the commits between ``good``'s commit and ``bad``'s, in history's order,
    each recorded from its commit when it is not a version yet (a commit that cannot be
    versioned, holding raw data, is left out); None unless both ends were taken from clean
    commits of this repository, the good one an ancestor of the bad one."""
    from lastgood.errors import RawDataError
    from lastgood.gitrepo import Repo
    from lastgood.operations.commits import record_commit

    if not (good.git_commit and bad.git_commit) or good.git_dirty or bad.git_dirty:
        return None
    repo = Repo.find(project.root)
    shas = None if repo is None else repo.commits_between(good.git_commit, bad.git_commit)
    if shas is None:
        return None
    found: list[VersionInfo] = []
    for sha in shas:
        if sha == bad.git_commit:
            continue
        taken = project.store.versions_of_commit(sha)
        try:
            version = taken[0] if taken else record_commit(project, sha).version
        except RawDataError:
            continue
        if version.number not in (good.number, bad.number):
            found.append(version)
    return found


def _candidates(project: Project, good: int, bad: int) -> list[VersionInfo]:
    """The versions strictly between ``good`` and ``bad``, oldest first; drill variants are
    never the folder's content, so never a candidate."""
    found: list[VersionInfo] = []
    before = bad
    while True:
        batch = [v for v in project.store.versions(limit=500, before=before) if v.number > good]
        found.extend(v for v in batch if v.source != "drill")
        if len(batch) < 500:
            break
        before = batch[-1].number
    return found[::-1]


def _search(
    candidates: list[VersionInfo],
    judge: Judge,
    result: BisectResult,
    on_round: Callable[[Judgement, int], None] | None,
) -> None:
    """Binary search: ``lo`` is the newest index known good (-1: GOOD itself), ``hi`` the oldest
    known bad (len: BAD itself). A skipped candidate is replaced by its nearest neighbour."""
    lo, hi = -1, len(candidates)
    skipped: set[int] = set()
    while hi - lo > 1:
        pick = _pick(lo, hi, skipped)
        if pick is None:
            break
        judged = judge(candidates[pick])
        result.rounds.append(judged)
        if judged.verdict == GOOD:
            lo = pick
        elif judged.verdict == BAD:
            hi = pick
        else:
            skipped.add(pick)
        if on_round is not None:
            on_round(judged, max(0, hi - lo - 1 - len(skipped)))
    result.undecided = [candidates[i].number for i in range(lo + 1, hi) if i in skipped]
    result.last_good = result.good if lo < 0 else candidates[lo].number
    result.first_bad = candidates[hi] if hi < len(candidates) else None


def _pick(lo: int, hi: int, skipped: set[int]) -> int | None:
    """The untried index nearest the middle of (lo, hi), or None when all were skipped."""
    middle = (lo + hi) // 2
    for distance in range(hi - lo):
        for index in (middle - distance, middle + distance + 1):
            if lo < index < hi and index not in skipped:
                return index
    return None


def _conclude(
    project: Project, result: BisectResult, candidates: list[VersionInfo], bad: VersionInfo
) -> None:
    from lastgood.operations.versions import side_of, unified

    first_bad = result.first_bad or bad
    result.first_bad = first_bad
    assert result.last_good is not None
    before = project.store.version(result.last_good)
    result.diff = unified(side_of(project, before), side_of(project, first_bad))
    undecided = f" (or one of {', '.join(f'v{n}' for n in result.undecided)}, skipped)"
    project.emit(
        Event(
            EventKind.BISECT_FINISHED,
            f"bisect on {result.env}: {first_bad.label} is the first bad version"
            f"{undecided if result.undecided else ''}, after {before.label}; "
            f"{len(result.rounds)} rounds ({result.mode})",
            env=result.env,
            version=first_bad.number,
            data={
                "mode": result.mode,
                "good": result.good,
                "bad": result.bad,
                "first_bad": first_bad.number,
                "last_good": result.last_good,
                "undecided": result.undecided,
                "rounds": [round_.__dict__ for round_ in result.rounds],
                "over": result.over,
            },
        )
    )


# ---- judging ----------------------------------------------------------------------------------


def _offline_judge(place: Place, run: str | None, timeout: float) -> Judge:
    project = place.project
    checks = build_checks(place.settings.preflight)
    if run is None and not checks:
        raise UsageError(
            f"{place.name} has no preflight checks to judge the candidates by",
            hint=f"give --run CMD (exit 0 good, 125 skip, other bad), add "
            f"[[env.{place.name}.preflight]] checks, or judge by deploying with --live",
        )

    def judge(version: VersionInfo) -> Judgement:
        with tempfile.TemporaryDirectory(prefix="lastgood-bisect-") as folder:
            path = materialize(Path(folder), project.store.files(version.number))
            context = CheckContext(place.name, version.number, path, project.root)
            if run is not None:
                return _run_judge(run, context, version, timeout)
            results = [run_check(check, context) for check in checks]
        failed = [result for result in results if not result.ok]
        if failed:
            return Judgement(
                version.number, BAD, "; ".join(f"{r.name}: {r.detail}" for r in failed)
            )
        return Judgement(version.number, GOOD, f"{plural(len(results), 'preflight check')} passed")

    return judge


def _run_judge(
    command: str, context: CheckContext, version: VersionInfo, timeout: float
) -> Judgement:
    environ = {**os.environ, **context.environ()}
    try:
        done = subprocess.run(
            ["sh", "-c", command], cwd=context.root, env=environ, capture_output=True,
            text=True, errors="replace", timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Judgement(version.number, SKIP, f"--run took over {timeout:g} s: cannot judge")
    said = (done.stdout + done.stderr).strip().splitlines()
    detail = f"exit {done.returncode}" + (f": {said[-1][:200]}" if said else "")
    if done.returncode == 0:
        return Judgement(version.number, GOOD, detail)
    if done.returncode == SKIP_CODE:
        return Judgement(version.number, SKIP, detail)
    if 0 < done.returncode < 128:
        return Judgement(version.number, BAD, detail)
    raise LastgoodError(
        f"the --run command ended with {detail} on {version.label}: a code above 127 (or a "
        "signal) stops the bisect, as in git",
        hint="make it exit 0 for good, 125 to skip, 1-127 for bad",
    )


def _live_judge(place: Place, run: str | None, timeout: float) -> Judge:
    from lastgood.errors import PreflightError, QuarantinedError, ValidationError
    from lastgood.operations.deploy import deploy
    from lastgood.outcome import OK, RESTORED

    def judge(version: VersionInfo) -> Judgement:
        try:
            outcome = deploy(
                place.project, place.name, ref=version.label, force=True, source="bisect",
                message=f"bisect: judging {version.label}",
            )  # fmt: skip
        except (PreflightError, ValidationError) as exc:
            return Judgement(version.number, BAD, exc.message)
        except QuarantinedError as exc:  # pragma: no cover - force deploys quarantined ones
            return Judgement(version.number, BAD, exc.message)
        if outcome.exit_code == RESTORED:
            return Judgement(version.number, BAD, outcome.summary)
        if outcome.exit_code != OK:
            raise RefusedError(
                f"bisect stopped: deploying {version.label} ended with exit "
                f"{outcome.exit_code}: {outcome.summary}",
                hint=f"see 'lastgood history {place.name}'; what was live is put back",
            )
        if run is None:
            return Judgement(version.number, GOOD, outcome.summary)
        live_path = place.target.live_path()
        context = CheckContext(place.name, version.number, live_path, place.project.root)
        return _run_judge(run, context, version, timeout)

    return judge


def _refuse_live(place: Place) -> None:
    settings = place.settings
    if settings.protected or settings.approval is not None:
        why = "is protected" if settings.protected else "takes changes only as approved requests"
        raise RefusedError(
            f"bisect --live deploys every candidate, and {place.name} {why}",
            hint="bisect without --live (preflights or --run judge the files, nothing live "
            "changes), or bisect --live on an environment like staging",
        )


@contextmanager
def _putting_back(place: Place, result: BisectResult) -> Iterator[None]:
    """Whatever happens inside (a failure, Ctrl-C, SIGTERM), put back what was live and the
    last known good pointer as they were."""
    from lastgood.operations.rollback import rollback

    state = place.store.env_state(place.name)
    live = place.target.live()
    was_live = None if live is None else live.version
    try:
        yield
    finally:
        now = place.target.live()
        if was_live is not None and (now is None or now.version != was_live):
            rollback(place.project, place.name, to=f"v{was_live}", source="bisect",
                     reason="bisect: put back what was live before it")  # fmt: skip
        if place.store.env_state(place.name).last_good != state.last_good:
            place.store.set_env(place.name, last_good=state.last_good)
        result.restored = None if was_live is None else f"v{was_live}"
