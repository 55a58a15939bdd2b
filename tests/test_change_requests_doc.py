"""docs/change-requests.md's walk-through is real: its session runs here, command by command,
and must print what the page shows (times and durations aside).

``python -m tests.test_change_requests_doc`` prints the session as it runs now, to paste into
the page after a change of wording."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.doc_sessions import assert_session_holds, run_session

PAGE = Path(__file__).parent.parent / "docs" / "change-requests.md"
ENV = {"LASTGOOD_AUTHOR": "alex"}


def test_the_walk_through_prints_what_the_page_shows(tmp_path: Path) -> None:
    assert_session_holds(PAGE.read_text(), tmp_path, ENV)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        for command, printed in run_session(PAGE.read_text(), Path(scratch), ENV):
            sys.stdout.write(f"$ {command}\n{printed}")
