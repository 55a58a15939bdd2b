"""The store: versions, the ledger, documents, access records and leases, on any database.

Each part is written once (see :mod:`lastgood.store.base`) and runs unchanged on both
connection layers; :func:`lastgood.store.open_store` picks the layer. The store's maintenance
(checking it whole, pruning) is imported only when called: a rollback never loads it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from lastgood.store.access import AccessStore
from lastgood.store.documents import DocumentStore
from lastgood.store.leases import LeaseStore
from lastgood.store.ledger import LedgerStore
from lastgood.store.requests import RequestStore
from lastgood.store.versions import VersionStore

if TYPE_CHECKING:
    from lastgood.store.integrity import Integrity
    from lastgood.store.pruning import Pruned


class Store(VersionStore, LedgerStore, DocumentStore, AccessStore, LeaseStore, RequestStore):
    """Versions and blobs, environment state, verdicts, the ledger, events, documents, tokens,
    sessions, consumers, leases and change requests; the store's self-check and pruning."""

    def check_integrity(self) -> Integrity:
        """Read every blob, tree, version and document version; report what is damaged."""
        from lastgood.store.integrity import check_integrity

        return check_integrity(self)

    def protected_versions(self) -> set[int]:
        """Versions the store never drops: the newest, every environment's live and last
        known good, both ends of every running deploy or rollback, and every version an
        unfinished change request proposes."""
        from lastgood.store.pruning import protected_versions

        return protected_versions(self)

    def drop_versions(self, numbers: Collection[int], *, dry_run: bool = False) -> Pruned:
        """Drop versions ``numbers`` and free what only they used (writes, unless
        ``dry_run``); RefusedError, with nothing dropped, when any of them is protected."""
        from lastgood.store.pruning import drop_versions

        return drop_versions(self, self.trees, numbers, dry_run=dry_run)
