"""Versions, their trees and blobs: the store's history, growing with what changed.

A version row points at its root tree (see :mod:`lastgood.store.objects`). Writing a version
stores only the blobs and trees that are new (:mod:`lastgood.store.trees` decides how each tree
is stored). Reading a manifest walks the trees through a per-process cache. A rollback reads no
trees at all: the target keeps the release it switches to.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from lastgood.bundle import Bundle, manifest_hash
from lastgood.errors import StoreError
from lastgood.record import replace
from lastgood.rows import VersionInfo
from lastgood.store import common, objects, statements
from lastgood.store.base import StoreBase
from lastgood.store.connection import Database, Session, first_column
from lastgood.store.trees import Trees, chunks, key

VERSION_COLUMNS = statements.columns_of(VersionInfo)
_VERSION_SELECT = f"SELECT {', '.join(VERSION_COLUMNS)} FROM versions"


def _version(row: Sequence[Any]) -> VersionInfo:
    """A version from its row; ``git_dirty`` as a bool on both databases (SQLite says 0/1)."""
    info = VersionInfo(*row)
    if info.git_dirty is None or isinstance(info.git_dirty, bool):
        return info
    return replace(info, git_dirty=bool(info.git_dirty))


INSERT_BLOB = (
    "INSERT INTO blobs (hash, size, codec, data, in_versions) "
    "VALUES (:hash, :size, :codec, :data, :in_versions) "
    "ON CONFLICT (hash) DO UPDATE SET in_versions = excluded.in_versions "
    "WHERE excluded.in_versions AND NOT blobs.in_versions"
)
"""Store a blob once. A version's write flags a blob that only documents used so far; a
document's write never unflags one (so pruning documents never drops a version's file)."""


class VersionStore(StoreBase):
    """Versions numbered from 1, content-addressed: a blob or tree shared by versions is
    stored once."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.trees = Trees()

    # ---- writing ----------------------------------------------------------------------------

    def add_version(
        self,
        bundle: Bundle,
        *,
        author: str,
        message: str,
        source: str,
        at: float | None = None,
        unless_head: bool = False,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
    ) -> VersionInfo:
        """Record ``bundle`` as the next version (writes); with ``unless_head``, return the
        newest version instead when it already holds this content (checked in the same
        transaction). Two processes recording at once (PostgreSQL) race for the next number:
        the loser retries, and then sees the winner's version. ``git_commit`` and
        ``git_dirty`` record the commit the files were taken from, in a git workspace."""
        return self._add_version(
            bundle, author=author, message=message, source=source, at=at,
            unless_head=unless_head, git_commit=git_commit, git_dirty=git_dirty,
        )[0]  # fmt: skip

    def add_commit_version(
        self, bundle: Bundle, *, author: str, message: str, at: float | None, git_commit: str,
        source: str = "git", unless_head: bool = True,
    ) -> tuple[VersionInfo, bool]:  # fmt: skip
        """:meth:`add_version` for what a git commit holds, at most once per commit: when a
        version taken from ``git_commit`` exists already (or, with ``unless_head``, the newest
        version holds this content) that version is returned instead; both are checked in the
        same transaction as the write, so two imports or deploys at once never record a commit
        twice. The version, and whether it was made now (writes)."""
        return self._add_version(
            bundle, author=author, message=message, source=source, at=at,
            unless_head=unless_head, git_commit=git_commit, git_dirty=False, once_per_commit=True,
        )  # fmt: skip

    def _add_version(
        self,
        bundle: Bundle,
        *,
        author: str,
        message: str,
        source: str,
        at: float | None,
        unless_head: bool,
        git_commit: str | None,
        git_dirty: bool | None,
        once_per_commit: bool = False,
    ) -> tuple[VersionInfo, bool]:
        manifest = bundle.manifest  # hashing every file is the costly part: once
        content_hash = manifest_hash(manifest.items())
        folders = objects.Folders(manifest)

        def write(session: Session) -> tuple[VersionInfo, bool]:
            self.db.lock_history(session, exclusive=False)
            head = session.one(
                f"SELECT {', '.join(VERSION_COLUMNS)}, tree FROM versions "
                "ORDER BY number DESC LIMIT 1"
            )
            newest = None if head is None else _version(head[:-1])
            if unless_head and newest is not None and newest.content_hash == content_hash:
                return newest, False
            if once_per_commit:  # read after the head: a version committed since is seen here
                taken = _of_commit(session, git_commit)
                if taken:
                    return taken[0], False
            info = VersionInfo(
                number=(newest.number if newest else 0) + 1,
                content_hash=content_hash,
                parent=None if newest is None else newest.number,
                author=author,
                message=message,
                source=source,
                created_at=at or time.time(),
                file_count=len(manifest),
                total_size=bundle.size,
                git_commit=git_commit,
                git_dirty=git_dirty,
            )
            parent = None if head is None or head[-1] is None else bytes(head[-1]).hex()
            self._store_blobs(
                session, {blob: bundle.files[path] for path, blob in manifest.items()}
            )
            self.trees.store(session, folders, parent)
            values = {**statements.row_of(info, VERSION_COLUMNS), "tree": key(folders.root)}
            session.run(statements.insert("versions", values), values)
            return info, True

        return self._retrying(
            "record a version",
            write,
            gave_up="could not record a version: other processes kept recording at once",
        )

    def _store_blobs(self, session: Session, blobs: dict[str, bytes]) -> None:
        """Insert the blobs not stored as a version's yet (writes). One a document stored
        first is written again with the flag set, not just flagged: if pruning documents
        removed it a moment ago, the write puts it back instead of flagging nothing."""
        in_versions: set[str] = set()
        for chunk in chunks(sorted(blobs)):
            marks, params = statements.among("h", chunk)
            sql = f"SELECT hash FROM blobs WHERE hash IN {marks} AND in_versions = :yes"
            in_versions.update(first_column(session.rows(sql, {**params, "yes": True})))
        # in key order: two writers inserting overlapping rows lock them alike, never deadlock
        session.run_many(INSERT_BLOB, [blob_row(digest, blobs[digest], in_versions=True)
                                       for digest in sorted(blobs)
                                       if digest not in in_versions])  # fmt: skip

    # ---- reading ----------------------------------------------------------------------------

    def head(self) -> VersionInfo | None:
        """The newest version, or None in an empty store."""
        versions = self.versions(limit=1)
        return versions[0] if versions else None

    def version(self, number: int) -> VersionInfo:
        """Version ``number``; NotFoundError when there is none."""
        with self.db.transaction("read a version") as session:
            found = session.rows(_VERSION_SELECT + " WHERE number = :n", {"n": number})
            rows = [_version(row) for row in found]
            if not rows:
                newest = session.value("SELECT max(number) FROM versions")
                raise common.version_not_found(
                    number, pruned=newest is not None and number < newest
                )
        return rows[0]

    def versions(self, *, limit: int | None = None, before: int | None = None) -> list[VersionInfo]:
        """Versions newest first, optionally only those numbered below ``before``."""
        sql, params = _VERSION_SELECT, {}
        if before is not None:
            sql, params = sql + " WHERE number < :before", {"before": before}
        sql += " ORDER BY number DESC"
        if limit is not None:
            sql, params = sql + " LIMIT :limit", {**params, "limit": limit}
        with self.db.transaction("read versions") as session:
            return [_version(row) for row in session.rows(sql, params)]

    def versions_by_hash(self, prefix: str) -> list[VersionInfo]:
        """Versions whose content hash starts with ``prefix``, newest first."""
        low = prefix.lower()
        sql = (
            _VERSION_SELECT + " WHERE content_hash >= :low AND content_hash < :high "
            "ORDER BY number DESC"
        )  # a range, not LIKE, so both databases use the index on content_hash
        with self.db.transaction("find versions") as session:
            rows = session.rows(sql, {"low": low, "high": low + "g"})
        return [_version(row) for row in rows]

    def versions_of_commit(self, commit: str) -> list[VersionInfo]:
        """Versions holding exactly what git commit ``commit`` (its full id) holds, newest
        first: taken from it, not from a folder that had changed since."""
        with self.db.transaction("find versions of a commit") as session:
            return _of_commit(session, commit)

    def versions_of_commits(self, commits: Sequence[str]) -> dict[str, VersionInfo]:
        """Commit → the newest version taken from it (as :meth:`versions_of_commit`), for
        those of ``commits`` that have one; a query per 500 commits."""
        found: dict[str, VersionInfo] = {}
        with self.db.transaction("find versions of commits") as session:
            for chunk in chunks(sorted(set(commits))):
                marks, params = statements.among("c", chunk)
                sql = (_VERSION_SELECT + f" WHERE git_commit IN {marks} AND git_dirty = :dirty "
                       "ORDER BY number")  # fmt: skip
                for row in session.rows(sql, {**params, "dirty": False}):
                    version = _version(row)
                    found[str(version.git_commit)] = version  # the newest last
        return found

    def versions_with_content(self, content_hash: str) -> list[VersionInfo]:
        """Versions holding exactly ``content_hash``, newest first."""
        sql = _VERSION_SELECT + " WHERE content_hash = :hash ORDER BY number DESC"
        with self.db.transaction("find versions by content") as session:
            return [_version(row) for row in session.rows(sql, {"hash": content_hash})]

    def manifest(self, number: int) -> dict[str, str]:
        """Path → blob hash of version ``number``, in path order (empty when there is no such
        version); StoreError naming the version when its trees are damaged."""
        with self.db.transaction("read a manifest") as session:
            return self._manifest(session, number)

    def files(self, number: int) -> dict[str, bytes]:
        """Path → bytes of version ``number``, in path order; StoreError naming the version
        when anything it holds is missing or no longer hashes right."""
        with self.db.transaction("read files") as session:
            manifest = self._manifest(session, number)
            try:
                blobs = read_blobs(session, set(manifest.values()))
            except StoreError as exc:
                raise damaged(number, exc.message) from exc
        files = {}
        for path, digest in manifest.items():
            if digest not in blobs:
                raise damaged(number, f"the content of {path} is missing")
            files[path] = common.verified_blob(blobs[digest], digest, path=path, number=number)
        return files

    def path_history(self, path: str) -> list[tuple[VersionInfo, tuple[str, str] | None]]:
        """Every version, oldest first, with what it holds at ``path``: ``(kind, hash)``, a
        file's blob (kind ``b``) or a folder's tree (``t``), or None where it holds nothing
        there. Cheap however long the history: one query for the versions, and only the trees
        on the way to ``path`` are read, a level at a time for all versions, each distinct
        tree once (versions that did not touch a folder share its tree)."""
        parts = [part for part in path.split("/") if part]
        with self.db.transaction("read a path's history") as session:
            sql = f"SELECT {', '.join(VERSION_COLUMNS)}, tree FROM versions ORDER BY number"
            rows = session.rows(sql)
            held: list[tuple[str, str] | None] = [(objects.TREE, bytes(row[-1]).hex())
                                                   for row in rows]  # fmt: skip
            for part in parts:
                held = self._step(session, held, part)
        return [(_version(row[:-1]), entry) for row, entry in zip(rows, held, strict=True)]

    def _step(
        self, session: Session, held: list[tuple[str, str] | None], name: str
    ) -> list[tuple[str, str] | None]:
        """One level down: what each of ``held`` (a folder's tree, else nothing) holds at
        ``name``."""
        folders = list(dict.fromkeys(e[1] for e in held if e is not None and e[0] == objects.TREE))
        try:
            read = self.trees.read_many(session, folders)
        except StoreError as exc:
            raise StoreError(f"a stored tree is damaged: {exc.message}",
                             hint=STORE_VERIFY_HINT) from exc  # fmt: skip
        children = {tree: entries.get(name) for tree, entries in zip(folders, read, strict=True)}
        return [
            children[entry[1]] if entry is not None and entry[0] == objects.TREE else None
            for entry in held
        ]

    def file_content(self, digest: str, *, path: str, number: int) -> bytes:
        """The bytes of blob ``digest`` (``path`` in version ``number``, to name it when
        something is wrong), checked against its hash; StoreError when missing or damaged."""
        with self.db.transaction("read a file") as session:
            found = read_blobs(session, [digest])
        if digest not in found:
            raise damaged(number, f"the content of {path} is missing")
        return common.verified_blob(found[digest], digest, path=path, number=number)

    def blob_count(self) -> int:
        """How many distinct file contents are stored."""
        with self.db.transaction("count blobs") as session:
            return int(session.value("SELECT count(*) FROM blobs") or 0)

    def _manifest(self, session: Session, number: int) -> dict[str, str]:
        """The manifest rebuilt from the version's trees, checked against its content hash."""
        row = session.one(
            "SELECT tree, content_hash FROM versions WHERE number = :n", {"n": number}
        )
        if row is None:
            return {}
        try:
            manifest = self.trees.manifest(session, bytes(row[0]).hex())
        except StoreError as exc:
            raise damaged(number, exc.message) from exc
        if manifest_hash(manifest.items()) != row[1]:
            raise damaged(number, "its files no longer match its content hash")
        return dict(sorted(manifest.items()))


def _of_commit(session: Session, commit: str | None) -> list[VersionInfo]:
    sql = (
        _VERSION_SELECT + " WHERE git_commit = :commit AND git_dirty = :dirty ORDER BY number DESC"
    )
    return [_version(row) for row in session.rows(sql, {"commit": commit, "dirty": False})]


STORE_VERIFY_HINT = (
    "nothing was changed; 'lastgood store verify' lists all the damage; restore the store "
    "from a backup (meanwhile 'lastgood rollback ENV --offline' works without it)"
)


def damaged(number: int, why: str) -> StoreError:
    """The error for a version whose stored content cannot be trusted."""
    return StoreError(f"stored content of v{number} is damaged: {why}", hint=STORE_VERIFY_HINT)


def blob_row(digest: str, data: bytes, *, in_versions: bool) -> dict[str, object]:
    """The parameters of :data:`INSERT_BLOB` for one file's bytes."""
    codec, stored = objects.pack(data)
    return {"hash": digest, "size": len(data), "codec": codec, "data": stored,
            "in_versions": in_versions}  # fmt: skip


def read_blobs(session: Session, digests: Iterable[str]) -> dict[str, bytes]:
    """Hash → original bytes of the stored blobs among ``digests`` (missing ones left out)."""
    found: dict[str, bytes] = {}
    for chunk in chunks(sorted(digests)):
        marks, params = statements.among("h", chunk)
        sql = f"SELECT hash, codec, data FROM blobs WHERE hash IN {marks}"
        for digest, codec, data in session.rows(sql, params):
            found[digest] = objects.unpack(codec, bytes(data))
    return found
