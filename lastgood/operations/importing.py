"""``import-git``: the workspace's git history as versions, oldest first.

Every commit reachable from HEAD along the first parent that touched the workspace's folder
becomes a version with the commit's author, author date and message, ``git_commit`` set and
source ``git``, through :func:`~lastgood.gitfiles.commit_files` (not strict: a
commit that added a data file is imported without it, and the result says so).

Running it again adds only what is new. The commits up to the newest one an earlier import
reached (its ``imported`` event names it) are skipped without reading git, so versions pruned
since are not brought back; so is any commit already recorded as a version (``deploy
--commit`` records one). A commit whose content equals the version before it (it changed only
excluded or left-out files, or git history had a commit lastgood sees as empty) is skipped
too, and counted: recording it would make a duplicate. The store decides both in the same
transaction as the write (:meth:`~lastgood.store.versions.VersionStore.add_commit_version`),
so two imports running at once never record a commit twice.

Speed: one ``git log`` lists the commits and one :class:`~lastgood.gitrepo.Batch` (two
``git cat-file`` processes) reads every tree and blob of the run, each once.
"""

from __future__ import annotations

from lastgood.errors import UsageError
from lastgood.events import Event, EventKind
from lastgood.gitfiles import LeftOut, Sieve, commit_files
from lastgood.gitrepo import Batch, Commit, Repo
from lastgood.project import Project
from lastgood.record import Record, field
from lastgood.rows import VersionInfo
from lastgood.units import plural

IMPORTED = "imported"
ALREADY = "already"  # a version was taken from this commit before
UNCHANGED = "unchanged"  # it holds what the version before it holds (or nothing, at first)


class ImportedCommit(Record):
    """One commit of the import, and what became of it. ``left_out`` names the files that
    could not be versioned as this commit brought or changed them: a data file that stays in
    the history is named once, where it appeared, not at every commit after."""

    commit: str
    subject: str
    status: str  # IMPORTED, ALREADY or UNCHANGED
    version: int | None  # the version that holds what it holds
    left_out: tuple[LeftOut, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "commit": self.commit,
            "subject": self.subject,
            "status": self.status,
            "version": self.version,
            "left_out": [{"path": left.path, "why": left.why} for left in self.left_out],
        }


class ImportResult(Record):
    """What an import did, commit by commit, oldest first."""

    commits: list[ImportedCommit] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for commit in self.commits if commit.status == status)

    @property
    def left_out(self) -> list[tuple[ImportedCommit, LeftOut]]:
        """Each file left out, at the commit that brought it (or changed it)."""
        return [(commit, left) for commit in self.commits for left in commit.left_out]

    @property
    def summary(self) -> str:
        """``3 commits imported as v1-v3, 2 already there, 1 file left out``."""
        made = [c.version for c in self.commits if c.status == IMPORTED and c.version]
        span = "" if not made else f" as v{made[0]}" + (f"-v{made[-1]}" if len(made) > 1 else "")
        parts = [f"{plural(len(made), 'commit')} imported{span}"]
        if self.count(ALREADY):
            parts.append(f"{self.count(ALREADY)} already there")
        if self.count(UNCHANGED):
            parts.append(f"{self.count(UNCHANGED)} with nothing new to version")
        left_out = {left.path for _commit, left in self.left_out}
        if left_out:
            parts.append(f"{plural(len(left_out), 'file')} left out")
        return ", ".join(parts)

    def to_json(self) -> dict[str, object]:
        return {
            "imported": self.count(IMPORTED),
            "already": self.count(ALREADY),
            "unchanged": self.count(UNCHANGED),
            "left_out": len({left.path for _commit, left in self.left_out}),
            "summary": self.summary,
            "commits": [commit.to_json() for commit in self.commits],
        }


def import_git(project: Project, *, since: str | None = None) -> ImportResult:
    """Record the commits that touched the workspace as versions, oldest first (writes the
    store; reads git only). ``since``: only the commits after that one (any git reference)."""
    repo = Repo.require(project.root)
    if repo.head() is None:
        raise UsageError(
            f"the repository {repo.top} has no commit yet: nothing to import",
            hint="commit the workspace first: git add -A && git commit",
        )
    commits = repo.history(None if since is None else repo.resolve(since))
    recorded = project.store.versions_of_commits([commit.sha for commit in commits])
    reached = -1 if since is not None else _reached(project, commits)
    result = ImportResult()
    before: VersionInfo | None = None  # what the commit before holds, once known
    for commit in commits[: reached + 1]:  # an earlier import read these
        before = recorded.pop(commit.sha, None)
        result.commits.append(_already(commit, before))
    pending = commits[reached + 1 :]
    if not pending:
        return result
    with _Reader(project, repo, [c for c in pending if c.sha not in recorded]) as reader:
        for commit in pending:
            taken = recorded.get(commit.sha)
            if taken is None:
                done, before = reader.record(commit, before)
            else:
                done, before = _already(commit, taken), taken
            result.commits.append(done)
    _announce(project, result)
    return result


def _already(commit: Commit, version: VersionInfo | None) -> ImportedCommit:
    number = None if version is None else version.number
    return ImportedCommit(commit.sha, commit.subject, ALREADY, number)


class _Reader:
    """Reads commits from git and records them, for one import: one batch of git processes,
    each file judged once, and each file left out named where it appears."""

    def __init__(self, project: Project, repo: Repo, commits: list[Commit]) -> None:
        self.project = project
        self.repo = repo
        self.batch = Batch(repo, commits)
        self.sieve = Sieve(project.config.versioning)
        self.named: set[tuple[str, str]] = set()  # left out of the commit before, and why

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *_: object) -> None:
        self.batch.close()

    def record(
        self, commit: Commit, before: VersionInfo | None
    ) -> tuple[ImportedCommit, VersionInfo | None]:
        """Import one commit not recorded yet: what became of it, and the version holding
        what it holds (writes the store)."""
        found = commit_files(self.repo, commit.sha, self.project.config.versioning,
                             strict=False, objects=self.batch, sieve=self.sieve)  # fmt: skip
        left = {(item.path, item.why) for item in found.left_out}
        fresh = tuple(item for item in found.left_out if (item.path, item.why) not in self.named)
        self.named = left
        if before is None and not found.bundle.files:  # nothing versioned yet: nothing to record
            return ImportedCommit(commit.sha, commit.subject, UNCHANGED, None, fresh), None
        if before is not None and found.bundle.content_hash == before.content_hash:
            return ImportedCommit(commit.sha, commit.subject, UNCHANGED, before.number, fresh), (
                before
            )
        version, made = self.project.store.add_commit_version(
            found.bundle,
            author=commit.author,
            message=commit.message or "(no message)",
            at=commit.time,
            git_commit=commit.sha,
        )
        # not made: another import recorded it a moment ago, or the newest version holds it
        status = ALREADY if version.git_commit == commit.sha else UNCHANGED
        status = IMPORTED if made else status
        return ImportedCommit(commit.sha, commit.subject, status, version.number, fresh), version


def _reached(project: Project, commits: list[Commit]) -> int:
    """The index in ``commits`` of the newest commit an earlier import reached (-1: none):
    that import read everything up to it, and versions it made may have been pruned since."""
    import json

    for event in project.store.events(kind=EventKind.IMPORTED.value, limit=1):
        last = json.loads(event.data or "{}").get("reached")
        for index, commit in enumerate(commits):
            if commit.sha == last:
                return index
    return -1


def _announce(project: Project, result: ImportResult) -> None:
    """One ``imported`` event for the whole run, naming the newest commit it reached, where
    the next import starts (writes)."""
    made = [commit for commit in result.commits if commit.status == IMPORTED]
    left = [{"commit": c.commit, "path": left.path} for c, left in result.left_out]
    data: dict[str, object] = {"imported": len(made), "reached": result.commits[-1].commit,
                               "left_out": left}  # fmt: skip
    if made:
        data["first"] = {"commit": made[0].commit, "version": made[0].version}
        data["last"] = {"commit": made[-1].commit, "version": made[-1].version}
    project.emit(
        Event(
            EventKind.IMPORTED,
            f"{result.summary} from git",
            version=made[-1].version if made else None,
            data=data,
        )
    )
