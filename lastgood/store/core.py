"""The store: versions, the ledger, documents, access records and leases, on any database.

Each part is written once (see :mod:`lastgood.store.base`) and runs unchanged on both
connection layers; :func:`lastgood.store.open_store` picks the layer.
"""

from __future__ import annotations

from lastgood.store.access import AccessStore
from lastgood.store.documents import DocumentStore
from lastgood.store.integrity import IntegrityStore
from lastgood.store.leases import LeaseStore
from lastgood.store.ledger import LedgerStore
from lastgood.store.pruning import PruneStore
from lastgood.store.versions import VersionStore


class Store(
    VersionStore, LedgerStore, DocumentStore, AccessStore, LeaseStore, IntegrityStore, PruneStore
):
    """Versions and blobs, environment state, verdicts, the ledger, events, documents, tokens,
    sessions, consumers and leases; the store's self-check and pruning."""
