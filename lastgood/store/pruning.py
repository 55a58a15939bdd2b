"""Dropping versions from the store, and freeing the trees and blobs only they held.

Which versions may go is the verb's decision (:mod:`lastgood.operations.prune`: it knows the
targets); the store still refuses, as a last line, to drop the newest version (its number
would be handed out again), any version an environment has live or as last known good, or one
a running deploy or rollback is moving to or from.

Freeing is mark and sweep, in the same transaction as the drop: every tree and blob the kept
versions reach stays. A kept tree stored as a delta on a tree that goes is first rewritten
whole, so no chain ever runs into a hole. Blobs a tracked document still uses stay too.
"""

from __future__ import annotations

from collections.abc import Collection

from lastgood.errors import RefusedError
from lastgood.record import Record
from lastgood.rows import BAD, UNFINISHED_REQUESTS
from lastgood.store import objects, statements
from lastgood.store.base import StoreBase
from lastgood.store.connection import Session
from lastgood.store.trees import Trees, key


class Pruned(Record):
    """What a prune dropped (or, in a dry run, would drop)."""

    versions: tuple[int, ...]
    trees: int
    blobs: int
    freed_bytes: int


def protected_versions(store: StoreBase) -> set[int]:
    """Versions the store never drops: the newest, every environment's live and last known
    good, both ends of every running deploy or rollback, every version that failed somewhere
    (a quarantine refuses its content by its hash) and every version an unfinished change
    request proposes."""
    with store.db.transaction("read protected versions") as session:
        return _protected(session)


def drop_versions(
    store: StoreBase, trees: Trees, numbers: Collection[int], *, dry_run: bool = False
) -> Pruned:
    """Drop versions ``numbers`` and free what only they used (writes, unless ``dry_run``);
    RefusedError, with nothing dropped, when any of them is protected."""
    doomed = set(numbers)
    with store.db.transaction("prune versions", snapshot=dry_run) as session:
        if not dry_run:
            store.db.lock_history(session, exclusive=True)  # no version is recorded meanwhile
        refused = sorted(doomed & _protected(session))
        if refused:
            raise RefusedError(
                f"refusing to prune {', '.join(f'v{n}' for n in refused)}: live, last known "
                "good, being deployed, quarantined, proposed by a change request, or the newest "
                "version",
                hint="nothing was pruned; 'lastgood prune --dry-run' shows what may go",
            )
        doomed &= {n for (n,) in session.rows("SELECT number FROM versions")}
        sweep = _Sweep(session, trees, doomed)
        result = Pruned(tuple(sorted(doomed)), len(sweep.trees), len(sweep.blobs),
                        sweep.freed_bytes)  # fmt: skip
        if not dry_run:
            sweep.apply(doomed)
    if not dry_run:
        trees.forget()
        if result.versions:
            store.db.compact()
    return result


def _protected(session: Session) -> set[int]:
    protected = {n for (n,) in session.rows("SELECT max(number) FROM versions") if n is not None}
    for live, last_good in session.rows("SELECT live_version, last_good FROM environments"):
        protected.update(n for n in (live, last_good) if n is not None)
    for ends in session.rows(
        "SELECT from_version, to_version FROM deployments WHERE status = :running",
        {"running": "running"},
    ):
        protected.update(n for n in ends if n is not None)
    bad = session.rows("SELECT version FROM verdicts WHERE verdict = :bad", {"bad": BAD})
    protected.update(n for (n,) in bad)  # quarantine: the same content is refused again
    states, params = statements.among("status", UNFINISHED_REQUESTS)
    sql = f"SELECT version FROM change_requests WHERE status IN {states}"
    requested = session.rows(sql, params)
    protected.update(n for (n,) in requested)  # a request that may still go live
    return protected


class _Sweep:
    """Mark what the kept versions reach; what is left over goes."""

    def __init__(self, session: Session, trees: Trees, doomed: set[int]) -> None:
        self.session = session
        reached_trees: set[str] = set()
        reached_blobs: set[str] = set()
        for number, root in session.rows("SELECT number, tree FROM versions ORDER BY number"):
            if number in doomed or root is None:
                continue
            digest = bytes(root).hex()
            reached_trees.update(trees.folders(session, digest).values())
            reached_blobs.update(trees.manifest(session, digest).values())
        rows = session.rows("SELECT hash, base, length(data) FROM trees")
        stored = {bytes(h).hex(): (None if b is None else bytes(b).hex(), size)
                  for h, b, size in rows}  # fmt: skip
        self.trees = {digest for digest in stored if digest not in reached_trees}
        self.rebased = sorted(
            digest for digest in reached_trees if stored.get(digest, (None, 0))[0] in self.trees
        )
        self.reached_trees, self.tree_cache = reached_trees, trees
        used_by_documents = {h for (h,) in session.rows(
            "SELECT DISTINCT content_hash FROM document_versions")}  # fmt: skip
        self.blobs: set[str] = set()
        self.released: list[str] = []
        self.freed_bytes = sum(stored[digest][1] for digest in self.trees)
        for digest, used, size in session.rows("SELECT hash, in_versions, length(data) FROM blobs"):
            if not used or digest in reached_blobs:
                continue
            if digest in used_by_documents:
                self.released.append(digest)
            else:
                self.blobs.add(digest)
                self.freed_bytes += int(size)

    def apply(self, doomed: set[int]) -> None:
        """Drop the versions, rewrite the rebased trees whole, delete the unreached (writes)."""
        session = self.session
        session.run_many("DELETE FROM versions WHERE number = :n", [{"n": n} for n in doomed])
        session.run_many("DELETE FROM verdicts WHERE version = :n", [{"n": n} for n in doomed])
        for digest in self.rebased:
            entries, _depth = self.tree_cache.read(session, digest)
            session.run(
                "UPDATE trees SET base = NULL, depth = 0, data = :data WHERE hash = :hash",
                {"hash": key(digest), "data": objects.pack_tree(objects.encode(entries))},
            )
        session.run_many("DELETE FROM trees WHERE hash = :h", [{"h": key(d)} for d in self.trees])
        session.run_many("DELETE FROM blobs WHERE hash = :h", [{"h": d} for d in self.blobs])
        session.run_many(
            "UPDATE blobs SET in_versions = :no WHERE hash = :h",
            [{"h": d, "no": False} for d in self.released],
        )
