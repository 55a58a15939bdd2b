"""Versions from git commits: a commit recorded as a version with its author, time and message,
for ``deploy --commit`` and ``git:REF`` in a deploy or a request (what a commit holds is read by
:mod:`lastgood.gitfiles`; a ``git:REF`` that only reads resolves in
:mod:`lastgood.operations.resolve`).
"""

from __future__ import annotations

from lastgood import refs
from lastgood.bundle import Bundle
from lastgood.gitfiles import commit_files
from lastgood.gitrepo import Repo
from lastgood.operations.resolve import resolve
from lastgood.operations.snapshot import SnapshotResult, snapshot_bundle
from lastgood.project import Project
from lastgood.rows import VersionInfo


def record_commit(project: Project, ref: str, *, source: str = "git") -> SnapshotResult:
    """The version of commit ``ref``: the one already taken from it, else a new one recorded
    with the commit's author, time and message (writes the store)."""
    repo = Repo.require(project.root)
    sha = repo.resolve(ref)
    taken = project.store.versions_of_commit(sha)
    if taken:
        return SnapshotResult(taken[0], created=False)
    found = commit_files(repo, sha, project.config.versioning)
    commit = found.commit
    return snapshot_bundle(
        project,
        found.bundle,
        commit.message or "(no message)",
        source=source,
        author=commit.author,
        at=commit.time,
        git_commit=commit.sha,
        git_dirty=False,
    )


def version_to_change(project: Project, ref: str, *, env: str) -> VersionInfo:
    """The version a deploy or a request puts forward for ``ref``: a ``git:REF`` is recorded
    from its commit when it is not yet (writes the store); any other reference is resolved."""
    parsed = refs.parse(ref)
    if parsed.kind == refs.GIT:
        return record_commit(project, parsed.value).version
    return resolve(project, ref, env=env)


def planned_commit(project: Project, ref: str) -> tuple[VersionInfo | None, Bundle, str]:
    """What a deploy of ``git:REF`` would put live, without recording anything: its version
    when one holds it already, its files, and the commit's full id."""
    repo = Repo.require(project.root)
    sha = repo.resolve(ref)
    taken = project.store.versions_of_commit(sha)
    if taken:
        return taken[0], Bundle(project.store.files(taken[0].number)), sha
    return None, commit_files(repo, sha, project.config.versioning).bundle, sha
