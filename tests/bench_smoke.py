"""Running a benchmark script's quick mode in a smoke test.

The smoke tests assert no timing (figures depend on the machine): they keep each script from
rotting. Each runs ``bench/NAME.py`` with its arguments in a scratch folder that is its
``TMPDIR``, and checks that it exits 0, prints every expected heading and label, and removes
everything it made there (workspaces, stores, servers' logs, nginx prefixes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from tests.conftest import PYCACHE

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run_quick(name: str, *args: str, folder: Path, expect: Iterable[str], timeout: float) -> str:
    """Run ``bench/NAME.py ARGS`` in ``folder``; its output, once every check above passed."""
    scratch = folder / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    # the suite's bytecode cache, warm, for the script's child processes too: with a cache of
    # their own, each quick run compiled lastgood and its dependencies again (~2 s of CPU)
    env.setdefault("PYTHONPYCACHEPREFIX", str(PYCACHE))
    done = subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=folder,
        env=env,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    for text in expect:
        assert text in done.stdout, f"{text!r} is missing from:\n{done.stdout}"
    assert list(scratch.iterdir()) == [], "the benchmark left files behind"
    return done.stdout
