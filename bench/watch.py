"""How fast does ``lastgood watch`` act? Two figures, measured in one run on this machine.

(d) Detection to restore in watch mode: ``lastgood watch`` runs as a real process; a fresh
    version is deployed, then broken (its outage file appears), and the watcher trips after
    ``failures`` failed rounds and rolls back by itself (within ``guard`` of the deploy). From the
    ledger's auto-rollback record: ``activated_at - trigger_at`` (restore after the policy's
    detection) and ``verified_at - trigger_at``. Target: at most 0.5 s. The time from the outage
    to the trip is shown too, as information: it is policy (watch interval x failures). Baseline,
    measured in the same run and interleaved with the trials: a person's ``lastgood rollback
    staging`` as a whole process (the console script, with its verification round).
(e) Drift detection latency: a live file is edited by hand (different content every time) and
    the watcher reports it as a ``drift-detected`` event at its next cycle; latency is the
    event's ``at`` minus the time of the edit, shown against the watch interval. ``on_drift =
    "restore"`` puts the ledger's bytes back after each edit, so every trial starts clean.

Run from the repository root::

    .venv/bin/python bench/watch.py            # full: about a minute
    .venv/bin/python bench/watch.py --quick    # smaller, for CI smoke tests

It prints figures and never asserts on them; everything it creates lives in one temporary folder
that is removed at the end, and the watcher is stopped (SIGTERM, then wait) even on failure. Child
processes get a bytecode cache of their own (or the caller's PYTHONPYCACHEPREFIX) warmed before
timing, as an installed package would have. The small helpers are copied from ``bench/rollback.py``
on purpose, so each benchmark script stands alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from lastgood.project import Project
from lastgood.rows import Deployment, EventRecord

ENV = "staging"
LASTGOOD = Path(sys.executable).with_name("lastgood")
HEADINGS = (
    "(d) watch: detection to restore",
    "(e) watch: drift detection latency",
)
INTERVAL = 0.1  # both the watch cycle and the environment's round interval
FAILURES = 2
WAIT = 30.0  # seconds to wait for anything the watcher should do; far above the expected ~0.3 s
EDITED = "conf/app.yaml"

T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, or a quick smoke run."""

    restore_trials: int
    manual_runs: int
    drift_trials: int


FULL = Plan(30, 30, 50)
QUICK = Plan(1, 1, 1)
"""The smallest run that still prints every table and row: the smoke test's, to keep the
script from rotting; its figures mean little."""


# ---- helpers (as in bench/rollback.py) ---------------------------------------------------------


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest sample with ``fraction`` of samples at or below."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def print_table(heading: str, headers: list[str], rows: list[list[str]]) -> None:
    """A plain aligned table under ``== heading ==`` (stdout, so it can be piped into docs)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    print(f"\n== {heading} ==")
    for row in [headers, ["-" * width for width in widths], *rows]:
        first, *rest = (str(cell) for cell in row)
        cells = [first.ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)
        ]
        print("  ".join(cells).rstrip())
    sys.stdout.flush()


def child_environment(scratch: Path) -> dict[str, str]:
    """What the CLI runs get: a bytecode cache they may write, warm before any timing (the
    run's own unless the caller names one in ``PYTHONPYCACHEPREFIX``, as the smoke tests do);
    an author so git is not asked."""
    env = {**os.environ, "LASTGOOD_AUTHOR": "bench", "NO_COLOR": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(scratch / "pycache"))
    return env


def run(command: Sequence[str], *, cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")


def timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def spread(samples: Sequence[float]) -> list[str]:
    """p50, p95 and max in milliseconds: the columns of every row below."""
    return [ms(statistics.median(samples)), ms(percentile(samples, 0.95)), ms(max(samples))]


# ---- the workspace and the watcher -------------------------------------------------------------

# Healthy unless ../outage-<marker of the live version> exists, so one version can be broken
# while the version the watcher restores stays healthy (the check runs in the workspace root).
CONFIG = f"""
[env.{ENV}]
target = {{ type = "directory", path = "../live", keep = 10 }}
bake = "0s"
interval = "{INTERVAL}s"
failures = {FAILURES}
verify_rounds = 1
guard = "1h"
on_drift = "restore"

[[env.{ENV}.check]]
name = "no-outage"
type = "command"
run = 'test ! -e "../outage-$(cat "$LASTGOOD_PATH/marker")"'
timeout = "5s"

[watch]
interval = "{INTERVAL}s"
alert_every = "1h"
"""


class Bench:
    """One workspace with a live version, the CLI to change it and a ledger to read."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.root = scratch / "ws"
        self.live = scratch / "live" / "current"
        self.env = child_environment(scratch)
        self.root.mkdir(parents=True)
        (self.root / "lastgood.toml").write_text(textwrap.dedent(CONFIG))
        (self.root / "conf").mkdir()
        (self.root / EDITED).write_text("app: 1\n")
        self.deploy("initial")
        self.project = Project.open(self.root, actor="bench")

    def close(self) -> None:
        self.project.close()

    def lastgood(self, *args: str) -> None:
        run([str(LASTGOOD), *args], cwd=self.root, env=self.env)

    def deploy(self, marker: str) -> None:
        """Deploy a fresh version whose check depends on ``../outage-<marker>``."""
        (self.root / "marker").write_text(f"{marker}\n")
        self.lastgood("deploy", ENV, "-m", marker)

    def latest_rollback(self) -> Deployment | None:
        records = [d for d in self.project.store.deployments(ENV, limit=20) if d.is_rollback]
        return records[0] if records else None

    def latest_event(self, kind: str) -> EventRecord | None:
        found = self.project.store.events(ENV, kind=kind, limit=1)
        return found[0] if found else None


class Watching:
    """``lastgood watch --json`` as a real process; stopped with SIGTERM (then waited for)."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.log = bench.scratch / "watch.log"
        self.out = bench.scratch / "watch.jsonl"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Watching:
        with open(self.log, "wb") as log, open(self.out, "wb") as out:
            self.process = subprocess.Popen(
                [str(LASTGOOD), "watch", "--json"],
                cwd=self.bench.root,
                env=self.bench.env,
                stdout=out,
                stderr=log,
            )
        try:
            self.wait_for(lambda: "watch-started" in self.output(), "the watcher starting")
        except BaseException:  # __exit__ is not called when __enter__ fails: stop it here
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, predicate: Callable[[], T | None], what: str) -> T:
        """Poll the ledger (or the log) every 10 ms; the figures come from the ledger's own
        timestamps, so the polling period does not enter them."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.01)
        tail = "\n".join(self.output().splitlines()[-30:])
        raise SystemExit(f"{what} did not happen within {WAIT:.0f} s; the watcher said:\n{tail}")

    def cycles(self) -> list[dict[str, Any]]:
        """The ``--json`` cycle reports printed so far."""
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]


# ---- (d) detection to restore ------------------------------------------------------------------


@dataclass(frozen=True)
class Restored:
    """One automatic rollback and the moment its version's outage began."""

    record: Deployment
    outage_at: float

    @property
    def restore(self) -> float:
        assert self.record.activated_at is not None and self.record.trigger_at is not None
        return self.record.activated_at - self.record.trigger_at

    @property
    def verified(self) -> float | None:
        return self.record.time_to_verified

    @property
    def trip(self) -> float:
        assert self.record.trigger_at is not None
        return self.record.trigger_at - self.outage_at


def break_and_wait(bench: Bench, watching: Watching, number: int) -> Restored:
    """Deploy a fresh version, break it, wait for the watcher to restore the one before it.

    Then wait for ``health-recovered`` as well: after an automatic rollback the watcher holds
    back until a round passes, and the next trial's deploy must not race that round.
    """
    marker = f"bad-{number}"
    bench.deploy(marker)
    before = bench.latest_rollback()
    recovered = bench.latest_event("health-recovered")
    outage_at = time.time()
    (bench.scratch / f"outage-{marker}").touch()

    def restored() -> Deployment | None:
        record = bench.latest_rollback()
        if record is None or (before is not None and record.id == before.id):
            return None
        return record if record.finished_at is not None else None

    record = watching.wait_for(restored, f"the automatic rollback of {marker}")
    if record.kind != "auto-rollback":
        raise SystemExit(f"expected an auto-rollback, the ledger has a {record.kind}: {record}")
    watching.wait_for(
        lambda: (
            (e := bench.latest_event("health-recovered")) is not None
            and (recovered is None or e.id != recovered.id)
        ),
        "health-recovered after the rollback",
    )
    return Restored(record, outage_at)


def manual_rollback(bench: Bench, number: int) -> float:
    """Deploy a fresh healthy version, then time a person's ``lastgood rollback staging``."""
    bench.deploy(f"good-{number}")
    return timed(lambda: bench.lastgood("rollback", ENV, "-m", "by hand"))


def measure_restore(plan: Plan, bench: Bench, watching: Watching) -> None:
    first = break_and_wait(bench, watching, 0)  # the watcher's first rollback imports its code
    manual_rollback(bench, 0)  # warms the bytecode cache and the page cache
    trials: list[Restored] = []
    manual: list[float] = []
    for number in range(1, max(plan.restore_trials, plan.manual_runs) + 1):
        if number <= plan.restore_trials:  # interleaved, so machine noise hits both alike
            trials.append(break_and_wait(bench, watching, number))
        if number <= plan.manual_runs:
            manual.append(manual_rollback(bench, number))
    restores = [t.restore for t in trials]
    verified = [v for t in trials if (v := t.verified) is not None]
    trips = [t.trip for t in trials]
    baseline = statistics.median(manual)

    def row(name: str, samples: Sequence[float], compare: bool = True) -> list[str]:
        ratio = f"{statistics.median(samples) / baseline:.2f}x" if compare else "-"
        return [name, *spread(samples), str(len(samples)), ratio]

    policy = INTERVAL * FAILURES
    rows = [
        row("restore after detection (activated_at - trigger_at)", restores),
        row("restored and verified (verified_at - trigger_at)", verified),
        row("  first rollback of this watcher (cold imports)", [first.restore]),
        # policy, not speed: a person's noticing is not in the baseline, so no ratio
        row(f"outage to trip (policy: {INTERVAL}s x {FAILURES} = {ms(policy)} ms)", trips, False),
        row("manual: lastgood rollback staging, whole process", manual),
    ]
    unverified = len(trials) - len(verified)
    print_table(
        HEADINGS[0] + f" ({len(trials)} broken deploys; interval {INTERVAL}s, failures {FAILURES}, "
        "guard 1h; target <= 500 ms)",
        ["figure", "p50 ms", "p95 ms", "max ms", "runs", "vs manual"],
        rows,
    )
    worst = max(restores)
    print(
        f"ratio watch / manual = {statistics.median(restores) / baseline:.2f}x restore, "
        f"{statistics.median(verified) / baseline:.2f}x restored and verified (p50s); "
        f"slowest restore {ms(worst)} ms ({'within' if worst <= 0.5 else 'OVER'} the 0.5 s target)"
    )
    if unverified:
        print(f"note: {unverified} automatic rollback(s) did not verify")


# ---- (e) drift detection latency ---------------------------------------------------------------


def hand_edit(bench: Bench, number: int) -> float:
    """Replace a live file with new content, atomically (as many editors save), so the watcher
    never sees a half-written file and one edit is one drift. Returns the time of the edit."""
    draft = bench.scratch / "draft.yaml"
    draft.write_text(f"app: 1\nedited by hand: {number}\n")
    edited_at = time.time()
    os.replace(draft, bench.live / EDITED)
    return edited_at


def measure_drift(plan: Plan, bench: Bench, watching: Watching) -> None:
    phase = random.Random(7)  # edits land at every point of the cycle, the same ones every run
    original = (bench.live / EDITED).read_bytes()
    detected: list[float] = []
    repaired: list[float] = []
    unclean = 0
    for number in range(plan.drift_trials):
        time.sleep(phase.uniform(0, INTERVAL))
        seen = bench.latest_event("drift-detected")
        fixed = bench.latest_event("drift-repaired")
        edited_at = hand_edit(bench, number)
        event = watching.wait_for(
            lambda seen=seen: (
                (e := bench.latest_event("drift-detected")) is not None
                and (seen is None or e.id != seen.id)
                and e
            ),
            f"drift-detected for hand edit {number}",
        )
        repair = watching.wait_for(
            lambda fixed=fixed: (
                (e := bench.latest_event("drift-repaired")) is not None
                and (fixed is None or e.id != fixed.id)
                and e
            ),
            f"drift-repaired for hand edit {number}",
        )
        watching.wait_for(
            lambda: (bench.live / EDITED).read_bytes() == original, "the ledger's bytes back"
        )
        data = json.loads(event.data or "{}")
        if data.get("modified") != [EDITED] or data.get("extra") or data.get("missing"):
            unclean += 1
        detected.append(event.at - edited_at)
        repaired.append(repair.at - edited_at)

    def row(name: str, samples: Sequence[float]) -> list[str]:
        ratio = statistics.median(samples) / INTERVAL
        return [name, *spread(samples), str(len(samples)), f"{ratio:.2f}x"]

    print_table(
        HEADINGS[1] + f" ({len(detected)} hand edits; watch interval {INTERVAL}s, "
        'on_drift = "restore")',
        ["figure", "p50 ms", "p95 ms", "max ms", "runs", "vs interval"],
        [
            row("edit to drift-detected (event at - edit)", detected),
            row("edit to drift-repaired (restored from the store)", repaired),
            row("watch interval, configured", [INTERVAL]),
        ],
    )
    print(
        f"expected: about half an interval ({ms(INTERVAL / 2)} ms) plus the cycle's steps "
        "before the drift step (the health round)"
    )
    if unclean:
        print(f"note: {unclean} drift event(s) named other files than {EDITED}")


# ---- the watcher's own cycles ------------------------------------------------------------------


def describe_cycles(watching: Watching) -> None:
    """How long the watcher's cycles took, from its ``--json`` reports: what bounds both figures.

    A quiet cycle is one where health was ``ok`` and drift ``none`` (nothing to do but look)."""
    reports = watching.cycles()
    if len(reports) < 2:
        return
    quiet = [
        r["duration"]
        for r in reports
        if set(r["health"].values()) == {"ok"} and set(r["drift"].values()) == {"none"}
    ]
    starts = [r["started_at"] for r in reports]
    periods = [b - a for a, b in itertools.pairwise(starts)]
    slowest = max(reports, key=lambda r: r["duration"])
    print(
        f"\nwatch cycles: {len(reports)} in all; quiet cycle {ms(statistics.median(quiet))} ms "
        f"p50, {ms(percentile(quiet, 0.95))} ms p95 ({len(quiet)} quiet); start to start "
        f"{ms(statistics.median(periods))} ms p50, {ms(max(periods))} ms max "
        f"(interval {ms(INTERVAL)} ms)"
        if quiet
        else f"\nwatch cycles: {len(reports)}, none quiet"
    )
    print(
        f"slowest cycle: {ms(slowest['duration'])} ms (health {slowest['health']}, "
        f"drift {slowest['drift']})"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few trials, for CI smoke tests")
    parser.add_argument(
        "--part", choices=["d", "e"], action="append", help="measure only these parts"
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    mode = "quick" if args.quick else "full"
    python = sys.version.split()[0]
    print(f"lastgood watch benchmark ({mode}); python {python}, {os.cpu_count()} CPUs")
    sys.stdout.flush()
    started = time.perf_counter()
    parts = set(args.part or "de")
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-watch-") as folder:
        bench = Bench(Path(folder))
        try:
            with Watching(bench) as watching:
                if "d" in parts:
                    measure_restore(plan, bench, watching)
                if "e" in parts:
                    measure_drift(plan, bench, watching)
            describe_cycles(watching)
        finally:
            bench.close()
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
