"""Console sessions in the docs, run for real: a page's ```console blocks are split into
commands and what each printed, each command runs in bash in a new workspace, and what it
prints must match the page (times and durations aside).

Each page's test says which part of the page, which lastgood.toml and which environment; a page's
module run as ``python -m tests.test_…_doc`` prints its session as it runs now, to paste in."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import LASTGOOD

_VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "YYYY-MM-DD HH:MM:SS"),
    (re.compile(r"^\d\d:\d\d:\d\d ", re.M), "HH:MM:SS "),
    (re.compile(r"in \d+ ms"), "in N ms"),
]


def blocks(text: str, kind: str) -> list[str]:
    """The fenced blocks of ``kind`` (console, toml, …) in ``text``, in order."""
    return re.findall(rf"```{kind}\n(.*?)```", text, re.S)


def session(text: str) -> list[tuple[str, str]]:
    """The console session in ``text``: (command, what it printed) pairs."""
    pairs: list[tuple[str, str]] = []
    for block in blocks(text, "console"):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, printed = chunk.partition("\n")
            pairs.append((command, printed))
    return pairs


def run_session(text: str, folder: Path, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """Run every command of ``text`` in a new workspace under ``folder`` holding its first
    ```toml block as lastgood.toml, with the installed ``lastgood`` first on PATH."""
    workspace = folder / "ws"
    workspace.mkdir(parents=True)
    (workspace / "lastgood.toml").write_text(blocks(text, "toml")[0])
    environ = {**os.environ, "PATH": f"{Path(LASTGOOD).parent}:{os.environ['PATH']}",
               "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", **env}  # fmt: skip
    environ.pop("LASTGOOD_SERVER", None)
    ran = []
    for command, _ in session(text):
        done = subprocess.run(["bash", "-c", command + " 2>&1"], cwd=workspace, env=environ,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        ran.append((command, done.stdout))
    return ran


def normal(text: str) -> str:
    """``text`` with what changes from run to run (times, durations) replaced."""
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text.rstrip("\n")


def assert_session_holds(text: str, folder: Path, env: Mapping[str, str]) -> None:
    """Every command of ``text`` prints what ``text`` shows."""
    shown = session(text)
    assert len(shown) >= 10
    for (command, printed), (_, expected) in zip(
        run_session(text, folder, env), shown, strict=True
    ):
        assert normal(printed) == normal(expected), f"$ {command}"
