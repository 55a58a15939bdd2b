"""Smoke test for ``bench/consumers.py`` (P4): the smallest run completes and prints its table.

It drives a real ``lastgood serve``, the rollback CLI's ``--json`` and worker processes full of
SDK consumers, so a change to any of them that the benchmark relies on shows up here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_smoke import run_quick

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
    run_quick("consumers", "--quick", "--workers", "2", folder=tmp_path, expect=EXPECTED,
              timeout=140)  # fmt: skip


@pytest.mark.timeout(150)
def test_quick_light_consumers_benchmark_prints_its_table(tmp_path: Path) -> None:
    light = tuple(line.replace("(SDK applied)", "(light consumers, verified)") for line in EXPECTED)
    run_quick("consumers", "--quick", "--light", folder=tmp_path, expect=light, timeout=140)
