"""Smoke test for ``bench/config_reads.py`` (P5): the quick run completes and prints its table.

No timing is asserted: figures depend on the machine. It needs ``wrk`` and Debian's nginx,
which ``.ci/run`` installs; elsewhere, without them, it skips and says which is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "config_reads.py"
ROWS = ("lastgood 304", "nginx 304", "lastgood 200", "nginx 200", "ratio lastgood / nginx, 304")


@pytest.mark.timeout(100)
def test_quick_config_reads_benchmark_prints_its_table(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("P5 benchmark needs wrk (apt-get install wrk); not installed here")
    if not Path("/usr/sbin/nginx").exists():
        pytest.skip("P5 benchmark needs Debian's nginx at /usr/sbin/nginx; not installed here")
    scratch = tmp_path / "tmp"  # the benchmark's temporary folder goes here, to see it removed
    scratch.mkdir()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "== (P5) live config reads per second" in done.stdout, done.stdout
    for row in ROWS:
        assert row in done.stdout, done.stdout
    assert not list(scratch.iterdir())  # workspace, store and nginx prefix all cleaned up
