"""docs/git.md's walk-through ("A team's day") is real: its session runs here in a new git
repository, command by command, and must print what the page shows (times aside). Git runs as
the page's Ana at a fixed date, so the commit ids on the page are the ones git makes here.

``python -m tests.test_git_doc`` prints the session as it runs now, to paste into the page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import LASTGOOD

PAGE = Path(__file__).parent.parent / "docs" / "git.md"
_VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "YYYY-MM-DD HH:MM:SS"),
    (re.compile(r"^\d\d:\d\d:\d\d ", re.M), "HH:MM:SS "),
    (re.compile(r"in \d+ ms"), "in N ms"),
]
WHEN = "@1796400000 +0000"  # the commits' date on the page: 2026-12-04 16:00 UTC


def walk_through() -> str:
    """The page's section that walks through a team's day."""
    text = PAGE.read_text()
    start = text.index("## A team's day")
    return text[start : text.index("\n## ", start + 1)]


def session() -> list[tuple[str, str]]:
    """The section's console session: (command, what it printed) pairs."""
    pairs: list[tuple[str, str]] = []
    for block in re.findall(r"```console\n(.*?)```", walk_through(), re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, printed = chunk.partition("\n")
            pairs.append((command, printed))
    return pairs


def run_session(folder: Path) -> list[tuple[str, str]]:
    """Run every command of the section in a new folder holding its lastgood.toml."""
    workspace = folder / "ws"
    workspace.mkdir(parents=True)
    (workspace / "lastgood.toml").write_text(
        re.findall(r"```toml\n(.*?)```", walk_through(), re.S)[0]
    )
    env = {**os.environ, "PATH": f"{Path(LASTGOOD).parent}:{os.environ['PATH']}",
           "LASTGOOD_AUTHOR": "ana", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1",
           "GIT_AUTHOR_NAME": "Ana Lee", "GIT_AUTHOR_EMAIL": "ana@example.com",
           "GIT_COMMITTER_NAME": "Ana Lee", "GIT_COMMITTER_EMAIL": "ana@example.com",
           "GIT_AUTHOR_DATE": WHEN, "GIT_COMMITTER_DATE": WHEN,
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}  # fmt: skip
    env.pop("LASTGOOD_SERVER", None)
    ran = []
    for command, _ in session():
        done = subprocess.run(["bash", "-c", command + " 2>&1"], cwd=workspace, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
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
