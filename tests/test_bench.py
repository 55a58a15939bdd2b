"""Smoke tests for ``bench/rollback.py`` and ``bench/store_size.py``: the quick runs complete
and print every table.

No timing or size is asserted: figures depend on the machine (and the store is being rewritten).
This only keeps the scripts from rotting.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPT = BENCH / "rollback.py"
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


STORE_SIZE_HEADINGS = (
    "== (S1) store bytes vs git gc --aggressive",
    "== (S2) time per snapshot as history grows",
    "== (S3) commands at full history, whole process vs git",
)
STORE_SIZE_COLUMNS = (
    "bytes per version",
    "vs git",
    "ratio lastgood / git",
    "same after VACUUM",
    "git .git/objects after gc --aggressive",
    "v301-v400",
    "flatness:",
    "lastgood snapshot -m",
    "lastgood log -n 20",
    "lastgood show v500 conf/f0001.yaml",
    "lastgood diff v500 v1000",
    "lastgood rollback ENV --to REF",
    "git revert + rsync",
)


@pytest.mark.timeout(150)
@pytest.mark.skipif(
    not (shutil.which("git") and shutil.which("rsync")), reason="the baseline needs git and rsync"
)
def test_quick_store_size_benchmark_prints_its_tables(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"  # the benchmark's temporary folder goes here, to see it removed
    scratch.mkdir()
    done = subprocess.run(
        [sys.executable, str(BENCH / "store_size.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=140,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    for text in STORE_SIZE_HEADINGS + STORE_SIZE_COLUMNS:
        assert text in done.stdout, done.stdout
    assert list(scratch.iterdir()) == []
