"""``lastgood log PATH`` and ``lastgood blame PATH`` as a person runs them: the real CLI on a
workspace in a real git repository (the helpers of ``tests/test_git.py``), so versions carry
their commits. What the verbs compute is tested in ``tests/operations/test_file_history.py``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable

import pytest

from tests.conftest import Workspace
from tests.test_git import WHEN, commit_all, repo

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

RULES = "scoring/thresholds.yaml"


def two_commits(ws: Workspace) -> tuple[str, str]:
    """v1 and v2 imported from git: v2 changes one line of the rules; v2 is live on staging."""
    ws.write(RULES, "threshold: 0.4\nmin_score: 0.1\n")
    ws.write("health.txt", "ok\n")
    first = commit_all(ws, "first rules", when=WHEN)
    ws.write(RULES, "threshold: 0.5\nmin_score: 0.1\n")
    second = commit_all(ws, "raise the threshold\n\nsales asked", when=WHEN + 60)
    assert ws.run("import-git").returncode == 0
    assert ws.run("deploy", "staging", "--version", "v1", "-m", "rules").returncode == 0
    assert ws.run("deploy", "staging", "--version", "v2", "-m", "higher").returncode == 0
    return first, second


def test_log_path_lists_the_changes_with_their_commits_and_where_they_went_live(
    workspace: Callable[..., Workspace],
) -> None:
    ws = repo(workspace)
    first, second = two_commits(ws)

    shown = ws.run("log", RULES)

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["version", "hash", "commit", "when", "author", "change", "message"]
    assert lines[1].startswith("v2 ") and f" {second[:10]} " in lines[1]
    assert lines[1].rstrip().endswith("changed  raise the threshold")
    assert "Ana Lee <ana@example.com>" in lines[1]
    assert lines[2].startswith("    staging  ") and lines[2].split()[4] == "now"
    assert "deploy #2 of v2 by tester" in lines[2]
    assert lines[3].startswith("v1 ") and f" {first[:10]} " in lines[3] and " added " in lines[3]
    assert "deploy #1 of v1 by tester; replaced by deploy #2 of v2" in lines[4]
    data = json.loads(ws.run("log", RULES, "--json").stdout)
    assert [(c["version"]["number"], c["change"], c["kind"]) for c in data] == [
        (2, "changed", "file"), (1, "added", "file")
    ]  # fmt: skip
    assert data[0]["version"]["git_commit"] == second
    assert data[1]["live"][0]["ended_by"]["id"] == 2 and data[0]["live"][0]["until"] is None
    assert len(json.loads(ws.run("log", RULES, "-n", "1", "--json").stdout)) == 1
    missing = ws.run("log", "scoring/threshold.yaml")
    assert missing.returncode == 2 and "did you mean scoring/thresholds.yaml?" in missing.stderr


def test_blame_prints_version_commit_author_and_day_beside_each_line(
    workspace: Callable[..., Workspace],
) -> None:
    ws = repo(workspace)
    first, second = two_commits(ws)
    ws.write(RULES, "threshold: 0.6\nmin_score: 0.1\n")  # v3: recorded, never deployed
    assert ws.run("snapshot", "-m", "try 0.6").returncode == 0

    shown = ws.run("blame", RULES)  # what is live on staging: v2, not the newest

    assert shown.returncode == 0, shown.stderr
    assert shown.stderr.startswith(f"{RULES} in v2 (")
    assert shown.stdout.splitlines() == [
        f"v2 {second[:10]} Ana Lee 2025-12-29 | threshold: 0.5",
        f"v1 {first[:10]} Ana Lee 2025-12-29 | min_score: 0.1",
    ]
    newest = ws.run("blame", RULES, "v3").stdout.splitlines()
    assert newest[0].startswith(f"v3 {second[:10]}-dirty tester  ")
    assert newest[0].endswith("| threshold: 0.6")
    assert newest[1] == f"v1 {first[:10]}       Ana Lee 2025-12-29 | min_score: 0.1"  # aligned
    data = json.loads(ws.run("blame", RULES, "git:HEAD~1", "--json").stdout)
    assert data["version"]["git_commit"] == first
    assert [(line["line"], line["commit"], line["text"]) for line in data["lines"]] == [
        (1, first, "threshold: 0.4"), (2, first, "min_score: 0.1")
    ]  # fmt: skip


def test_without_git_blame_has_no_commit_column(workspace: Callable[..., Workspace]) -> None:
    ws = workspace()
    ws.write(RULES, "threshold: 0.4\n")
    assert ws.run("snapshot", "-m", "one").returncode == 0
    shown = ws.run("blame", RULES)
    assert shown.returncode == 0, shown.stderr
    day = time.strftime("%Y-%m-%d", time.localtime(ws.project().store.version(1).created_at))
    assert shown.stdout.splitlines() == [f"v1 tester {day} | threshold: 0.4"]


def test_history_tools_work_on_the_store_not_through_a_server(
    workspace: Callable[..., Workspace],
) -> None:
    ws = repo(workspace)
    remote = {"LASTGOOD_SERVER": "http://127.0.0.1:9"}
    for command, named in ((["log", RULES], "log PATH"), (["blame", RULES], "blame"),
                           (["import-git"], "import-git")):  # fmt: skip
        refused = ws.run(*command, env=remote)
        assert refused.returncode == 2, refused.stderr
        assert f"'lastgood {named}' works on a store only, not through a server" in (refused.stderr)
