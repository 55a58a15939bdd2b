"""Smoke test for ``bench/watch.py``: the quick run completes and prints both tables.

It drives a real ``lastgood watch`` process, so a change to the watcher's events, ledger records
or ``--json`` reports that the benchmark relies on shows up here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_smoke import run_quick

EXPECTED = (
    "== (d) watch: detection to restore",
    "== (e) watch: drift detection latency",
    "p50 ms",
    "p95 ms",
    "max ms",
    "vs manual",
    "vs interval",
    "restore after detection (activated_at - trigger_at)",
    "manual: lastgood rollback staging, whole process",
    "edit to drift-detected (event at - edit)",
    "ratio watch / manual",
    "watch cycles:",
)


@pytest.mark.timeout(100)
def test_quick_watch_benchmark_prints_its_tables(tmp_path: Path) -> None:
    run_quick("watch", "--quick", folder=tmp_path, expect=EXPECTED, timeout=90)
