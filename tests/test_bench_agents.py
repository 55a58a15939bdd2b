"""Smoke test for ``bench/agents.py``: the smallest run completes and prints its table.

No timing is asserted: figures depend on the machine. This only keeps the script from rotting
(it drives a real ``lastgood serve``, the rollback CLI's ``--json`` and worker processes full of
host agents, so a change to any of them that the benchmark relies on shows up here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "agents.py"
EXPECTED = (
    "== rollback confirmed on every host agent (2 agents in 2 processes, 1 rollbacks",
    "p50 ms",
    "p99 ms",
    "vs one",
    "time to all 2 agents confirmed (fleet view)",
    "time to all 2 agents switched (read back)",
    "baseline: one agent alone, confirmed (fleet view)",
    "p99 time to all confirmed = ",
)


@pytest.mark.timeout(150)
def test_quick_agents_benchmark_prints_its_table(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"  # the benchmark's temporary folder goes here, to see it removed
    scratch.mkdir()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--agents", "2", "--switches", "1"],
        capture_output=True,
        text=True,
        timeout=140,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    for text in EXPECTED:
        assert text in done.stdout, done.stdout
    assert not list(scratch.iterdir())  # workspace, store, server log and hosts cleaned up
