"""Smoke test for ``bench/config_reads.py`` (P5): the quick run completes and prints its table.

It needs ``wrk`` and Debian's nginx, which ``.ci/run`` installs; elsewhere, without them, it
skips and says which is missing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.bench_smoke import run_quick

EXPECTED = (
    "== (P5) live config reads per second",
    "lastgood 304",
    "nginx 304",
    "lastgood 200",
    "nginx 200",
    "ratio lastgood / nginx, 304",
)


@pytest.mark.timeout(100)
def test_quick_config_reads_benchmark_prints_its_table(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("P5 benchmark needs wrk (apt-get install wrk); not installed here")
    if not Path("/usr/sbin/nginx").exists():
        pytest.skip("P5 benchmark needs Debian's nginx at /usr/sbin/nginx; not installed here")
    run_quick("config_reads", "--quick", "--workers", "2", folder=tmp_path, expect=EXPECTED,
              timeout=90)  # fmt: skip
