"""The workspace's git repository, read through the real ``git`` command.

Why the command and not a library: it is the git the team already runs, so it reads every
repository they have (packed or loose objects, SHA-1 or SHA-256, worktrees, partial clones,
alternates) exactly as their own git does, and it adds no dependency. A library would either
wrap this same command (GitPython) or re-implement the object store (dulwich, libgit2) and lag
behind it. Each call is a short subprocess; file contents come through one ``git cat-file
--batch`` per read, not one process per file. Reading many commits (an import) goes through a
:class:`Batch`: two ``git cat-file`` processes kept open for the whole run, and every tree and
blob read once.

Nothing here is imported on the rollback path: a rollback never asks git anything.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Protocol

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

    def history(self, since: str | None = None) -> list[Commit]:
        """The commits reachable from HEAD that changed the workspace's folder, oldest first,
        following the first parent (the history a branch's deploys saw), after commit
        ``since`` (a full id); one ``git log`` for all of them."""
        span = "HEAD" if since is None else f"{since}..HEAD"
        raw = self.git(  # git runs in the workspace: "." is its folder
            "log", "--first-parent", "--reverse", "-z", "--no-show-signature",
            "--format=%H%x00%an <%ae>%x00%at%x00%B", span, "--", ".",
        )  # fmt: skip
        fields = raw.decode("utf-8", "replace").split("\0")
        if fields and not fields[-1]:
            fields.pop()
        commits = []
        for at in range(0, len(fields) - 3, 4):
            full, author, when, message = fields[at : at + 4]
            message = message.strip()
            commits.append(Commit(full, author, float(when), message.partition("\n")[0], message))
        return commits

    def commits_touching(self, since: str | None = None) -> list[str]:
        """The commits reachable from HEAD that changed the workspace's folder, oldest first
        (following the first parent, as the history a branch's deploys saw), after ``since``."""
        span = "HEAD" if since is None else f"{since}..HEAD"
        raw = self.git("rev-list", "--reverse", "--first-parent", span, "--", ".")  # the folder
        return raw.decode().split()

    def commits_between(self, older: str, newer: str) -> list[str] | None:
        """The commits after ``older`` up to ``newer`` (included) that changed the workspace's
        folder, oldest first, along ``newer``'s first parents; None when ``older`` is not an
        ancestor of ``newer`` (then no line of history runs from one to the other)."""
        done = _run(["merge-base", "--is-ancestor", older, newer], self.root, check=False)
        if done.returncode != 0:
            return None
        raw = self.git("rev-list", "--reverse", "--first-parent", f"{older}..{newer}", "--", ".")
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


class Objects(Protocol):
    """Where a commit's files are read from: a :class:`Repo` (a git command per question, for
    one commit) or a :class:`Batch` (processes kept open, for many)."""

    def files(self, sha: str) -> list[Entry]: ...

    def read(self, blobs: Sequence[str]) -> dict[str, bytes]: ...

    def commit(self, sha: str) -> Commit: ...


TREE_MODE = "040000"
SUBMODULE_MODE = "160000"


class Batch:
    """git's objects kept open for many commits: one ``git cat-file --batch`` (contents) and
    one ``--batch-check`` (sizes) for the life of the batch, instead of three processes per
    commit. Questions go in runs (up to :data:`RUN` objects written before the answers are
    read), and every tree, size and blob is asked once: a history shares almost all of them.
    :meth:`prefetch` reads the trees of many commits a level at a time, so reading the files
    of hundreds of commits costs a few dozen round trips, not thousands.

    Use it as a context manager; it reads only. ``commits`` (from :meth:`Repo.history`) answer
    :meth:`commit` without asking git again, and are prefetched."""

    def __init__(self, repo: Repo, commits: Sequence[Commit] = ()) -> None:
        self.repo = repo
        self._commits = {commit.sha: commit for commit in commits}
        self._id_bytes = 32 if repo.object_format() == "sha256" else 20
        self._folder = [part for part in repo.prefix.split("/") if part]
        self._contents = _CatFile(repo.root, "--batch")
        self._sizes = _CatFile(repo.root, "--batch-check")
        self._blobs: dict[str, bytes] = {}
        self._blob_sizes: dict[str, int] = {}
        self._roots: dict[str, str] = {}  # commit → its root tree
        self._trees: dict[str, list[tuple[str, str, str]]] = {}  # tree → (name, mode, id)
        self._flat: dict[tuple[str, str], list[Entry]] = {}  # (tree, path) → files below
        self._entries: dict[tuple[str, str, str], Entry] = {}
        if commits:
            self.prefetch([commit.sha for commit in commits])

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop both git processes (idempotent)."""
        self._contents.close()
        self._sizes.close()

    def prefetch(self, commits: Sequence[str]) -> None:
        """Read what :meth:`files` needs for every commit of ``commits``: their root trees,
        the trees on the way to the workspace's folder and below it, a level at a time, and
        the size of every file there (reads git)."""
        for sha, data in self._contents.read_many(
            [sha for sha in commits if sha not in self._roots], "commit"
        ).items():
            self._roots[sha] = _tree_of(sha, data)
        level = {self._roots[sha] for sha in commits}
        below: set[str] = set()  # the trees at or under the workspace's folder
        depth = 0
        while level:
            self._read_trees(level)
            if depth >= len(self._folder):
                below |= level
            wanted = self._folder[depth] if depth < len(self._folder) else None
            level = {
                oid
                for tree in level
                for name, mode, oid in self._trees[tree]
                if mode == TREE_MODE and (wanted is None or name == wanted) and oid not in below
            }
            depth += 1
        blobs = {
            oid
            for tree in below
            for _name, mode, oid in self._trees[tree]
            if mode not in (TREE_MODE, SUBMODULE_MODE) and oid not in self._blob_sizes
        }
        self._blob_sizes.update(self._sizes.sizes(list(blobs)))  # fmt: skip

    def commit(self, sha: str) -> Commit:
        known = self._commits.get(sha)
        return known if known is not None else self.repo.commit(sha)

    def files(self, sha: str) -> list[Entry]:
        """As :meth:`Repo.files`: every file under the workspace's folder in commit ``sha``."""
        if sha not in self._roots:
            self.prefetch([sha])
        folder: str | None = self._roots[sha]
        for name in self._folder:
            if folder is None:
                break
            self._read_trees({folder})
            folder = next((oid for child, mode, oid in self._trees[folder]
                           if child == name and mode == TREE_MODE), None)  # fmt: skip
        return [] if folder is None else list(self._flatten(folder, ""))

    def read(self, blobs: Sequence[str]) -> dict[str, bytes]:
        """The contents of ``blobs``; each is asked of git once per batch."""
        self._blobs.update(self._contents.read_many([b for b in blobs if b not in self._blobs]))
        return {blob: self._blobs[blob] for blob in blobs}

    def _read_trees(self, trees: Iterable[str]) -> None:
        unknown = [tree for tree in trees if tree not in self._trees]
        for tree, data in self._contents.read_many(unknown, "tree").items():
            self._trees[tree] = _tree_entries(data, self._id_bytes)

    def _flatten(self, tree: str, path: str) -> list[Entry]:
        """Every file below ``tree`` (at ``path/`` in the workspace), kept: a folder that did
        not change between commits is the same tree, listed once, and a file that did not
        change is the same :class:`Entry`."""
        found = self._flat.get((tree, path))
        if found is None:
            self._read_trees([tree])
            found = []
            for name, mode, oid in self._trees[tree]:
                if mode == TREE_MODE:
                    found += self._flatten(oid, f"{path}{name}/")
                else:
                    found.append(self._entry(f"{path}{name}", mode, oid))
            self._flat[(tree, path)] = found
        return found

    def _entry(self, path: str, mode: str, oid: str) -> Entry:
        key = (path, mode, oid)
        made = self._entries.get(key)
        if made is None:
            size = None
            if mode != SUBMODULE_MODE:  # a commit of another repository: not here to measure
                if oid not in self._blob_sizes:
                    self._blob_sizes.update(self._sizes.sizes([oid]))
                size = self._blob_sizes[oid]
            made = self._entries[key] = Entry(path, mode, oid, size)
        return made


RUN = 400
"""Objects asked of ``git cat-file`` before reading its answers: the questions of one run
(at most 65 bytes each) fit in a pipe's buffer, so writing them never waits for the reading,
and the two sides never wait for each other."""


def _tree_of(sha: str, commit: bytes) -> str:
    header = commit.partition(b"\n")[0]
    if not header.startswith(b"tree "):
        raise GitError(f"git commit {sha[:12]} has no tree")
    return header[5:].decode()


def _tree_entries(data: bytes, id_bytes: int) -> list[tuple[str, str, str]]:
    """(name, mode, id) of a tree object, modes as ``ls-tree`` prints them (``040000``)."""
    entries, at = [], 0
    while at < len(data):
        space = data.index(b" ", at)
        end = data.index(b"\0", space)
        mode = data[at:space].decode().zfill(6)
        name = data[space + 1 : end].decode("utf-8", "surrogateescape")
        entries.append((name, mode, data[end + 1 : end + 1 + id_bytes].hex()))
        at = end + 1 + id_bytes
    return entries


class _CatFile:
    """One ``git cat-file --batch`` or ``--batch-check`` process, asked in runs of
    :data:`RUN` objects."""

    def __init__(self, cwd: Path, mode: str) -> None:
        try:
            self.process = subprocess.Popen(
                ["git", "cat-file", mode], cwd=cwd, env=_environment(),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        except FileNotFoundError:
            raise _no_git() from None
        assert self.process.stdin is not None and self.process.stdout is not None
        self._in: IO[bytes] = self.process.stdin
        self._out: IO[bytes] = self.process.stdout

    def _runs(self, oids: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
        """Each of ``oids`` with git's header for it (id, type, size); the caller reads the
        content, if any, before taking the next."""
        for start in range(0, len(oids), RUN):
            run = oids[start : start + RUN]
            try:
                self._in.write("".join(f"{oid}\n" for oid in run).encode())
                self._in.flush()
            except OSError as exc:
                raise GitError("git cat-file stopped while being asked for objects") from exc
            for oid in run:
                header = self._out.readline().decode().split()
                if len(header) != 3:
                    why = " ".join(header) or "git cat-file stopped"
                    raise GitError(f"git could not read object {oid[:12]}: {why}")
                yield oid, header

    def sizes(self, oids: Sequence[str]) -> dict[str, int]:
        return {oid: int(header[2]) for oid, header in self._runs(oids)}

    def read_many(self, oids: Sequence[str], kind: str | None = None) -> dict[str, bytes]:
        """The content of each object; GitError when one is missing or not of ``kind``."""
        found = {}
        for oid, (_oid, what, size) in self._runs(list(dict.fromkeys(oids))):
            data = self._out.read(int(size))
            self._out.read(1)  # the newline after the content
            if len(data) != int(size):
                raise GitError(f"git cat-file stopped while reading object {oid[:12]}")
            if kind is not None and what != kind:
                raise GitError(f"git object {oid[:12]} is a {what}, not a {kind}")
            found[oid] = data
        return found

    def close(self) -> None:
        if self.process.poll() is None:
            self._in.close()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()


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
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotepath=off", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            timeout=timeout,
            env=_environment(),
        )
    except FileNotFoundError:
        raise _no_git() from None
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


def _environment() -> dict[str, str]:
    environ = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    environ.pop("GIT_DIR", None)  # the workspace's own repository, not one a hook points at
    return environ


def _no_git() -> GitError:
    return GitError(
        "git is not installed (no 'git' command on PATH)",
        hint="install git, or name versions without git:",
    )
