"""Smoke test for ``bench/agents.py``: the smallest run completes and prints its table.

It drives a real ``lastgood serve``, the rollback CLI's ``--json`` and worker processes full of
host agents, so a change to any of them that the benchmark relies on shows up here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_smoke import run_quick

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
    run_quick("agents", "--quick", "--agents", "2", "--switches", "1", folder=tmp_path,
              expect=EXPECTED, timeout=140)  # fmt: skip
