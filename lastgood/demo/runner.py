"""Replay the lead-scoring incident with the real verbs, a real service and a real rollback.

The story, in a temporary folder: a tiny scorer reads its rules from a directory target; v1 goes
live and bakes green; one number changes (the cutoff 0.2 becomes 20, meant as "20 %"); v2 goes
live and every lead scores zero; the SQL check over the leads table sees it; lastgood restores v1
by itself and verifies it; the scorer scores again. :func:`run_demo` narrates each step on stderr
and returns the measured figures. The scorer process is always stopped and the folder removed
(unless ``keep``), whatever happens: an error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from lastgood.cli.render import ProgressPrinter, info, is_tty
from lastgood.demo.scorer import ScorerProcess
from lastgood.events import Event, EventKind
from lastgood.operations.deploy import deploy
from lastgood.operations.status import history
from lastgood.operations.versions import diff
from lastgood.outcome import OK, RESTORED, Outcome
from lastgood.project import Project, default_store_url
from lastgood.rows import Deployment

ENV = "demo"
GOOD_CUTOFF = "0.2"
BAD_CUTOFF = "20"
RECOVERY_WAIT = 5.0

CONFIG = """\
# The demo environment: a directory target the scorer reads, and two checks after every deploy.
[env.demo]
target = {{ type = "directory", path = "../live/demo", keep = 5 }}
bake = "3s"          # checks must stay green this long before a version is last known good
interval = "0.5s"    # time between check rounds
failures = 2         # consecutive failed rounds that trip an automatic rollback

[[env.demo.check]]   # "the process is up"
name = "scorer-up"
type = "http"
url = "http://127.0.0.1:{port}/health"
json = {{ status = "ok" }}
timeout = "2s"

[[env.demo.check]]   # the business metric: are leads still getting a score?
name = "scores-not-zero"
type = "sql"
url = "sqlite:///../data/leads.db"
query = '''select avg(score) from leads
           where scored_at > strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 seconds')'''
min = 0.01
timeout = "2s"

[env.demo.drill]     # what 'lastgood drill demo' breaks on purpose to rehearse the rollback
files = {{ "scoring/thresholds.yaml" = "drills/zero-scores.yaml" }}

[versioning]
exclude = ["drills/**"]
"""

THRESHOLDS = """\
# Lead scoring rules. A lead's score is the weighted sum of its signals, capped at 1;
# a lead whose score is below the cutoff is cold and scores 0.
cutoff: {cutoff}
weights:
  visits: 0.04
  emails_opened: 0.06
  employees: 0.0005
"""


class Narrator:
    """Plain sentences for a first-time user, on stderr: Rich on a terminal, plain lines else."""

    def __init__(self) -> None:
        self.steps = 0
        self._console: Any = None
        if is_tty():
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)

    def step(self, title: str) -> None:
        self.steps += 1
        heading = f"{self.steps}. {title}"
        if self._console is None:
            info(f"\n== {heading}")
            return
        self._console.print()
        self._console.rule(f"[bold]{heading}", align="left")

    def say(self, text: str, style: str = "") -> None:
        if self._console is None:
            info(text)
        else:
            self._console.print(text, style=style or None, markup=False)

    def good(self, text: str) -> None:
        self.say(text, "green")

    def bad(self, text: str) -> None:
        self.say(text, "bold red")

    def diff(self, text: str) -> None:
        """A unified diff, coloured on a terminal."""
        for line in text.rstrip("\n").splitlines():
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
            self.say("    " + line, "bold" if line.startswith(("+++", "---")) else style)


@dataclass
class DemoResult:
    """What the demo measured, and whether the story happened as it should."""

    folder: Path
    kept: bool
    deployments: list[Deployment] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)
    restore: Deployment | None = None
    detected_after: float | None = None
    caught_by: str = ""
    scores: dict[str, float | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    drill: dict[str, Any] | None = None
    requests: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        restore = self.restore
        return {
            "ok": self.ok,
            "problems": self.problems,
            "deploy_exit_codes": self.exit_codes,
            "detected_after": self.detected_after,
            "time_to_active": restore.time_to_active if restore else None,
            "time_to_verified": restore.time_to_verified if restore else None,
            "caught_by": self.caught_by,
            "scores": self.scores,
            "timeline": [record.to_json() for record in self.deployments],
            "seconds": self.seconds,
            "folder": str(self.folder),
            "kept": self.kept,
            "drill": self.drill,
            "requests": self.requests,
        }


def run_demo(
    *, keep: bool = False, author: str = "you", rehearse: bool = False, requests: bool = False
) -> DemoResult:
    """Play the incident in a new temporary folder. Writes only inside that folder.

    Raises LastgoodError when a step cannot even run (the scorer does not start); returns a
    result whose ``problems`` say what went differently when the story itself goes wrong.
    """
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="lastgood-demo-")).resolve()
    narrator = Narrator()
    result = DemoResult(folder, keep)
    try:
        with _terminate_as_exit(), _no_proxy_for_the_scorer(), ScorerProcess(folder) as scorer:
            _play(folder, scorer, narrator, result, author, rehearse, requests)
    finally:
        _clean_up(folder, keep, narrator)
    result.seconds = round(time.monotonic() - started, 2)
    return result


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit for the demo's length, so the ``finally`` blocks run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_terminate(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _no_proxy_for_the_scorer() -> Iterator[None]:
    """Keep the http check's requests to 127.0.0.1 off any HTTP_PROXY set for the internet.

    httpx honours proxy variables even for loopback addresses; behind a company proxy the
    'scorer-up' check would otherwise fail and the demo would show a different incident.
    """
    saved = {name: os.environ.get(name) for name in ("NO_PROXY", "no_proxy")}
    for name, value in saved.items():
        os.environ[name] = ",".join(filter(None, [value, "127.0.0.1", "localhost"]))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _clean_up(folder: Path, keep: bool, narrator: Narrator) -> None:
    if keep:
        narrator.say(f"The demo folder is kept at {folder}")
        narrator.say(f"  look around: lastgood -C {folder / 'workspace'} history {ENV}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


def _play(
    folder: Path,
    scorer: ScorerProcess,
    narrator: Narrator,
    result: DemoResult,
    author: str,
    rehearse: bool,
    requests: bool = False,
) -> None:
    """The five steps of the story, each narrated; the project is closed whatever happens."""
    narrator.step("Start a tiny lead-scoring service")
    (folder / "data").mkdir()
    port = scorer.start(folder / "live" / ENV, folder / "data" / "leads.db")
    narrator.say(
        f"It listens on 127.0.0.1:{port}, scores a lead every 100 ms and writes each score to "
        f"data/leads.db. It reads its rules from live/{ENV}/current/scoring/thresholds.yaml: "
        "the folder lastgood deploys to."
    )
    workspace = _write_workspace(folder, port)
    project = Project.open(workspace, store_url=default_store_url(workspace), actor=author)
    try:
        project.events.subscribe(ProgressPrinter())
        project.events.subscribe(lambda event: _note_failure(event, result))
        _deploy_good(project, scorer, narrator, result)
        _make_the_small_change(project, workspace, narrator)
        _deploy_bad(project, narrator, result)
        _show_recovery(scorer, narrator, result)
        result.deployments = list(reversed(history(project, ENV).deployments))
        result.problems.extend(_story_problems(result))
        if rehearse:
            _rehearse(project, narrator, result)
            result.deployments = list(reversed(history(project, ENV).deployments))
        if requests:
            _review_a_change(project, workspace, narrator, result)
            result.deployments = list(reversed(history(project, ENV).deployments))
    finally:
        project.close()


def _write_workspace(folder: Path, port: int) -> Path:
    """The team's configuration folder: lastgood.toml and the scoring rules."""
    workspace = folder / "workspace"
    (workspace / "scoring").mkdir(parents=True)
    (workspace / "lastgood.toml").write_text(CONFIG.format(port=port), encoding="utf-8")
    (workspace / "drills").mkdir()
    (workspace / "drills" / "zero-scores.yaml").write_text(
        THRESHOLDS.format(cutoff=BAD_CUTOFF), encoding="utf-8"
    )
    _write_cutoff(workspace, GOOD_CUTOFF)
    return workspace


def _rehearse(project: Project, narrator: Narrator, result: DemoResult) -> None:
    """Step 6: the drill that would have proven all of this before the incident."""
    from lastgood.operations.drill import drill
    from lastgood.record import as_dict

    narrator.step("Rehearse it: lastgood drill demo")
    narrator.say(
        "Rollbacks are rehearsed before the day they are needed. The drill breaks the live v1 "
        f"on purpose with the cutoff in drills/zero-scores.yaml ({BAD_CUTOFF}), lets the same "
        "checks catch it and the automatic rollback restore v1, then proves the bytes and "
        "measures every step against the five-minute budget."
    )
    time.sleep(1.2)  # a second of fresh scores under v1, so the drill starts from a healthy state
    rehearsal = drill(project, ENV, reason="demo rehearsal")
    result.drill = {k: v for k, v in as_dict(rehearsal).items() if k != "record"}
    (narrator.good if rehearsal.passed else narrator.bad)(rehearsal.summary)
    if not rehearsal.passed:
        result.problems.append(f"the drill failed: {rehearsal.summary}")


APPROVAL = """
[groups]
scoring-team = ["dana"]

[env.demo.approval]
approvers = ["scoring-team"]
"""
REVIEWED_CUTOFF = "0.25"


def _review_a_change(
    project: Project, workspace: Path, narrator: Narrator, result: DemoResult
) -> None:
    """The team's answer to the incident: the next change is reviewed before it goes live;
    the rollback still needs nobody."""
    from lastgood.config import load
    from lastgood.operations.requests import apply_request, open_request, review_request
    from lastgood.operations.rollback import rollback

    narrator.step("Review the next change: lastgood request demo")
    narrator.say(
        "After the incident the team adds [env.demo.approval] to lastgood.toml: a change to "
        "demo now needs one approval from scoring-team (dana), and a plain deploy is refused. "
        f"The author proposes a gentler cutoff, {REVIEWED_CUTOFF}, as change request #1."
    )
    config = workspace / "lastgood.toml"
    config.write_text(config.read_text(encoding="utf-8") + APPROVAL, encoding="utf-8")
    project.config = load(workspace)
    _write_cutoff(workspace, REVIEWED_CUTOFF)
    opened = open_request(project, ENV, reason=f"a gentler cutoff: {REVIEWED_CUTOFF}")
    narrator.say(opened.summary)
    number = opened.request.number
    approved = review_request(project.acting_as("dana"), number, approve=True,
                              comment="scores stay above zero with this")  # fmt: skip
    narrator.good(approved.summary)
    applied = apply_request(project, number)
    narrator.good(applied.summary)
    narrator.step("Roll back without asking anyone")
    narrator.say("Rolling back never needs an approval: it puts back what was good before.")
    back = rollback(project, ENV, reason="the demo's last step")
    narrator.good(back.summary)
    result.requests = {
        "opened": opened.state, "approved": approved.state, "applied": applied.exit_code,
        "rollback": back.exit_code, "version": opened.request.version,
    }  # fmt: skip
    if opened.state != "waiting" or approved.state != "approved" or applied.exit_code != OK:
        result.problems.append(f"the change request did not go as described: {result.requests}")
    if back.exit_code != OK:
        result.problems.append(f"the rollback after the request failed: {back.summary}")


def _write_cutoff(workspace: Path, cutoff: str) -> None:
    path = workspace / "scoring" / "thresholds.yaml"
    path.write_text(THRESHOLDS.format(cutoff=cutoff), encoding="utf-8")


def _note_failure(event: Event, result: DemoResult) -> None:
    """Remember the first failed check round: it is what caught the bad version."""
    if event.kind is EventKind.CHECK_FAILED and not result.caught_by:
        result.caught_by = event.message


def _deploy_good(
    project: Project, scorer: ScorerProcess, narrator: Narrator, result: DemoResult
) -> None:
    narrator.step("Deploy v1: the good scoring rules")
    narrator.say(
        "lastgood records the folder as v1, switches the scorer's rules to it, then runs two "
        "checks every 0.5 s for 3 s: 'scorer-up' (GET /health) and 'scores-not-zero' (the "
        "average score of the last second, read from the leads table)."
    )
    outcome = deploy(project, ENV, message="first scoring rules")
    result.exit_codes.append(outcome.exit_code)
    health = scorer.health()
    result.scores["v1"] = health.get("recent_average")
    narrator.good(
        f"{outcome.summary}. It is now the last known good version: the scorer reads "
        f"{health.get('version')} and the average lead score is {health.get('recent_average')}."
    )


def _make_the_small_change(project: Project, workspace: Path, narrator: Narrator) -> None:
    narrator.step("The small change")
    narrator.say(
        f"Someone raises the cutoff from {GOOD_CUTOFF} to {BAD_CUTOFF}. They meant 20 %, but "
        "the scorer reads a fraction and no score is above 1, so every lead is now cold. One "
        "number in one YAML file:"
    )
    _write_cutoff(workspace, BAD_CUTOFF)
    narrator.diff(diff(project))


def _deploy_bad(project: Project, narrator: Narrator, result: DemoResult) -> None:
    narrator.step("Deploy v2 and let the checks judge it")
    outcome = deploy(project, ENV, message=f"raise the lead cutoff to {BAD_CUTOFF}")
    result.exit_codes.append(outcome.exit_code)
    result.restore = outcome.restore
    result.detected_after = _detected_after(outcome)
    if outcome.exit_code == RESTORED:
        narrator.bad(f"The checks caught it: {result.caught_by}")
        narrator.say(
            "The scorer process was up the whole time ('scorer-up' kept passing): only the "
            "business check over the team's own data saw that every lead scored zero."
        )
        narrator.good(outcome.summary)
        narrator.say(
            "lastgood went back to v1 because it is the last known good version (it passed its "
            "bake), not merely because it came before v2; v2 is now marked bad on this "
            "environment, so deploying it again needs --force. The checks kept running after "
            "the switch until a round passed: that is the 'verified' time."
        )
    else:
        narrator.bad(f"Unexpected: {outcome.summary}")


def _detected_after(outcome: Outcome) -> float | None:
    """Seconds from v2 going live to the failed round that tripped the rollback."""
    record, restore = outcome.deployment, outcome.restore
    if record is None or restore is None or record.activated_at is None:
        return None
    if restore.trigger_at is None:
        return None
    return round(restore.trigger_at - record.activated_at, 3)


def _show_recovery(scorer: ScorerProcess, narrator: Narrator, result: DemoResult) -> None:
    """Wait briefly for the scorer to score with v1 again, and say what it reports."""
    narrator.step("The service scores again")
    deadline = time.monotonic() + RECOVERY_WAIT
    health = scorer.health()
    while not _scoring_with_v1(health) and time.monotonic() < deadline:
        time.sleep(0.2)
        health = scorer.health()
    result.scores["restored"] = health.get("recent_average")
    text = (
        f"The scorer reads {health.get('config')} again: {health.get('leads_scored')} leads "
        f"scored so far, average score of the last second {health.get('recent_average')}."
    )
    (narrator.good if _scoring_with_v1(health) else narrator.bad)(text)


def _scoring_with_v1(health: dict[str, Any]) -> bool:
    average = health.get("recent_average")
    return health.get("version") == "v1" and isinstance(average, float) and average > 0


def _story_problems(result: DemoResult) -> list[str]:
    """Every way the run differs from the incident it should replay; empty when it matches."""
    problems = []
    if result.exit_codes != [OK, RESTORED]:
        problems.append(f"deploy exit codes were {result.exit_codes}, expected [0, 3]")
    restore = result.restore
    if restore is None or (restore.kind, restore.status) != ("auto-rollback", "succeeded"):
        problems.append("no verified automatic rollback was recorded")
    elif (restore.from_version, restore.to_version) != (2, 1):
        problems.append(f"the rollback went v{restore.from_version} → v{restore.to_version}")
    seen = [(d.kind, d.to_version, d.status) for d in result.deployments]
    expected = [("deploy", 1, "succeeded"), ("deploy", 2, "failed-restored")]
    expected.append(("auto-rollback", 1, "succeeded"))
    if seen != expected:
        problems.append(f"the timeline was {seen}, expected {expected}")
    if not isinstance(result.scores.get("restored"), float) or not result.scores["restored"]:
        problems.append("the scorer did not score leads again after the rollback")
    return problems
