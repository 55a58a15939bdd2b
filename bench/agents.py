"""How fast is a rollback confirmed on every host agent? Measured in one run on this machine.

A real ``lastgood serve`` publishes two served environments. On ``fleet``, N host agents
(``lastgood.agent.Agent``, each with its own ``directory`` target in a temporary folder) run as
threads in several worker processes (default 4 x 25); on ``alone``, one agent runs by itself:
the baseline, measured in the same run against the same server with the same CLI switches.
Each switch is a real ``lastgood rollback ENV --to vN --json`` in its own process, alternating
between two versions both retained on every host, so every switch is the agents' pointer switch.

For each switch:

- time to all confirmed = the server's fleet view (``GET /api/v1/envs/fleet/consumers``):
  ``time_to_all``, from the switch (the ledger's ``activated_at``) to the last agent's report of
  the version its target now serves, read back after the switch. Target: p99 <= 1 s with 100.
- time to all switched = max over agents of (the moment its target served the version, read
  back) - activated_at; and per agent, the same for every agent and switch.

Run from the repository root::

    .venv/bin/python bench/agents.py            # full: 100 agents, 10 rollbacks
    .venv/bin/python bench/agents.py --quick    # 6 agents, 2 rollbacks, for smoke tests

It prints figures and never asserts on them; everything it creates lives in one temporary folder
that is removed at the end, and every process it starts is stopped even on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from benchkit import (
    WorkerPool,
    child_environment,
    percentile,
    print_table,
    run,
    split,
    start_server,
    stop,
)

LASTGOOD = Path(sys.executable).with_name("lastgood")
HEADING = "rollback confirmed on every host agent"
ENVS = ("fleet", "alone")
WAIT = 60.0  # seconds any agent may take to follow before the run is declared broken
TARGET = 1.0


@dataclass(frozen=True)
class Plan:
    agents: int
    processes: int
    switches: int


FULL = Plan(100, 4, 10)
QUICK = Plan(6, 2, 2)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


# ---- the workspace and the server --------------------------------------------------------------


@dataclass(frozen=True)
class Switch:
    version: int
    activated_at: float


class Bench:
    """A workspace with two versions on each environment, a token and a real server."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.root = scratch / "ws"
        self.env = child_environment(scratch)
        self.root.mkdir(parents=True)
        config = "".join(f'[env.{e}]\ntarget = {{ type = "served" }}\nbake = "0s"\n' for e in ENVS)
        (self.root / "lastgood.toml").write_text(textwrap.dedent(config))
        for number in (1, 2):  # two versions to alternate between; v2 ends up live
            (self.root / "app.yaml").write_text(f"version: {number}\nlimits: {{rate: 10}}\n")
            for env in ENVS:
                self.lastgood("deploy", env, "-m", f"v{number}")
        self.token = self.lastgood("token", "create", "--name", "bench", "--role", "viewer")
        self.token = self.token.strip()
        self.live = dict.fromkeys(ENVS, 2)
        self.server: subprocess.Popen[bytes] | None = None
        self.url = ""

    def lastgood(self, *args: str) -> str:
        return run([str(LASTGOOD), *args], cwd=self.root, env=self.env)

    def serve(self) -> None:
        self.server, self.url = start_server(
            LASTGOOD, "--poll", "0.02", cwd=self.root, env=self.env, log=self.scratch / "serve.log"
        )

    def close(self) -> None:
        if self.server is not None:
            stop(self.server, grace=1.0)

    def switch(self, env: str) -> Switch:
        """Roll ``env`` back to the other version with the CLI, as a person would."""
        to = 1 if self.live[env] == 2 else 2
        out = self.lastgood("rollback", env, "--to", str(to), "-m", "bench", "--json")
        self.live[env] = to
        return Switch(to, float(json.loads(out)["deployment"]["activated_at"]))

    def confirmed(self, env: str) -> float:
        """The server's time to all, once every agent of ``env`` reported the live version."""
        headers = {"Authorization": f"Bearer {self.token}"}
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            answer = httpx.get(f"{self.url}/api/v1/envs/{env}/consumers", headers=headers)
            fleet = answer.json()["fleet"]
            if fleet["complete"] and fleet["time_to_all"] is not None:
                return float(fleet["time_to_all"])
            time.sleep(0.01)
        raise SystemExit(f"the fleet of {env} was not confirmed within {WAIT:g} s: {fleet}")


# ---- agents in worker processes ----------------------------------------------------------------


class Workers(WorkerPool):
    """``processes`` copies of this script in ``--worker`` mode, ``agents`` in all."""

    def __init__(self, bench: Bench, env: str, agents: int, processes: int) -> None:
        counts = split(agents, processes)
        commands = [[sys.executable, __file__, "--worker", bench.url, env, str(count),
                     str(bench.scratch / "hosts" / f"{env}-{number}")]
                    for number, count in enumerate(counts)]  # fmt: skip
        logs = [bench.scratch / f"worker-{env}-{number}.log" for number in range(len(counts))]
        super().__init__(commands, logs, {**bench.env, "LASTGOOD_TOKEN": bench.token})

    def switched(self, version: int) -> list[float]:
        """Every agent's moment its target served ``version`` (waits until all do)."""
        return self.times(version, "switched", "{missing} agents did not put v{version} live")


def worker(url: str, env: str, count: int, hosts: Path) -> None:
    """Run ``count`` agents as threads, each on its own directory target under ``hosts``, and
    answer ``expect V`` with the moment each one's target served vV."""
    from lastgood.agent import Agent, plan_agent
    from lastgood.agent.hostspace import AgentRequest
    from lastgood.client import Snapshot

    switched: dict[int, dict[int, float]] = {}  # agent -> version -> when its target served it
    changed = threading.Condition()

    class Timed(Agent):
        number = 0

        def _place(self, snapshot: Snapshot) -> str:
            serving = super()._place(snapshot)
            with changed:
                switched.setdefault(self.number, {})[snapshot.version] = time.time()
                changed.notify_all()
            return serving

    agents: list[Timed] = []
    for number in range(count):
        host = hosts / f"host-{number}"
        request = AgentRequest(target=f"directory:{host / 'live'}", state=host / "state",
                               env=env, servers=(url,), name=f"{hosts.name}-{number}",
                               check_every=3600.0)  # fmt: skip
        agent = Timed(plan_agent(request), token=os.environ["LASTGOOD_TOKEN"], retry_max=0.5)
        agent.number = number
        agents.append(agent)
    threads = [threading.Thread(target=a.run, daemon=True) for a in agents]
    for thread in threads:
        thread.start()
    print(f"ready {count}", flush=True)
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "quit":
            break
        version = int(rest[0])
        with changed:
            changed.wait_for(lambda v=version: all(v in switched.get(n, {}) for n in range(count)),
                             WAIT)  # fmt: skip
            times = [switched.get(n, {}).pop(version, None) for n in range(count)]
        found = [t for t in times if t is not None]
        print(json.dumps({"switched": found, "missing": count - len(found)}), flush=True)
    for agent in agents:
        agent.stop()
    for thread in threads:
        thread.join(10)


# ---- the measurement ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    latencies: list[float]  # per agent: its target served the version - activated_at
    confirmed: float  # the server's fleet view: time to the last agent's report

    @property
    def switched(self) -> float:
        return max(self.latencies)


def measure(bench: Bench, env: str, agents: int, processes: int, switches: int) -> list[Trial]:
    """Start the agents of ``env``, wait until they serve its live version, time switches."""
    workers = Workers(bench, env, agents, processes)
    try:
        workers.switched(bench.live[env])  # every host holds v2 live
        for _ in range(2):  # and now v1 too: every timed switch is a pointer switch
            workers.switched(bench.switch(env).version)
        trials = []
        for _ in range(switches):
            switch = bench.switch(env)
            times = workers.switched(switch.version)
            confirmed = bench.confirmed(env)
            trials.append(Trial([max(0.0, t - switch.activated_at) for t in times], confirmed))
        return trials
    finally:
        workers.close()


def report(plan: Plan, fleet: list[Trial], alone: list[Trial]) -> None:
    confirmed = [t.confirmed for t in fleet]
    baseline = statistics.median([t.confirmed for t in alone])

    def row(name: str, samples: Sequence[float]) -> list[str]:
        versus = f"{statistics.median(samples) / baseline:.1f}x" if baseline else "-"
        return [name, ms(statistics.median(samples)), ms(percentile(samples, 0.99)),
                ms(max(samples)), str(len(samples)), versus]  # fmt: skip

    rows = [
        row(f"time to all {plan.agents} agents confirmed (fleet view)", confirmed),
        row(f"time to all {plan.agents} agents switched (read back)", [t.switched for t in fleet]),
        row(
            "per-agent switch latency (every agent, every switch)",
            [x for t in fleet for x in t.latencies],
        ),
        row("baseline: one agent alone, confirmed (fleet view)", [t.confirmed for t in alone]),
    ]
    print_table(
        f"{HEADING} ({plan.agents} agents in {plan.processes} processes, {plan.switches} "
        f"rollbacks; target p99 <= {ms(TARGET)} ms)",
        ["figure", "p50 ms", "p99 ms", "max ms", "samples", "vs one"],
        rows,
    )
    worst = percentile(confirmed, 0.99)
    print(
        f"p99 time to all confirmed = {ms(worst)} ms ({'within' if worst <= TARGET else 'OVER'} "
        f"the {ms(TARGET)} ms target); p50 {statistics.median(confirmed) / baseline:.1f}x one agent"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 agents, 2 rollbacks")
    parser.add_argument("--agents", type=int, help="how many host agents (default 100)")
    parser.add_argument("--processes", type=int, help="worker processes (default 4)")
    parser.add_argument("--switches", type=int, help="rollbacks to time (default 10)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        url, env, count, hosts = args.worker
        worker(url, env, int(count), Path(hosts))
        return
    base = QUICK if args.quick else FULL
    plan = Plan(args.agents or base.agents, args.processes or base.processes,
                args.switches or base.switches)  # fmt: skip
    mode = "quick" if args.quick else "full"
    print(f"lastgood host agent benchmark ({mode}); python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    sys.stdout.flush()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-agents-") as folder:
        bench = Bench(Path(folder))
        try:
            bench.serve()
            fleet = measure(bench, "fleet", plan.agents, plan.processes, plan.switches)
            alone = measure(bench, "alone", 1, 1, plan.switches)
        finally:
            bench.close()
    report(plan, fleet, alone)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
