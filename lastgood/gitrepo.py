"""The workspace's git repository, read through the real ``git`` command.

Why the command and not a library: it is the git the team already runs, so it reads every
repository they have (packed or loose objects, SHA-1 or SHA-256, worktrees, partial clones,
alternates) exactly as their own git does, and it adds no dependency. A library would either
wrap this same command (GitPython) or re-implement the object store (dulwich, libgit2) and lag
behind it. Each call is a short subprocess; file contents come through one ``git cat-file
--batch`` per read, not one process per file.

Nothing here is imported on the rollback path: a rollback never asks git anything.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from lastgood.errors import GitError, UsageError
from lastgood.record import Record

TIMEOUT = 60.0
"""Seconds a single git command may take before lastgood gives up on it."""


class Commit(Record):
    """One commit, as ``git log`` shows it."""

    sha: str
    author: str  # "Name <email>"
    time: float  # the author date, seconds since the epoch
    subject: str
    message: str  # the whole message, subject first

    @property
    def short(self) -> str:
        return self.sha[:12]


class Entry(Record):
    """One file of a commit's tree under the workspace's folder."""

    path: str  # relative to the workspace
    mode: str  # git's file mode: 100644, 100755, 120000 (a link), 160000 (a submodule)
    blob: str  # the object's id
    size: int | None  # None for a submodule


class Repo:
    """The repository that holds ``root``, and ``root``'s place in it."""

    def __init__(self, root: Path, top: Path, prefix: str) -> None:
        self.root = root
        self.top = top
        self.prefix = prefix  # "" at the top, else "some/folder/"

    @classmethod
    def find(cls, root: Path) -> Repo | None:
        """The repository ``root`` lies in, or None when it lies in none (or git is missing)."""
        try:
            done = _run(["rev-parse", "--show-toplevel", "--show-prefix"], root, check=False)
        except GitError:
            return None
        if done.returncode != 0:
            return None
        top, _, prefix = done.stdout.decode("utf-8", "surrogateescape").partition("\n")
        return cls(root, Path(top), prefix.rstrip("\n"))

    @classmethod
    def at(cls, root: Path) -> Repo:
        """The repository holding ``root``, without asking git where its top is: for commands
        that name only refs and objects (:meth:`update_refs`, :meth:`missing`), where git finds
        the repository by itself and a ``rev-parse`` (a few milliseconds, on a rollback) would
        be spent for nothing. ``top`` is ``root`` and ``prefix`` empty; outside a repository
        the first command fails with git's own "not a git repository"."""
        return cls(root, root, "")

    @classmethod
    def require(cls, root: Path) -> Repo:
        repo = cls.find(root)
        if repo is None:
            raise GitError(
                f"the workspace {root} is not in a git repository",
                hint="run 'git init' there and commit, or name versions without git:",
            )
        return repo

    def git(self, *args: str, stdin: bytes | None = None, timeout: float = TIMEOUT) -> bytes:
        """Run ``git ARGS`` at the workspace; its output (GitError naming it on failure)."""
        return _run(list(args), self.root, stdin=stdin, timeout=timeout).stdout

    def resolve(self, ref: str) -> str:
        """The full id of the commit ``ref`` names (a branch, a tag, HEAD~2, a prefix...)."""
        if not ref or ref.startswith("-") or "\0" in ref:
            raise UsageError(f"{ref!r} is not a git reference", hint="e.g. git:HEAD~1 or git:main")
        done = _run(
            ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], self.root, check=False
        )
        if done.returncode != 0:
            raise UsageError(
                f"git knows no commit {ref!r} in {self.top}",
                hint="run 'git log --oneline' to see commits; fetch first if it is on a remote",
            )
        return done.stdout.decode().strip()

    def head(self) -> str | None:
        """The commit HEAD points at; None in a repository with no commit yet."""
        done = _run(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], self.root, check=False)
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def commit(self, sha: str) -> Commit:
        """Author, time and message of commit ``sha``."""
        raw = self.git("show", "-s", "--format=%H%x00%an <%ae>%x00%at%x00%B", sha, "--")
        full, author, when, message = raw.decode("utf-8", "replace").split("\0", 3)
        message = message.strip()
        return Commit(full, author, float(when), message.partition("\n")[0], message)

    def files(self, sha: str) -> list[Entry]:
        """Every file under the workspace's folder in commit ``sha``, by path."""
        args = ["ls-tree", "-r", "-z", "-l", "--full-tree", sha, "--"]
        raw = self.git(*args, *([self.prefix] if self.prefix else []))
        entries: list[Entry] = []
        for line in raw.split(b"\0"):
            if not line:
                continue
            meta, _, name = line.partition(b"\t")
            mode, _kind, blob, size = meta.decode().split()
            path = name.decode("utf-8", "surrogateescape")[len(self.prefix) :]
            entries.append(Entry(path, mode, blob, None if size == "-" else int(size)))
        return entries

    def read(self, blobs: Sequence[str]) -> dict[str, bytes]:
        """The contents of ``blobs``, read through one ``git cat-file --batch``."""
        if not blobs:
            return {}
        out = self.git("cat-file", "--batch", stdin="".join(f"{b}\n" for b in blobs).encode())
        found: dict[str, bytes] = {}
        at = 0
        for blob in blobs:
            end = out.index(b"\n", at)
            header = out[at:end].decode().split()
            if len(header) != 3:
                raise GitError(f"git could not read object {blob}: {' '.join(header)}")
            size = int(header[2])
            found[blob] = out[end + 1 : end + 1 + size]
            at = end + 1 + size + 1  # the content, then a newline
        return found

    def commits_touching(self, since: str | None = None) -> list[str]:
        """The commits reachable from HEAD that changed the workspace's folder, oldest first
        (following the first parent, as the history a branch's deploys saw), after ``since``."""
        span = "HEAD" if since is None else f"{since}..HEAD"
        raw = self.git("rev-list", "--reverse", "--first-parent", span, "--", self.prefix or ".")
        return raw.decode().split()

    def update_refs(self, refs: dict[str, str | None], *, timeout: float = TIMEOUT) -> None:
        """Point each ref at its commit (None deletes it), in one transaction."""
        lines = [
            f"update {name} {sha}\n" if sha else f"delete {name}\n" for name, sha in refs.items()
        ]
        self.git("update-ref", "--stdin", stdin="".join(lines).encode(), timeout=timeout)

    def missing(self, shas: Sequence[str]) -> set[str]:
        """Which of the objects ``shas`` this repository does not hold (one batch check)."""
        if not shas:
            return set()
        out = self.git("cat-file", "--batch-check", stdin="".join(f"{s}\n" for s in shas).encode())
        return {line.split()[0] for line in out.decode().splitlines() if line.endswith(" missing")}

    def object_format(self) -> str:
        """``sha1`` or ``sha256``: how this repository names its objects."""
        done = _run(["rev-parse", "--show-object-format"], self.root, check=False)
        named = done.stdout.decode().strip() if done.returncode == 0 else ""
        return named or "sha1"


def blob_id(data: bytes, object_format: str = "sha1") -> str:
    """The id git gives a file holding ``data``: what ``git hash-object`` prints."""
    import hashlib

    digest = hashlib.new(object_format)
    digest.update(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


def _run(
    args: list[str], cwd: Path, *, stdin: bytes | None = None, check: bool = True,
    timeout: float = TIMEOUT,
) -> subprocess.CompletedProcess[bytes]:  # fmt: skip
    environ = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    environ.pop("GIT_DIR", None)  # the workspace's own repository, not one a hook points at
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotepath=off", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            timeout=timeout,
            env=environ,
        )
    except FileNotFoundError:
        raise GitError(
            "git is not installed (no 'git' command on PATH)",
            hint="install git, or name versions without git:",
        ) from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took over {timeout:g} s in {cwd}") from None
    if check and done.returncode != 0:
        raise GitError(f"git {args[0]} failed in {cwd}: {_reason(done)}")
    return done


def _reason(done: subprocess.CompletedProcess[bytes]) -> str:
    """git's own words for a failure: its last ``fatal:`` or ``error:`` line (advice such as
    "remove the file manually to continue" may follow it), else its last line."""
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    said = [line for line in lines if line.startswith(("fatal: ", "error: "))] or lines
    return said[-1] if said else f"exit {done.returncode}"
