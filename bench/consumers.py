"""How fast does a rollback reach every application? (P4) Measured in one run on this machine.

A real ``lastgood serve`` publishes a served environment; N SDK consumers
(``lastgood.client.LiveConfig``, long-polling) run in several processes (default 4 x 250, each
consumer its own thread, so one process's GIL does not decide the figure). Each switch is a real
``lastgood rollback staging --to v1|v2 --json`` in its own process, alternating between two
versions; the server sees the switch within its ``--poll`` (0.02 s) and wakes every long-poll.

For each switch:

- time to all = max over consumers of (the moment the consumer applied the new version, its
  ``Snapshot.received_at``) - (the switch: the ledger record's ``activated_at`` from the CLI's
  ``--json``). Target: p99 <= 250 ms with 1,000 consumers.
- per-consumer latency = each consumer's applied-at - activated_at (p50 over every consumer and
  switch).
- the server's own fleet view (``GET /api/v1/envs/staging/consumers``): ``time_to_all`` from the
  switch to the last consumer's report, which rides on its next long-poll request.

Baseline, measured in the same run against the same server and the same CLI switches: one
consumer alone (its time to see the switch). That is the floor of the path (CLI commit, server
poll, one HTTP answer, hash check); the ratio says what fanning out to N consumers adds.

Run from the repository root::

    .venv/bin/python bench/consumers.py            # full: 1,000 consumers, 10 rollbacks
    .venv/bin/python bench/consumers.py --quick    # 20 consumers, 2 rollbacks, for smoke tests
    .venv/bin/python bench/consumers.py --consumers 10000 --processes 4 --light   # see below

``--light`` runs the consumers of ``bench/light_consumers.py`` instead of LiveConfigs: the same
requests, reports and payload checks, hundreds per process on one selector loop, so that the
figure is the server reaching the fleet rather than the consumers' own CPU on the same cores.

It prints figures and never asserts on them; everything it creates lives in one temporary folder
that is removed at the end, and every process it starts is stopped even on failure. The helpers
are copied from ``bench/rollback.py`` on purpose, so each benchmark script stands alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from benchkit import WorkerPool, split, start_server, stop

ENV = "staging"
LASTGOOD = Path(sys.executable).with_name("lastgood")
HEADING = "(P4) rollback to every SDK consumer"
WAIT = 60.0  # seconds any consumer may take to follow before the run is declared broken
TARGET = 0.250  # up to 1,000 consumers
TARGET_MANY = 0.300  # beyond: the target for 10,000 (issue 16)


def target_for(consumers: int) -> float:
    return TARGET if consumers <= 1000 else TARGET_MANY


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, or a quick smoke run."""

    consumers: int
    processes: int
    switches: int
    baseline_switches: int
    kind: str = "SDK applied"


FULL = Plan(1000, 4, 10, 10)
QUICK = Plan(20, 2, 2, 2)


# ---- helpers (as in bench/rollback.py) ---------------------------------------------------------


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest sample with ``fraction`` of samples at or below."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def times(value: float, baseline: float) -> str:
    """``value`` as a multiple of ``baseline``; a lone consumer can see a switch before the
    ledger's ``activated_at`` is taken (the link moves first), so the baseline may be 0."""
    return f"{value / baseline:.1f}x" if baseline > 0 else "n/a (baseline 0 ms)"


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
    """What the child processes get: a private, warm bytecode cache; an author for git."""
    env = {**os.environ, "LASTGOOD_AUTHOR": "bench", "NO_COLOR": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    return env


def run(command: Sequence[str], *, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


# ---- the workspace and the server --------------------------------------------------------------

CONFIG = f"""
[env.{ENV}]
target = {{ type = "served" }}
bake = "0s"
"""


@dataclass(frozen=True)
class Switch:
    """One rollback: the version it made live, and when (ledger and wall clock)."""

    version: int
    activated_at: float
    cli_seconds: float


class Bench:
    """A workspace with two versions, a viewer token and a real ``lastgood serve``."""

    def __init__(self, scratch: Path, workers: int = 1, light: bool = False) -> None:
        self.scratch = scratch
        self.workers = workers
        self.light = light  # consumers of bench/light_consumers.py instead of LiveConfigs
        self.root = scratch / "ws"
        self.env = child_environment(scratch)
        self.root.mkdir(parents=True)
        (self.root / "lastgood.toml").write_text(textwrap.dedent(CONFIG))
        for number in (1, 2):  # two versions to alternate between; v2 ends up live
            (self.root / "app.yaml").write_text(f"version: {number}\nlimits: {{rate: 10}}\n")
            self.lastgood("deploy", ENV, "-m", f"v{number}")
        self.token = self.lastgood("token", "create", "--name", "bench", "--role", "viewer")
        self.token = self.token.strip()
        self.live = 2
        self.server: subprocess.Popen[bytes] | None = None
        self.url = ""

    def lastgood(self, *args: str) -> str:
        return run([str(LASTGOOD), *args], cwd=self.root, env=self.env)

    def serve(self) -> None:
        self.server, self.url = start_server(
            LASTGOOD, "--workers", str(self.workers), cwd=self.root, env=self.env,
            log=self.scratch / "serve.log",
        )  # fmt: skip

    def close(self) -> None:
        if self.server is not None:
            # it would wait for the long-polls it still holds (up to 30 s): no need here
            stop(self.server, grace=1.0)

    def switch(self) -> Switch:
        """Roll back to the other version with the CLI, as a person would."""
        to = 1 if self.live == 2 else 2
        started = time.perf_counter()
        out = self.lastgood("rollback", ENV, "--to", str(to), "-m", "bench", "--json")
        took = time.perf_counter() - started
        record = json.loads(out)["deployment"]
        self.live = to
        return Switch(to, float(record["activated_at"]), took)

    def fleet(self) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        answer = httpx.get(f"{self.url}/api/v1/envs/{ENV}/consumers", headers=headers, timeout=30)
        answer.raise_for_status()
        return dict(answer.json()["fleet"])


# ---- consumers in worker processes -------------------------------------------------------------


class Workers(WorkerPool):
    """``processes`` copies of this script in ``--worker`` mode, ``consumers`` in all."""

    def __init__(self, bench: Bench, consumers: int, processes: int, tag: str) -> None:
        mode = "--light-worker" if bench.light else "--worker"
        counts = split(consumers, processes)
        commands = [[sys.executable, __file__, mode, bench.url, str(count), f"{tag}-{number}"]
                    for number, count in enumerate(counts)]  # fmt: skip
        logs = [bench.scratch / f"worker-{tag}-{number}.log" for number in range(len(counts))]
        super().__init__(commands, logs, {**bench.env, "LASTGOOD_TOKEN": bench.token})

    def applied(self, version: int) -> list[float]:
        """Every consumer's applied-at for ``version`` (waits until all have it)."""
        return self.times(version, "applied", "{missing} consumers did not follow v{version}")


def worker(url: str, count: int, tag: str) -> None:
    """Run ``count`` LiveConfigs (cache off: the fleet is measured, not one disk) and answer
    ``expect V`` with every consumer's applied-at for v``V``."""
    import logging

    from lastgood.client import LiveConfig

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    configs = [
        LiveConfig(url, ENV, cache=False, name=f"{tag}-{i}", timeout=60) for i in range(count)
    ]
    print(f"ready {count}", flush=True)
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "quit":
            break
        applied = applied_at(configs, int(rest[0]))
        print(json.dumps({"applied": applied, "missing": count - len(applied)}), flush=True)
    for config in configs:
        config.close()


def applied_at(configs: Sequence[Any], version: int) -> list[float]:
    """When each LiveConfig applied ``version`` (its ``received_at``), once all have it or
    :data:`WAIT` has passed. The main thread looks every 5 ms, at the first LiveConfig not
    seen with the version yet, instead of waiting on each in turn: such a wait wakes it at
    each one's change, in the order the server answers, and takes the interpreter lock from
    the hub applying the rest (hundreds of hand-overs in a process of 1,000 at the first
    rollback, about 150 ms of the consumers' CPU on the two cores the server shares); going
    over all of them every 5 ms cost about as much. That is the benchmark's cost, not the
    SDK's: applying does not wait for it, and an application reads ``get()`` without waiting."""
    deadline, checked = time.monotonic() + WAIT, 0
    while checked < len(configs) and time.monotonic() < deadline:
        time.sleep(0.005)
        while checked < len(configs) and configs[checked].version == version:
            checked += 1  # each looked at until it has the version, then never again
    snapshots = [config.snapshot for config in configs]
    return [snapshot.received_at for snapshot in snapshots
            if snapshot is not None and snapshot.version == version]  # fmt: skip


# ---- the measurement ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One switch as the consumers saw it."""

    switch: Switch
    latencies: list[float]  # per consumer: applied-at - activated_at
    server_time_to_all: float | None
    stolen: float | None = None  # CPU seconds the hypervisor took from this machine meanwhile

    @property
    def time_to_all(self) -> float:
        return max(self.latencies)


def stolen_seconds() -> float | None:
    """CPU time the hypervisor has taken from this machine's CPUs so far (``steal`` in
    /proc/stat), summed over them; None where there is no such count. On a virtual machine a
    rollback that lost CPU this way is slower for reasons the code does not control."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process so far, from /proc (None where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Work:
    """CPU seconds the server and the consumer processes spent over a run of switches."""

    server: float | None = None
    consumers: float | None = None
    switches: int = 0


def server_pids(pid: int) -> list[int]:
    """The server process and its workers (``serve --workers``), from /proc."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *(int(child) for child in children)]


def raise_open_files() -> None:
    """Lift this process's (and so its children's) limit of open files to the hard limit:
    10,000 consumers hold 10,000 connections, and the server one per consumer."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            print(f"cannot raise the open files limit from {soft}: {exc}", file=sys.stderr)


def _cpu_of(pids: Sequence[int]) -> float | None:
    each = [cpu_seconds(pid) for pid in pids]
    return None if None in each else sum(t for t in each if t is not None)


def measure(
    bench: Bench, consumers: int, processes: int, switches: int, tag: str, work: Work
) -> list[Trial]:
    """Start the consumers, then time ``switches`` rollbacks; the server's fleet view is read
    too (it is complete only when these are the only consumers heard from in 90 s). Adds the
    CPU time the server and the consumers spent over the switches to ``work``."""
    workers = Workers(bench, consumers, processes, tag)
    assert bench.server is not None
    pids = server_pids(bench.server.pid), [process.pid for process in workers.processes]
    try:
        workers.applied(bench.live)  # everyone is on the live version before the first switch
        before = [_cpu_of(group) for group in pids]
        trials = []
        for _ in range(switches):
            stolen = stolen_seconds()
            switch = bench.switch()
            applied = workers.applied(switch.version)
            now_stolen = stolen_seconds()
            took = None if stolen is None or now_stolen is None else now_stolen - stolen
            fleet = bench.fleet()
            deadline = time.monotonic() + (5 if tag == "fleet" else 0)  # reports: let them land
            while not fleet.get("complete") and time.monotonic() < deadline:
                time.sleep(0.1)  # each read of 10,000 consumers costs the server tens of ms
                fleet = bench.fleet()
            latencies = [max(0.0, t - switch.activated_at) for t in applied]
            trials.append(Trial(switch, latencies, fleet.get("time_to_all"), took))
        after = [_cpu_of(group) for group in pids]
        pairs = zip(after, before, strict=True)
        spent = [None if a is None or b is None else a - b for a, b in pairs]
        work.server, work.consumers, work.switches = spent[0], spent[1], switches
        return trials
    finally:
        workers.close()


def report(plan: Plan, fleet: list[Trial], alone: list[Trial], work: Work) -> None:
    to_all = [t.time_to_all for t in fleet]
    each = [latency for t in fleet for latency in t.latencies]
    server = [t.server_time_to_all for t in fleet if t.server_time_to_all is not None]
    single = [t.time_to_all for t in alone]
    baseline = statistics.median(single)
    cli = [t.switch.cli_seconds for t in fleet]

    def row(name: str, samples: Sequence[float], ratio: bool = True) -> list[str]:
        versus = times(statistics.median(samples), baseline) if ratio else "-"
        return [name, ms(statistics.median(samples)), ms(percentile(samples, 0.99)),
                ms(max(samples)), str(len(samples)), versus]  # fmt: skip

    rows = [
        row(f"time to all {plan.consumers} consumers ({plan.kind})", to_all),
        row("per-consumer latency (every consumer, every switch)", each),
        row("time to all, server fleet view (last report)", server),
        row("baseline: one consumer alone, time to see", single),
        row("the rollback CLI process (information)", cli, ratio=False),
    ]
    print_table(
        f"{HEADING} ({plan.consumers} consumers in {plan.processes} processes, "
        f"{plan.switches} rollbacks; target p99 <= {ms(target_for(plan.consumers))} ms)",
        ["figure", "p50 ms", "p99 ms", "max ms", "samples", "vs one"],
        rows,
    )
    worst, goal = percentile(to_all, 0.99), target_for(plan.consumers)
    print(
        f"p99 time to all = {ms(worst)} ms ({'within' if worst <= goal else 'OVER'} the "
        f"{ms(goal)} ms target); p50 {times(statistics.median(to_all), baseline)} one consumer"
    )
    print("each rollback, time to all (ms, in order): " + ", ".join(ms(t) for t in to_all))
    stolen = [t.stolen for t in fleet]
    if None not in stolen:
        print(
            "CPU the hypervisor took meanwhile (ms over all CPUs, in 10 ms steps, from the "
            "rollback command's start to the last consumer's answer to the benchmark): "
            + ", ".join(ms(s) for s in stolen if s is not None)
        )
    if work.server is not None and work.consumers is not None and work.switches:
        print(
            f"CPU per rollback (from /proc): server {ms(work.server / work.switches)} ms "
            "(with the benchmark's reads of the fleet view), consumer processes "
            f"{ms(work.consumers / work.switches)} ms, on {os.cpu_count()} CPUs"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 consumers, 2 rollbacks")
    parser.add_argument("--consumers", type=int, help="how many SDK consumers (default 1000)")
    parser.add_argument("--processes", type=int, help="worker processes (default 4)")
    parser.add_argument("--switches", type=int, help="rollbacks to time (default 10)")
    parser.add_argument("--workers", type=int, default=1, help="lastgood serve --workers")
    parser.add_argument("--light", action="store_true",
                        help="consumers of bench/light_consumers.py: one selector loop per "
                        "process instead of one LiveConfig thread each")  # fmt: skip
    for mode in ("--worker", "--light-worker"):
        parser.add_argument(mode, nargs=3, metavar=("URL", "COUNT", "TAG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    raise_open_files()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.worker[2])
        return
    if args.light_worker:
        import light_consumers

        light_consumers.run(args.light_worker[0], int(args.light_worker[1]), args.light_worker[2])
        return
    base = QUICK if args.quick else FULL
    plan = Plan(
        args.consumers or base.consumers,
        args.processes or base.processes,
        args.switches or base.switches,
        args.switches or base.baseline_switches,
        "light consumers, verified" if args.light else "SDK applied",
    )
    mode = "quick" if args.quick else "full"
    python = sys.version.split()[0]
    print(f"lastgood SDK fleet benchmark ({mode}); python {python}, {os.cpu_count()} CPUs, "
          f"lastgood serve --workers {args.workers}")  # fmt: skip
    sys.stdout.flush()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-consumers-") as folder:
        bench = Bench(Path(folder), args.workers, args.light)
        try:
            bench.serve()
            # the fleet first: consumers stay "live" in the fleet view 90 s after they stop
            work = Work()
            fleet = measure(bench, plan.consumers, plan.processes, plan.switches, "fleet", work)
            alone = measure(bench, 1, 1, plan.baseline_switches, "alone", Work())
        finally:
            bench.close()
    report(plan, fleet, alone, work)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
