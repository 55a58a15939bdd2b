"""What a git commit holds for the workspace's folder, read from git's objects (never from the
working tree), under the same versioning rules as the folder: excluded paths are left out, and
raw data is refused (a deploy) or left out with a note (an import, which must not stop at one
old commit). Also whether the folder as read now differs from the commit HEAD points at.

Below the verbs: it reads git only, never the store.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from lastgood.bundle import Bundle
from lastgood.config import Versioning
from lastgood.errors import RawDataError
from lastgood.gitrepo import Commit, Entry, Objects, Repo, blob_id
from lastgood.record import Record
from lastgood.workspace import all_refused, check_relative_path, excluded, refuse_data

LINK = "120000"
SUBMODULE = "160000"


class LeftOut(Record):
    """A file of a commit that could not be versioned, and why."""

    path: str
    error: RawDataError

    @property
    def why(self) -> str:
        return self.error.message


class CommitFiles(Record):
    """What a commit holds for the workspace, and what of it could not be versioned."""

    commit: Commit
    bundle: Bundle
    left_out: tuple[LeftOut, ...] = ()


class Sieve:
    """Which files of a commit are versioned: the ``[versioning]`` rules, each entry judged
    once. An import asks about the same few hundred files at every commit; a file that did
    not change is the same entry (path, mode, blob, size), so it is not judged again."""

    def __init__(self, versioning: Versioning) -> None:
        self.versioning = versioning
        self._judged: dict[tuple[str, str, str, int | None], RawDataError | bool] = {}

    def judge(self, entry: Entry) -> RawDataError | bool:
        """False when ``entry`` is excluded, True when it is versioned, else why it cannot be."""
        key = (entry.path, entry.mode, entry.blob, entry.size)
        found = self._judged.get(key)
        if found is None:
            found = not excluded(entry.path, self.versioning)
            if found:
                try:
                    _refuse_unversionable(entry, self.versioning)
                except RawDataError as exc:
                    found = exc
            self._judged[key] = found
        return found


def commit_files(
    repo: Repo,
    sha: str,
    versioning: Versioning,
    *,
    strict: bool = True,
    objects: Objects | None = None,
    sieve: Sieve | None = None,
) -> CommitFiles:
    """The files commit ``sha`` holds under the workspace's folder (reads git only), through
    ``objects`` (default: the repository, a git command per question; an import passes a
    :class:`~lastgood.gitrepo.Batch`, and one ``sieve`` for all its commits).

    ``strict``: a file that cannot be versioned refuses the whole commit (RawDataError naming
    every such file), as a snapshot of the folder would; otherwise it is left out and named."""
    source: Objects = objects or repo
    sieve = sieve or Sieve(versioning)
    refused: list[LeftOut] = []
    wanted: list[Entry] = []
    for entry in source.files(sha):
        verdict = sieve.judge(entry)
        if verdict is True:
            wanted.append(entry)
        elif verdict is not False:
            refused.append(LeftOut(entry.path, verdict))
    contents = source.read([entry.blob for entry in wanted])
    files: dict[str, bytes] = {}
    by_path = {entry.path: entry for entry in wanted}
    for entry in wanted:
        data = contents[entry.blob]
        if entry.mode == LINK:
            target = _link_target(entry.path, data, by_path)
            if target is None:
                refused.append(LeftOut(entry.path, _link_refused(entry.path, data)))
                continue
            data = contents[target.blob]
        files[entry.path] = data
    if refused and strict:
        raise all_refused([left.error for left in refused])
    return CommitFiles(source.commit(sha), Bundle(files), tuple(refused))


def _refuse_unversionable(entry: Entry, versioning: Versioning) -> None:
    check_relative_path(entry.path)
    if entry.mode == SUBMODULE:
        raise RawDataError(
            f"{entry.path} is a git submodule; lastgood versions the files of this repository",
            hint=f'exclude it with exclude = ["{entry.path}/"] under [versioning]',
        )
    if entry.mode != LINK:
        refuse_data(entry.path, entry.size or 0, versioning)


def _link_target(path: str, data: bytes, by_path: dict[str, Entry]) -> Entry | None:
    """The file a symbolic link in the commit points at, when it is a plain file of the same
    commit inside the workspace (as the walk reads a link inside the folder); else None."""
    try:
        target = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if target.startswith("/"):
        return None
    parts: list[str] = []
    for part in (PurePosixPath(path).parent / target).parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    found = by_path.get("/".join(parts))
    return found if found is not None and found.mode != LINK else None


def _link_refused(path: str, data: bytes) -> RawDataError:
    shown = data.decode("utf-8", "replace")
    return RawDataError(
        f"{path} is a symbolic link to {shown!r}, which is not a file of the workspace in the "
        "same commit",
        hint=f'commit the file itself, or exclude it with exclude = ["{path}"] under [versioning]',
    )


def folder_commit(
    root: Path, versioning: Versioning, bundle: Bundle
) -> tuple[str | None, bool | None]:
    """The commit HEAD points at, and whether ``bundle`` (the folder as read now) differs from
    what that commit holds; (None, None) outside a repository or before the first commit.

    Compared by git's own blob ids, so no file is read from git: one ``git ls-tree``."""
    repo = Repo.find(root)
    if repo is None:
        return None, None
    head = repo.head()
    if head is None:
        return None, None
    fmt = repo.object_format()
    entries = [entry for entry in repo.files(head) if not excluded(entry.path, versioning)]
    by_path = {entry.path: entry for entry in entries if entry.mode not in (LINK, SUBMODULE)}
    committed = {path: entry.blob for path, entry in by_path.items()}
    links = [entry for entry in entries if entry.mode == LINK]
    targets = repo.read([link.blob for link in links])
    for link in links:
        target = _link_target(link.path, targets[link.blob], by_path)
        committed[link.path] = "" if target is None else target.blob
    mine = {path: blob_id(data, fmt) for path, data in bundle.files.items()}
    return head, committed != mine
