"""Smoke test for ``bench/consumers.py`` (P4): the smallest run completes and prints its table.

No timing is asserted: figures depend on the machine. This only keeps the script from rotting
(it drives a real ``lastgood serve``, the rollback CLI's ``--json`` and worker processes full of
SDK consumers, so a change to any of them that the benchmark relies on shows up here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "consumers.py"
EXPECTED = (
    "== (P4) rollback to every SDK consumer (20 consumers in 2 processes, 2 rollbacks",
    "p50 ms",
    "p99 ms",
    "vs one",
    "time to all 20 consumers (SDK applied)",
    "per-consumer latency (every consumer, every switch)",
    "time to all, server fleet view (last report)",
    "baseline: one consumer alone, time to see",
    "p99 time to all = ",
    "CPU per rollback (from /proc): server ",
)


@pytest.mark.timeout(150)
def test_quick_consumers_benchmark_prints_its_table(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"  # the benchmark's temporary folder goes here, to see it removed
    scratch.mkdir()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=140,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    for text in EXPECTED:
        assert text in done.stdout, done.stdout
    assert not list(scratch.iterdir())  # workspace, store, server log and workers cleaned up
