"""Smoke test for ``bench/import_git.py``: the quick run completes and prints its table.

No timing is asserted: figures depend on the machine. This only keeps the script from rotting
(it also checks that every commit that touched the workspace became a version).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "import_git.py"


@pytest.mark.timeout(150)
@pytest.mark.skipif(shutil.which("git") is None, reason="the benchmark needs git")
def test_quick_import_benchmark_prints_its_table(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"  # the benchmark's temporary folder goes here, to see it removed
    scratch.mkdir()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=140,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    for text in (
        "== (I1, I2) import-git vs git log -p of the same history",
        "lastgood import-git (54 commits to import)",
        "lastgood import-git again (nothing new)",
        "git log -p -- config/ (60 commits)",
        "ms per commit",
    ):
        assert text in done.stdout, done.stdout
    assert list(scratch.iterdir()) == []
