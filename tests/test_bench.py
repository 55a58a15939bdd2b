"""Smoke test for ``bench/rollback.py``: the quick run completes and prints every table.

No timing is asserted: figures depend on the machine. This only keeps the script from rotting.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "rollback.py"
HEADINGS = (
    "== (a) in-process restore",
    "== (b) whole-process rollback vs git baseline",
    "== (c) automatic rollback",
)


@pytest.mark.timeout(300)
def test_quick_benchmark_prints_its_tables(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    for heading in HEADINGS:
        assert heading in done.stdout, done.stdout
    for column in ("median ms", "p95 ms", "restore after detection"):
        assert column in done.stdout
    if shutil.which("git") and shutil.which("rsync"):
        assert "vs git" in done.stdout and "ratio lastgood / git" in done.stdout
