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
from lastgood.operations.snapshot import SnapshotResult, announced, newest_recorded
from lastgood.project import Project
from lastgood.rows import VersionInfo


def record_commit(project: Project, ref: str, *, source: str = "git") -> SnapshotResult:
    """The version of commit ``ref``: the one already taken from it, else a new one recorded
    with the commit's author, time and message, as :func:`commit_version` records one (writes
    the store). The commit's files are read from git only when it has no version yet."""
    repo = Repo.require(project.root)
    sha = repo.resolve(ref)
    taken = project.store.versions_of_commit(sha)
    if taken:
        return SnapshotResult(taken[0], created=False)
    found = commit_files(repo, sha, project.config.versioning)
    commit = found.commit
    return commit_version(project, found.bundle, commit.sha, message=commit.message,
                          author=commit.author, at=commit.time, source=source)  # fmt: skip


def commit_version(
    project: Project, bundle: Bundle, sha: str, *, message: str, source: str,
    author: str | None = None, at: float | None = None,
) -> SnapshotResult:  # fmt: skip
    """The version of commit ``sha``, which holds ``bundle``: the newest already taken from
    it, else a new one carrying it, by ``author`` (default: who runs this) at ``at`` (default:
    now) with ``message`` (writes the store). ``deploy --commit`` here, and an upload of a
    commit's files to a server (which has no repository), both record a commit this way.

    A commit always gets a version that carries it, even when its files equal the newest
    version's (the folder snapshotted before the commit was made, or a commit that changed
    only files outside the workspace or excluded ones). Returning that equal version instead
    would leave the commit attached to nothing: the version shows another commit (or none),
    another author and message, and the next ``git:REF`` would not find it by its id. A version
    carries one commit (``git_commit``: the commit it was taken from, with the commit's author,
    time and message), so the equal version cannot take a second one without rewriting a
    recorded version or teaching every reader about several commits per version. The new
    version costs one row: its files are the ones stored already (the same content hash,
    blobs and trees), and what goes by content treats the two as one (a quarantine, an
    approval, a read-only ``git:REF``). This is also what a commit equal to an older version
    (a revert) has always got. Whether the commit has a version is checked again in the
    write's transaction, so two deploys of one commit at once record it once."""
    head = newest_recorded(project)
    version, made = project.store.add_commit_version(
        bundle,
        author=author or project.actor,
        message=message or "(no message)",
        at=at,
        git_commit=sha,
        source=source,
        unless_head=False,
    )
    if not made:
        return SnapshotResult(version, created=False)  # recorded before, or by another process
    return announced(project, bundle, version, head)


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
