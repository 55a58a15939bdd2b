"""What every store backend offers: the contract the verbs, the CLI and the server rely on.

Two backends satisfy it: :class:`lastgood.store.lite.LiteStore` (stdlib ``sqlite3``, the fast
lane for the embedded store) and :class:`lastgood.store.database.Store` (SQLAlchemy, any URL,
PostgreSQL for teams). It is a :class:`typing.Protocol`, so neither inherits anything and type
checkers hold both to the same signatures. Importing it is cheap: records only, no driver.

Errors, for every method: the driver's exceptions arrive as :class:`~lastgood.errors.StoreError`
naming the store by its masked URL; a missing version or ledger record is
:class:`~lastgood.errors.NotFoundError`; leases raise :class:`~lastgood.errors.LockedError` and
:class:`~lastgood.errors.LeaseLostError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from lastgood.bundle import Bundle
    from lastgood.records import (
        ApiToken,
        CheckRecord,
        Consumer,
        Delivery,
        Deployment,
        DocumentVersion,
        EnvState,
        EventRecord,
        Lease,
        VersionInfo,
        WebSession,
    )
    from lastgood.store.switches import SwitchListener


class StoreBackend(Protocol):
    """Versions and blobs, environment state, verdicts, the ledger, events and leases."""

    url: str

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""

    # versions: numbered from 1, content-addressed (a blob shared by versions is stored once)
    def add_version(
        self,
        bundle: Bundle,
        *,
        author: str,
        message: str,
        source: str,
        at: float | None = None,
        unless_head: bool = False,
    ) -> VersionInfo:
        """Record ``bundle`` as the next version (writes); with ``unless_head``, return the newest
        version instead when it already holds this content (checked in the same transaction)."""

    def head(self) -> VersionInfo | None:
        """The newest version, or None in an empty store."""

    def version(self, number: int) -> VersionInfo:
        """Version ``number``; NotFoundError when there is none."""

    def versions(self, *, limit: int | None = None, before: int | None = None) -> list[VersionInfo]:
        """Versions newest first, optionally only those numbered below ``before``."""

    def versions_by_hash(self, prefix: str) -> list[VersionInfo]:
        """Versions whose content hash starts with ``prefix``, newest first."""

    def manifest(self, number: int) -> dict[str, str]:
        """Path → blob hash of version ``number``."""

    def files(self, number: int) -> dict[str, bytes]:
        """Path → bytes of version ``number``; StoreError when a blob no longer hashes right."""

    def blob_count(self) -> int:
        """How many distinct file contents are stored."""

    # environments and verdicts
    def env_state(self, env: str) -> EnvState:
        """What the ledger believes about ``env`` (all None when never deployed)."""

    def set_env(self, env: str, **values: int | None) -> None:
        """Set ``live_version`` and/or ``last_good`` of ``env`` (writes)."""

    def verdicts(self, env: str) -> dict[int, str]:
        """Version → good, bad or withdrawn in ``env``."""

    def verdict_times(self, env: str) -> dict[int, tuple[str, float]]:
        """Version → (verdict, when) in ``env``."""

    def set_verdict(
        self, env: str, version: int, verdict: str, *, deployment: int | None = None
    ) -> None:
        """Record a verdict, replacing any earlier one for the same version (writes)."""

    # the ledger
    def begin_deployment(self, **values: Any) -> Deployment:
        """Open a ledger record, status ``running`` unless given (writes)."""

    def update_deployment(self, deployment_id: int, **values: Any) -> Deployment:
        """Change fields of a ledger record; returns it as it now stands (writes)."""

    def deployment(self, deployment_id: int) -> Deployment:
        """One ledger record; NotFoundError when there is none."""

    def deployments(
        self,
        env: str | None = None,
        *,
        limit: int | None = None,
        status: str | None = None,
        since: float | None = None,
    ) -> list[Deployment]:
        """Ledger records newest first, optionally for one environment or status, or only
        those requested at or after ``since`` (epoch seconds)."""

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        """Keep check results (writes; nothing happens for none)."""

    def check_records(
        self, *, deployment: int | None = None, env: str | None = None, limit: int = 200
    ) -> list[CheckRecord]:
        """Check results newest first."""

    def record_event(
        self,
        kind: str,
        message: str,
        *,
        env: str | None = None,
        version: int | None = None,
        deployment: int | None = None,
        data: Mapping[str, Any] | None = None,
        at: float | None = None,
    ) -> None:
        """Append one event to the ledger's event stream (writes)."""

    def events(
        self,
        env: str | None = None,
        *,
        limit: int | None = 100,
        since: float | None = None,
        kind: str | None = None,
    ) -> list[EventRecord]:
        """Events newest first, optionally of one kind or only those at or after ``since``."""

    # tracked documents (``[[watch.document]]``): numbered per document, content in ``blobs``
    def add_document_version(
        self,
        name: str,
        content: bytes,
        *,
        source: str,
        diff: str,
        added: int,
        removed: int,
        at: float | None = None,
    ) -> DocumentVersion:
        """Record ``content`` (already normalized) as the next version of ``name`` (writes)."""

    def document_versions(
        self, name: str | None = None, *, limit: int | None = 100, since: float | None = None
    ) -> list[DocumentVersion]:
        """Document versions newest first, of one document or all."""

    def document_content(self, name: str, version: int) -> bytes:
        """The stored content of one document version; NotFoundError when pruned or unknown."""

    def prune_documents(self, name: str, *, keep: int, older_than: float) -> int:
        """Apply retention to ``name`` (never dropping the newest version); returns how many
        versions went (writes)."""

    # notification delivery attempts
    def record_delivery(self, **values: Any) -> Delivery:
        """Keep one attempt: route, destination (masked), event, env, key, attempt, status,
        detail; ``at`` defaults to now (writes)."""

    def deliveries(
        self,
        *,
        limit: int | None = 100,
        key: str | None = None,
        route: str | None = None,
        status: str | None = None,
    ) -> list[Delivery]:
        """Delivery attempts newest first, optionally for one dedupe key, route or status."""

    # API tokens (the server's credentials): only hashes are stored
    def add_token(
        self, *, name: str, role: str, envs: str, token_hash: str, created_by: str
    ) -> ApiToken:
        """Keep a new token's hash, role and scope (writes)."""

    def tokens(self, *, include_revoked: bool = False) -> list[ApiToken]:
        """Tokens oldest first, without the revoked ones unless asked."""

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        """The token whose secret hashes to ``token_hash``, revoked or not, or None."""

    def revoke_token(self, token_id: int) -> ApiToken:
        """Mark a token revoked from now on (writes); NotFoundError when there is none."""

    def switch_listener(self) -> SwitchListener | None:
        """Something that hears every switch recorded in this store at once (PostgreSQL
        ``LISTEN``), or None when the store cannot announce switches (SQLite: poll instead).
        Setting a ledger record's ``activated_at`` is what announces a switch."""

    # consumers: applications reading a served environment's config through the SDK
    def save_consumers(self, consumers: Iterable[Consumer]) -> None:
        """Insert or replace consumers by (env, consumer_id), all in one transaction (writes)."""

    def consumers(
        self, env: str | None = None, *, seen_since: float | None = None
    ) -> list[Consumer]:
        """Consumers as last reported, most recently seen first; with ``seen_since``, only
        those heard from at or after it (how servers sharing a store read each other's)."""

    def forget_consumers(self, *, seen_before: float) -> int:
        """Drop consumers not seen since ``seen_before``; returns how many (writes)."""

    # web page sessions: only the hash of the cookie's value is stored
    def save_session(self, session: WebSession) -> None:
        """Insert or replace a session by its hash (writes)."""

    def session_by_hash(self, session_hash: str) -> WebSession | None:
        """The session whose cookie value hashes to ``session_hash``, or None."""

    def touch_session(self, session_hash: str, last_seen: float) -> bool:
        """Record a session's time of use (writes); False when it no longer exists (never
        brings back a session that was signed out)."""

    def delete_session(self, session_hash: str) -> None:
        """Forget one session, if it is there (writes)."""

    def forget_sessions(self, *, seen_before: float) -> int:
        """Drop sessions not used since ``seen_before``; returns how many (writes)."""

    # leases: one deploy or rollback per environment at a time, across processes and machines
    def acquire_lease(
        self, name: str, *, purpose: str, holder_name: str, ttl: float, force: bool = False
    ) -> tuple[Lease, Lease | None]:
        """Take ``name``; returns (ours, the one taken over or broken). LockedError while
        another live process holds it, unless ``force``; a dead holder's lease is free at once."""

    def lease(self, name: str) -> Lease | None:
        """The lease on ``name`` as stored, alive or not."""

    def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        """Extend our lease; LeaseLostError when it was broken or taken over."""

    def release_lease(self, lease: Lease) -> None:
        """Give the lease back, only if it is still ours."""
