"""``lastgood.operations.commits``: a git commit becomes the version it produced, and that
version carries the commit, even when its files equal the newest version's.

Each test makes a real repository with the real ``git`` around the workspace (its folder is
``ws/`` inside the repository, as in a repository that holds more than configuration).
"""

from __future__ import annotations

import shutil

import pytest

from lastgood.operations.commits import planned_commit, record_commit, version_to_change
from lastgood.operations.snapshot import snapshot
from lastgood.project import Project
from tests.conftest import healthy_files
from tests.operations.conftest import ProjectFactory, kinds, listen, write
from tests.test_git import WHEN, git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


def commit(project: Project, message: str, when: int = WHEN) -> str:
    """Commit everything in the repository around the workspace, as Ana; the commit's id."""
    base = project.root.parent
    if not (base / ".git").exists():
        git(base, "init", "-q", "-b", "main")
        (base / ".gitignore").write_text(".lastgood/\nlive/\napp/\n")
    git(base, "add", "-A")
    git(base, "commit", "-q", "--allow-empty", "-m", message, when=when)
    return git(base, "rev-parse", "HEAD")


def test_a_commit_equal_to_a_folder_snapshot_gets_a_version_carrying_it(
    project: ProjectFactory, store_url: str
) -> None:
    made = project(store=store_url)
    write(made, healthy_files("one"))
    commit(made, "start")
    write(made, healthy_files("two"))
    tried = snapshot(made, "try two").version  # the folder, with a change not committed yet
    assert tried.git_dirty is True
    blobs = made.store.blob_count()
    sha = commit(made, "Raise the threshold\n\nTwo is what sales asked for.", when=WHEN + 60)
    heard = listen(made)

    done = record_commit(made, "HEAD")

    assert done.created and done.version.number == tried.number + 1
    carried = done.version
    assert (carried.git_commit, carried.git_dirty) == (sha, False)
    assert carried.content_hash == tried.content_hash  # the same files, addressed by content
    assert made.store.blob_count() == blobs  # and stored once: only a version row was added
    assert (carried.author, carried.created_at) == ("Ana Lee <ana@example.com>", WHEN + 60)
    assert carried.message == "Raise the threshold\n\nTwo is what sales asked for."
    assert (carried.source, carried.parent) == ("git", tried.number)
    assert kinds(heard) == ["snapshot-created"]
    assert made.store.versions_of_commit(sha) == [carried]  # what 'deploy git:REF' looks up
    again = record_commit(made, sha)
    assert (again.created, again.version) == (False, carried)  # once per commit
    assert version_to_change(made, "git:HEAD", env="staging") == carried
    assert planned_commit(made, "HEAD")[0] == carried
    assert made.store.version(tried.number) == tried  # the folder's version is left as it was


def test_a_commit_that_changed_nothing_in_the_folder_still_names_its_own_version(
    project: ProjectFactory,
) -> None:
    made = project()
    write(made, healthy_files("one"))
    first_sha = commit(made, "one")
    first = record_commit(made, "HEAD").version
    (made.root.parent / "README.md").write_text("outside the workspace\n")
    readme = commit(made, "Explain the repository")  # the workspace's files are unchanged

    done = record_commit(made, "HEAD")

    assert done.created and done.version.git_commit == readme
    assert done.version.content_hash == first.content_hash
    assert done.version.message == "Explain the repository"
    assert made.store.versions_of_commit(first_sha) == [first]
    assert [v.git_commit for v in made.store.versions()] == [readme, first_sha]
