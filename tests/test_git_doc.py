"""docs/git.md's walk-through ("A team's day") is real: its session runs here in a new git
repository, command by command, and must print what the page shows (times aside). Git runs as
the page's Ana at a fixed date, so the commit ids on the page are the ones git makes here.

``python -m tests.test_git_doc`` prints the session as it runs now, to paste into the page."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.doc_sessions import assert_session_holds, run_session

PAGE = Path(__file__).parent.parent / "docs" / "git.md"
WHEN = "@1796400000 +0000"  # the commits' date on the page: 2026-12-04 16:00 UTC
ENV = {
    "LASTGOOD_AUTHOR": "ana",
    "GIT_AUTHOR_NAME": "Ana Lee",
    "GIT_AUTHOR_EMAIL": "ana@example.com",
    "GIT_COMMITTER_NAME": "Ana Lee",
    "GIT_COMMITTER_EMAIL": "ana@example.com",
    "GIT_AUTHOR_DATE": WHEN,
    "GIT_COMMITTER_DATE": WHEN,
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def walk_through() -> str:
    """The page's section that walks through a team's day."""
    text = PAGE.read_text()
    start = text.index("## A team's day")
    return text[start : text.index("\n## ", start + 1)]


def test_the_walk_through_prints_what_the_page_shows(tmp_path: Path) -> None:
    assert_session_holds(walk_through(), tmp_path, ENV)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        for command, printed in run_session(walk_through(), Path(scratch), ENV):
            sys.stdout.write(f"$ {command}\n{printed}")
