"""Smoke test for ``bench/import_git.py``: the quick run completes and prints its table (the
script also checks that every commit that touched the workspace became a version).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.bench_smoke import run_quick

EXPECTED = (
    "== (I1, I2) import-git vs git log -p of the same history",
    "lastgood import-git (54 commits to import)",
    "lastgood import-git again (nothing new)",
    "git log -p -- config/ (60 commits)",
    "ms per commit",
)


@pytest.mark.timeout(150)
@pytest.mark.skipif(shutil.which("git") is None, reason="the benchmark needs git")
def test_quick_import_benchmark_prints_its_table(tmp_path: Path) -> None:
    run_quick("import_git", "--quick", folder=tmp_path, expect=EXPECTED, timeout=140)
