"""``lastgood import-git``: the workspace's git history as versions.

Real repositories made with the real ``git`` in temporary folders (the helpers of
``tests/test_git.py``: the workspace is ``ws/`` of a repository that holds more than it), real
stores on SQLite and PostgreSQL, the real CLI for what a person sees.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable

import pytest

from lastgood.gitrepo import Batch, Repo
from lastgood.operations.importing import ALREADY, IMPORTED, UNCHANGED, import_git
from tests.conftest import LASTGOOD, Workspace
from tests.test_git import WHEN, commit_all, git, repo

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


def history(ws: Workspace, count: int, start: int = 1) -> list[str]:
    """``count`` commits, each changing the thresholds (and every third one a prompt); the
    commit ids, oldest first."""
    made = []
    for number in range(start, start + count):
        ws.write("scoring/thresholds.yaml", f"threshold: 0.{number}\n")
        if number % 3 == 0:
            ws.write(f"prompts/p{number % 2}.txt", f"prompt {number}\n")
        made.append(commit_all(ws, f"change {number}\n\nbecause {number}", when=WHEN + number))
    return made


def test_import_records_each_commit_with_its_author_time_and_message(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    ws = repo(workspace, store=store_url)
    commits = history(ws, 3)
    (ws.base / "README.md").write_text("outside the workspace\n")
    commit_all(ws, "readme only")  # touches nothing in ws/: not a version

    done = import_git(ws.project())

    # "start" holds only lastgood.toml, never versioned: nothing to record yet
    assert [(c.status, c.version) for c in done.commits] == [
        (UNCHANGED, None), (IMPORTED, 1), (IMPORTED, 2), (IMPORTED, 3)
    ]  # fmt: skip
    versions = ws.project().store.versions()[::-1]
    assert [v.git_commit for v in versions] == commits
    first = versions[0]
    assert (first.number, first.created_at) == (1, WHEN + 1)
    assert first.author == "Ana Lee <ana@example.com>"
    assert first.message == "change 1\n\nbecause 1"
    assert (first.source, first.git_dirty) == ("git", False)
    assert ws.project().store.files(3)["scoring/thresholds.yaml"] == b"threshold: 0.3\n"
    assert "lastgood.toml" not in ws.project().store.files(3)
    assert done.summary == "3 commits imported as v1-v3, 1 with nothing new to version"


def test_running_it_again_adds_only_what_is_new(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    ws = repo(workspace, store=store_url)
    history(ws, 4)
    assert import_git(ws.project()).count(IMPORTED) == 4
    again = import_git(ws.project())
    assert [c.status for c in again.commits] == [ALREADY] * 5
    assert [c.version for c in again.commits] == [None, 1, 2, 3, 4]
    assert again.summary == "0 commits imported, 5 already there"
    newer = history(ws, 2, start=5)
    third = import_git(ws.project())
    assert [c.status for c in third.commits] == [ALREADY] * 5 + [IMPORTED] * 2
    assert [v.git_commit for v in ws.project().store.versions(limit=2)] == newer[::-1]


def test_a_commit_that_changed_nothing_versioned_is_skipped_and_counted(
    workspace: Callable[..., Workspace],
) -> None:
    ws = repo(workspace)
    (ws.root / "lastgood.toml").write_text(
        (ws.root / "lastgood.toml").read_text() + '\n[versioning]\nexclude = ["notes/**"]\n'
    )
    history(ws, 1)
    ws.write("notes/todo.md", "excluded\n")
    commit_all(ws, "notes only")
    ws.write("scoring/thresholds.yaml", "threshold: 0.1\n")  # what v1 holds: git sees a change
    git(ws.base, "commit", "-q", "--allow-empty", "-m", "empty")  # not in the folder's history
    ws.write("exports/leads.csv", "id,score\n1,0.4\n")
    commit_all(ws, "data only")

    done = import_git(ws.project())

    assert [(c.status, c.version) for c in done.commits[1:]] == [
        (IMPORTED, 1), (UNCHANGED, 1), (UNCHANGED, 1)
    ]  # fmt: skip
    assert [left.path for left in done.commits[3].left_out] == ["exports/leads.csv"]
    assert "looks like raw data" in done.commits[3].left_out[0].why
    assert done.summary == (
        "1 commit imported as v1, 3 with nothing new to version, 1 file left out"
    )
    assert len(ws.project().store.versions()) == 1


def test_a_data_file_is_left_out_and_named_where_it_appears(
    workspace: Callable[..., Workspace],
) -> None:
    ws = repo(workspace)
    history(ws, 1)
    ws.write("exports/leads.csv", "id,score\n1,0.4\n")
    ws.write("scoring/thresholds.yaml", "threshold: 0.2\n")
    commit_all(ws, "rules and, by mistake, data")
    history(ws, 2, start=3)

    shown = ws.run("import-git")

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1].startswith("v2  ")
    assert shown.stdout.splitlines()[1].endswith("rules and, by mistake, data")
    named = [line for line in shown.stderr.splitlines() if ": left out: " in line]
    assert len(named) == 1, shown.stderr  # once, where it came, not at every commit after
    assert "exports/leads.csv looks like raw data" in named[0]
    assert shown.stderr.splitlines()[-1] == (
        "4 commits imported as v1-v4, 1 with nothing new to version, 1 file left out"
    )
    assert "exports/leads.csv" not in ws.project().store.files(2)
    data = json.loads(ws.run("import-git", "--json").stdout)
    assert (data["imported"], data["already"], data["left_out"]) == (0, 5, 0)
    assert data["summary"] == "0 commits imported, 5 already there"


def test_since_imports_only_the_commits_after_it(workspace: Callable[..., Workspace]) -> None:
    ws = repo(workspace)
    commits = history(ws, 5)
    done = json.loads(ws.run("import-git", "--since", "HEAD~2", "--json").stdout)
    assert [c["commit"] for c in done["commits"]] == commits[3:]
    assert [c["version"] for c in done["commits"]] == [1, 2]
    missing = ws.run("import-git", "--since", "no-such-ref")
    assert missing.returncode == 2 and "git knows no commit 'no-such-ref'" in missing.stderr


def test_a_commit_deployed_before_is_not_imported_again(
    workspace: Callable[..., Workspace],
) -> None:
    ws = repo(workspace)
    ws.healthy("one")
    commit_all(ws, "one")
    ws.healthy("two")
    commit_all(ws, "two")
    assert ws.run("deploy", "staging", "--commit", "HEAD~1").returncode == 0
    done = import_git(ws.project())
    assert [(c.status, c.version) for c in done.commits[1:]] == [(ALREADY, 1), (IMPORTED, 2)]


def test_pruned_versions_are_not_brought_back_and_prune_still_works(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    ws = repo(workspace, store=store_url)
    history(ws, 6)
    assert import_git(ws.project()).count(IMPORTED) == 6
    pruned = ws.run("prune", "--keep", "2", "--yes")
    assert pruned.returncode == 0, pruned.stderr
    assert [v.number for v in ws.project().store.versions()] == [6, 5]
    again = import_git(ws.project())
    assert again.count(IMPORTED) == 0 and again.count(ALREADY) == 7
    history(ws, 1, start=7)
    assert [c.version for c in import_git(ws.project()).commits][-1] == 7
    events = [e for e in ws.project().store.events() if e.kind == "imported"]
    assert [json.loads(e.data)["imported"] for e in events] == [1, 6]


def test_two_imports_at_once_record_each_commit_once(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    ws = repo(workspace, store=store_url)
    commits = history(ws, 40)
    assert ws.run("log").returncode == 0  # the store exists, as a team's does
    command = [LASTGOOD, "-C", str(ws.root), "--store", store_url, "import-git", "--json"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    answers = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _out, err in answers]
    versions = ws.project().store.versions()
    assert sorted(str(v.git_commit) for v in versions) == sorted(commits)
    assert [v.git_commit for v in versions[::-1]] == commits  # and in the commits' order
    imported = [json.loads(out)["imported"] for out, _err in answers]
    assert sum(imported) == 40, imported


def test_what_cannot_be_imported_is_said_clearly(workspace: Callable[..., Workspace]) -> None:
    outside = workspace()
    refused = outside.run("import-git")
    assert refused.returncode == 2 and "is not in a git repository" in refused.stderr
    empty = workspace()
    git(empty.base, "init", "-q", "-b", "main")
    nothing = empty.run("import-git")
    assert nothing.returncode == 2 and "has no commit yet" in nothing.stderr
    (empty.base / "README.md").write_text("the workspace is not committed yet\n")
    git(empty.base, "add", "README.md")
    git(empty.base, "commit", "-q", "-m", "readme")
    quiet = empty.run("import-git")
    assert quiet.returncode == 0 and "nothing to import" in quiet.stderr, quiet.stderr


def test_the_batch_reads_what_ls_tree_and_cat_file_read(
    workspace: Callable[..., Workspace],
) -> None:
    ws = repo(workspace)
    ws.healthy("one")
    (ws.root / "prompts" / "deep" / "er").mkdir(parents=True)
    (ws.root / "prompts" / "deep" / "er" / "base.txt").write_text("be kind\n")
    (ws.root / "prompts" / "current.txt").symlink_to("deep/er/base.txt")
    (ws.root / "run.sh").write_text("#!/bin/sh\n")
    (ws.root / "run.sh").chmod(0o755)
    (ws.root / "naïve name.txt").write_text("utf-8\n")
    commit_all(ws, "one")
    ws.healthy("two")
    (ws.root / "prompts" / "deep" / "er" / "base.txt").unlink()
    commit_all(ws, "two")
    one = Repo.require(ws.root)
    shas = [c.sha for c in one.history()]
    with Batch(one, one.history()) as batch:
        for sha in shas:
            assert batch.files(sha) == one.files(sha)
            blobs = [entry.blob for entry in one.files(sha)]
            assert batch.read(blobs) == one.read(blobs)
            assert batch.commit(sha) == one.commit(sha)
    at_top = Repo.require(ws.base)  # the same repository from its top: README is a file too
    with Batch(at_top) as batch:
        assert batch.files(shas[-1]) == at_top.files(shas[-1])


def test_the_history_of_a_subfolder_workspace_names_its_commits(
    workspace: Callable[..., Workspace],
) -> None:
    """The pathspec is the workspace's folder as git sees it from there ('.'): naming the
    prefix again (ws/ from inside ws/) found no commit at all."""
    ws = repo(workspace)
    commits = history(ws, 2)
    (ws.base / "README.md").write_text("elsewhere\n")
    commit_all(ws, "outside")
    found = Repo.require(ws.root)
    assert found.commits_touching()[1:] == commits
    assert [c.sha for c in found.history()][1:] == commits
    assert found.commits_touching(since=commits[0]) == commits[1:]
