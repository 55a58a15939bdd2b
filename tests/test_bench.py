"""Smoke tests for ``bench/rollback.py`` and ``bench/store_size.py``: the quick runs complete
and print every table (see :mod:`tests.bench_smoke`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.bench_smoke import run_quick

ROLLBACK = (
    "== (a) in-process restore",
    "== (b) whole-process rollback vs git baseline",
    "== (c) automatic rollback",
    "median ms",
    "p95 ms",
    "restore after detection",
)
STORE_SIZE = (
    "== (S1) store bytes vs git gc --aggressive",
    "== (S2) time per snapshot as history grows",
    "== (S3) commands at full history, whole process vs git",
    "bytes per version",
    "vs git",
    "ratio lastgood / git",
    "same after VACUUM",
    "git .git/objects after gc --aggressive",
    "v81-v100",  # the quick run's 100 versions, in windows of 20
    "flatness:",
    "lastgood snapshot -m",
    "lastgood log -n 20",
    "lastgood show v50 conf/f0001.yaml",
    "lastgood diff v50 v100",
    "lastgood rollback ENV --to REF",
    "git revert + rsync",
)


@pytest.mark.timeout(300)
def test_quick_benchmark_prints_its_tables(tmp_path: Path) -> None:
    shown = run_quick("rollback", "--quick", folder=tmp_path, expect=ROLLBACK, timeout=280)
    if shutil.which("git") and shutil.which("rsync"):
        assert "vs git" in shown and "ratio lastgood / git" in shown


@pytest.mark.timeout(150)
@pytest.mark.skipif(
    not (shutil.which("git") and shutil.which("rsync")), reason="the baseline needs git and rsync"
)
def test_quick_store_size_benchmark_prints_its_tables(tmp_path: Path) -> None:
    run_quick("store_size", "--quick", folder=tmp_path, expect=STORE_SIZE, timeout=140)
