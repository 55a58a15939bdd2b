"""Smoke test for ``bench/read_path.py``: the quick run completes and prints its table (which
also proves both shapes of read are answered ``304`` by the fast path, whole and in pieces)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_smoke import run_quick

EXPECTED = (
    "== server Python per live config read, no socket",
    "wrk's, whole",
    "wrk's, in two pieces",
    "the SDK's, whole",
    "the SDK's, in two pieces",
)


@pytest.mark.timeout(100)
def test_quick_read_path_benchmark_prints_its_table(tmp_path: Path) -> None:
    run_quick("read_path", "--quick", folder=tmp_path, expect=EXPECTED, timeout=90)
