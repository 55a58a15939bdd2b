"""Trees in the store: written as deltas where that pays, read back whole, cached per process.

The encoding and the delta format are :mod:`lastgood.store.objects`'; this module puts them in
the ``trees`` table and gets them out again. Every tree read is rebuilt from its chain of deltas
(one query fetches the chain), checked against its hash, and kept in a small cache, so walking
a history or writing the next version rereads almost nothing. The migration that converted
per-file manifests into trees uses this same class.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from lastgood.errors import StoreError
from lastgood.store import objects, statements
from lastgood.store.connection import Session, first_column

CACHED_ENTRIES = 250_000
"""How many tree entries (names) a process keeps rebuilt, over all cached trees: the folders of
a few versions of even a very wide workspace (tens of MB at most)."""

CHUNK = 500
"""Hashes per ``IN (…)``: well under every driver's parameter limit."""

CHAIN_SQL = """
WITH RECURSIVE chain(hash, base, data, step) AS (
    SELECT hash, base, data, 0 FROM trees WHERE hash = :hash
    UNION ALL
    SELECT trees.hash, trees.base, trees.data, chain.step + 1
    FROM trees JOIN chain ON trees.hash = chain.base
    WHERE chain.step < :steps
)
SELECT hash, base, data FROM chain ORDER BY step
"""
"""A tree and the trees it is a delta against, nearest first, in one query."""

INSERT_TREE = (
    "INSERT INTO trees (hash, base, depth, data) VALUES (:hash, :base, :depth, :data) "
    "ON CONFLICT (hash) DO NOTHING"
)

Tree = tuple[objects.Entries, int]
"""A rebuilt tree: its entries, and how many deltas deep it is stored."""


class Trees:
    """Reads and writes trees in whatever transaction it is handed; thread-safe cache.

    Every tree handed out has been checked against its hash. A tree rebuilt only as a step on
    the way to another (a delta base) is cached unchecked: the tree asked for is checked, and
    a step is checked the first time it is itself asked for. So reading a tree 80 deltas deep
    hashes one tree, not 80.
    """

    def __init__(self) -> None:
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._entries = 0
        self._lock = threading.Lock()

    def store(self, session: Session, folders: objects.Folders, parent: str | None) -> None:
        """Insert the trees of ``folders`` not stored yet (writes); each as a delta against
        the tree of the same folder under ``parent`` (the version before's root) when that is
        under half the tree's size and the chain is not too long already."""
        stored = set(existing(session, "trees", list(folders.hashes.values()), binary=True))
        before = {} if parent is None else self.folders(session, parent)
        rows, made = [], {}
        for folder, digest in folders.hashes.items():
            if digest in stored or digest in made:
                continue
            entries = folders.entries[folder]
            data, base, depth = None, None, 0
            previous = before.get(folder)
            if previous is not None:
                base_entries, base_depth = self.read(session, previous)
                packed = objects.pack_tree(objects.delta(base_entries, entries))
                if base_depth < objects.MAX_DEPTH and 2 * len(packed) < folders.sizes[folder]:
                    data, base, depth = packed, previous, base_depth + 1
            if data is None:
                data = objects.pack_tree(objects.encode(entries))
            rows.append({"hash": key(digest), "base": key(base), "depth": depth, "data": data})
            made[digest] = (entries, depth)
        session.run_many(INSERT_TREE, sorted(rows, key=lambda row: row["hash"] or b""))
        for digest, (entries, depth) in made.items():
            self._remember(digest, _Cached(entries, depth, checked=True))  # hashed as made

    def read(self, session: Session, digest: str) -> Tree:
        """Tree ``digest`` rebuilt from its chain of deltas and checked against its hash;
        StoreError naming the tree when it is missing, broken or damaged."""
        cached = self._cached(digest)
        if cached is None:
            cached = self._rebuild(session, digest)
        if not cached.checked:
            _check(digest, cached.entries)
            cached.checked = True
        return cached.entries, cached.depth

    def _rebuild(self, session: Session, digest: str) -> _Cached:
        """Fetch the chain in one query and apply it from the nearest tree already known (or
        the whole tree at its end); every step is cached, unchecked."""
        chain = [
            (bytes(tree).hex(), None if base is None else bytes(base).hex(), data)
            for tree, base, data in session.rows(
                CHAIN_SQL, {"hash": key(digest), "steps": objects.MAX_DEPTH + 1}
            )
        ]
        if not chain:
            raise StoreError(f"tree {digest[:12]} is missing from the store")
        start, known = _first_known(chain, self._cached)
        if known is None:
            missing = chain[start][1]
            if missing is not None:
                raise StoreError(f"tree {digest[:12]} is a delta on tree {missing[:12]}, "
                                 "which is missing from the store")  # fmt: skip
            entries = objects.decode(objects.unpack_tree(bytes(chain[start][2])))
            known = self._remember(chain[start][0], _Cached(entries, 0))
        for tree, _base, data in reversed(chain[:start]):
            changes = objects.decode(objects.unpack_tree(bytes(data)))
            entries = objects.apply_delta(known.entries, changes)
            known = self._remember(tree, _Cached(entries, known.depth + 1))
        return known

    def read_many(self, session: Session, digests: Sequence[str]) -> list[objects.Entries]:
        """Trees ``digests`` (in that order), each rebuilt and checked as :meth:`read` does,
        their rows fetched one level each, a query per :data:`CHUNK` trees, rather than a
        chain per tree: for the same folder along a history, oldest first, each tree
        is a delta on the one before, which is then at hand."""
        rows: dict[str, tuple[str | None, bytes]] = {}
        # every row, cached or not: rebuilding the older trees may push the newer out
        for chunk in chunks(list(dict.fromkeys(digests))):
            marks, params = statements.among("h", [key(digest) for digest in chunk])
            sql = f"SELECT hash, base, data FROM trees WHERE hash IN {marks}"
            for tree, base, data in session.rows(sql, params):
                rows[bytes(tree).hex()] = (None if base is None else bytes(base).hex(), data)
        found = []
        for digest in digests:
            if digest in rows and self._cached(digest) is None:
                self._rebuild_from(digest, *rows[digest])
            found.append(self.read(session, digest)[0])  # checked; a chain only if still unknown
        return found

    def _rebuild_from(self, digest: str, base: str | None, data: bytes) -> None:
        """Cache tree ``digest`` (unchecked) from its row, when its base is known already."""
        changes = objects.decode(objects.unpack_tree(bytes(data)))
        if base is None:
            self._remember(digest, _Cached(changes, 0))
            return
        known = self._cached(base)
        if known is not None:
            entries = objects.apply_delta(known.entries, changes)
            self._remember(digest, _Cached(entries, known.depth + 1))

    def manifest(self, session: Session, root: str) -> dict[str, str]:
        """Path → blob hash of everything under tree ``root``."""
        return objects.walk(root, lambda digest: self.read(session, digest)[0])

    def folders(self, session: Session, root: str) -> dict[str, str]:
        """Folder path → tree hash of every folder under ``root``."""
        return objects.folder_trees(root, lambda digest: self.read(session, digest)[0])

    def forget(self) -> None:
        """Empty the cache (after pruning, or to check what is on the disk)."""
        with self._lock:
            self._cache.clear()
            self._entries = 0

    def _cached(self, digest: str) -> _Cached | None:
        with self._lock:
            found = self._cache.get(digest)
            if found is not None:
                self._cache.move_to_end(digest)
            return found

    def _remember(self, digest: str, tree: _Cached) -> _Cached:
        with self._lock:
            replaced = self._cache.pop(digest, None)
            if replaced is not None:
                self._entries -= len(replaced.entries)
            self._cache[digest] = tree
            self._entries += len(tree.entries)
            while self._entries > CACHED_ENTRIES and len(self._cache) > 1:
                _digest, dropped = self._cache.popitem(last=False)
                self._entries -= len(dropped.entries)
        return tree


class _Cached:
    """A rebuilt tree in the cache, and whether its hash was checked yet."""

    __slots__ = ("checked", "depth", "entries")

    def __init__(self, entries: objects.Entries, depth: int, *, checked: bool = False) -> None:
        self.entries = entries
        self.depth = depth
        self.checked = checked


def _check(digest: str, entries: objects.Entries) -> None:
    if objects.tree_hash(objects.encode(entries)) != digest:
        raise StoreError(f"stored tree {digest[:12]} is damaged: it no longer hashes right")


def _first_known(
    chain: Sequence[tuple[str, str | None, object]], cached: Callable[[str], _Cached | None]
) -> tuple[int, _Cached | None]:
    """The nearest tree of ``chain`` already in the cache (its index and value), or the last
    index and None: rebuilding starts there."""
    for index, row in enumerate(chain):
        found = cached(row[0])
        if found is not None:
            return index, found
    return len(chain) - 1, None


def key(digest: str | None) -> bytes | None:
    """A tree hash as the ``trees`` table and ``versions.tree`` keep it: 32 raw bytes, not 64
    hex characters (trees are the store's most numerous rows; this halves their keys)."""
    return None if digest is None else bytes.fromhex(digest)


def existing(
    session: Session, table: str, digests: list[str], *, binary: bool = False
) -> list[str]:
    """Which of ``digests`` are keys of ``table`` (blobs: hex keys; trees: ``binary``)."""
    found: list[str] = []
    for chunk in chunks(sorted(set(digests))):
        marks, params = statements.among("h", [key(d) if binary else d for d in chunk])
        sql = f"SELECT hash FROM {table} WHERE hash IN {marks}"
        keys = first_column(session.rows(sql, params))
        found += [bytes(k).hex() if binary else str(k) for k in keys]
    return found


def chunks(items: list[str]) -> list[list[str]]:
    """``items`` in runs of :data:`CHUNK`."""
    return [items[start : start + CHUNK] for start in range(0, len(items), CHUNK)]
