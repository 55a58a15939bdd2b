"""Smoke test for ``bench/watch.py``: the quick run completes and prints both tables.

No timing is asserted: figures depend on the machine. This only keeps the script from rotting
(it drives a real ``lastgood watch`` process, so a change to the watcher's events, ledger
records or ``--json`` reports that the benchmark relies on shows up here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "watch.py"
HEADINGS = (
    "== (d) watch: detection to restore",
    "== (e) watch: drift detection latency",
)
COLUMNS = (
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
    scratch = tmp_path / "tmp"  # the benchmark's temporary folder goes here, to see it removed
    scratch.mkdir()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    for heading in HEADINGS:
        assert heading in done.stdout, done.stdout
    for column in COLUMNS:
        assert column in done.stdout, done.stdout
    assert not list(scratch.iterdir())  # workspace, store and watcher output all cleaned up
