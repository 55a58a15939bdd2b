"""docs/change-requests.md's walk-through is real: its session runs here, command by command,
and must print what the page shows (times and durations aside).

``python -m tests.test_change_requests_doc`` prints the session as it runs now, to paste into
the page after a change of wording."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import LASTGOOD

PAGE = Path(__file__).parent.parent / "docs" / "change-requests.md"
_VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "YYYY-MM-DD HH:MM:SS"),
    (re.compile(r"^\d\d:\d\d:\d\d ", re.M), "HH:MM:SS "),
    (re.compile(r"in \d+ ms"), "in N ms"),
]


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", PAGE.read_text(), re.S)


def session() -> list[tuple[str, str]]:
    """The page's console session: (command, what it printed) pairs."""
    pairs: list[tuple[str, str]] = []
    for block in blocks("console"):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, printed = chunk.partition("\n")
            pairs.append((command, printed))
    return pairs


def run_session(folder: Path) -> list[tuple[str, str]]:
    """Run every command of the page in a new workspace holding the page's lastgood.toml."""
    workspace = folder / "ws"
    workspace.mkdir(parents=True)
    (workspace / "lastgood.toml").write_text(blocks("toml")[0])
    env = {**os.environ, "PATH": f"{Path(LASTGOOD).parent}:{os.environ['PATH']}",
           "LASTGOOD_AUTHOR": "alex", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    env.pop("LASTGOOD_SERVER", None)
    ran = []
    for command, _ in session():
        done = subprocess.run(["bash", "-c", command + " 2>&1"], cwd=workspace, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        ran.append((command, done.stdout))
    return ran


def normal(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text.rstrip("\n")


def test_the_walk_through_prints_what_the_page_shows(tmp_path: Path) -> None:
    shown = session()
    assert len(shown) >= 10
    for (command, printed), (_, expected) in zip(run_session(tmp_path), shown, strict=True):
        assert normal(printed) == normal(expected), f"$ {command}"


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        for command, printed in run_session(Path(scratch)):
            sys.stdout.write(f"$ {command}\n{printed}")
