"""The SQLite fast lane: the store's public API on the stdlib ``sqlite3`` module.

Why it exists: ``import sqlalchemy`` alone costs more than a whole do-it-yourself git rollback,
and a rollback must be quicker than the manual way. :class:`LiteStore` speaks to the same
tables (:mod:`lastgood.store.tables` owns them, the Alembic migrations create them) with the
same connection settings and the same semantics as :class:`lastgood.store.database.Store`.
SQLAlchemy and Alembic are imported only when a database is new or behind and needs migrating.

Every transaction is ``BEGIN IMMEDIATE`` (WAL mode), so concurrent processes queue on the write
lock rather than deadlock. One connection per store, guarded by a lock so threads may share it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, unquote

from lastgood.bundle import Bundle, file_hash, manifest_hash
from lastgood.errors import StoreError
from lastgood.record import Record as BaseRecord
from lastgood.record import replace as replace_record
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
from lastgood.settings import mask_url
from lastgood.store import common
from lastgood.store.statements import (
    RecordT,
    columns_of,
    insert_many,
    insert_row,
    select,
    update,
    values_of,
)

SCHEMA_HEAD = "0004"
"""Mirror of :data:`lastgood.store.schema.HEAD`, which cannot be imported without SQLAlchemy.

``tests/test_store.py`` fails when the two differ, so a new migration cannot forget this line.
"""

_SCHEMES = ("sqlite://", "sqlite+pysqlite://")
_MEMORY = ("", ":memory:")


VERSION_COLUMNS = columns_of(VersionInfo)
ENVIRONMENT_COLUMNS = columns_of(EnvState)
DEPLOYMENT_COLUMNS = columns_of(Deployment)
CHECK_COLUMNS = columns_of(CheckRecord)
EVENT_COLUMNS = columns_of(EventRecord)
LEASE_COLUMNS = columns_of(Lease)
DOCUMENT_COLUMNS = columns_of(DocumentVersion)
DELIVERY_COLUMNS = columns_of(Delivery)
TOKEN_COLUMNS = columns_of(ApiToken)
CONSUMER_COLUMNS = columns_of(Consumer)
SESSION_COLUMNS = columns_of(WebSession)


class SqliteLocation(BaseRecord):
    """Where a sqlite URL points: what ``sqlite3.connect`` gets, and the same database for
    SQLAlchemy (used only to run migrations)."""

    database: str
    uri: bool
    engine_url: str


def sqlite_location(url: str) -> SqliteLocation | None:
    """Parse ``url`` the way SQLAlchemy's pysqlite dialect does, or None when LiteStore cannot
    serve it (another database, a host part, or query options), leaving it to :class:`Store`.

    ``sqlite:///relative.db`` and ``sqlite:////abs.db`` name files (made absolute, as SQLAlchemy
    does); ``sqlite://`` and ``sqlite:///:memory:`` mean a private in-memory database. That one is
    opened under a random name on SQLite's ``memdb`` VFS, so the migration (run through a second,
    SQLAlchemy, connection) reaches the very database this store then uses.
    """
    scheme = next((s for s in _SCHEMES if url.startswith(s)), None)
    if scheme is None or "?" in url:
        return None
    rest = url[len(scheme) :]
    if rest and not rest.startswith("/"):
        return None  # a host, user or port: SQLAlchemy rejects it with its own message
    database = unquote(rest[1:])
    if database in _MEMORY:
        target = f"file:/lastgood-memory-{os.urandom(8).hex()}?vfs=memdb"
        return SqliteLocation(target, True, f"sqlite:///{target}&uri=true")
    path = os.path.abspath(database)
    return SqliteLocation(path, False, f"sqlite:///{quote(path)}")  # SQLAlchemy unquotes it


class LiteStore:
    """Versions, ledger and leases in one SQLite file, through the stdlib ``sqlite3`` module."""

    def __init__(self, url: str) -> None:
        location = sqlite_location(url)
        if location is None:
            raise StoreError(
                f"the SQLite fast lane cannot open {mask_url(url)}",
                hint="open it with lastgood.store.open_store, which picks the right backend",
            )
        self.url = url
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = self._connect(location)
        try:
            self._ensure_schema(location)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection (idempotent); later calls raise StoreError."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # ---- connection, schema and transactions ------------------------------------------------

    def _connect(self, location: SqliteLocation) -> sqlite3.Connection:
        """Open with the same settings as :func:`lastgood.store.database.create_engine`."""
        busy = common.store_timeouts().busy_milliseconds
        with self._wrap("open"):
            connection = sqlite3.connect(
                location.database,
                timeout=busy / 1000,
                isolation_level=None,
                uri=location.uri,
                check_same_thread=False,
            )
        try:
            with self._wrap("open"):
                for pragma in ("journal_mode=WAL", "synchronous=NORMAL", f"busy_timeout={busy}"):
                    connection.execute(f"PRAGMA {pragma}").close()
        except BaseException:
            connection.close()
            raise
        return connection

    def _revision(self) -> str | None:
        """The Alembic revision in the database, or None for a new one.

        Only a missing table means "new": a locked or unreadable database is a StoreError now,
        rather than a second wait in the migration that would follow.
        """
        try:
            with self._lock:
                row = self._db().execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise common.store_failure(self.url, "open", exc) from exc
        except sqlite3.Error:
            return None  # not a database at all: the migration says so in its own words
        return None if row is None else str(row[0])

    def _ensure_schema(self, location: SqliteLocation) -> None:
        """Migrate through SQLAlchemy and Alembic, but only when the database is new or behind."""
        if self._revision() == SCHEMA_HEAD:
            return
        from sqlalchemy.exc import SQLAlchemyError

        from lastgood.store import schema
        from lastgood.store.database import create_engine

        engine = create_engine(location.engine_url)
        try:
            schema.upgrade(engine)
        except SQLAlchemyError as exc:
            raise common.store_failure(self.url, "open", exc) from exc
        finally:
            engine.dispose()

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._connection

    @contextmanager
    def _wrap(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise common.store_failure(self.url, doing, exc) from exc

    @contextmanager
    def _tx(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back otherwise."""
        with self._lock, self._wrap(doing):
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    # ---- versions ----------------------------------------------------------------------

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
        """Record ``bundle`` as the next version; blobs already stored are not written again.

        With ``unless_head``, the newest version is returned instead when it already holds this
        content (checked inside the same ``BEGIN IMMEDIATE`` transaction)."""
        manifest = bundle.manifest
        blobs = {blob: bundle.files[path] for path, blob in manifest.items()}
        with self._tx("record a version") as db:
            if unless_head:
                newest = select(db, VersionInfo, "versions", {}, order="number DESC", limit=1)
                if newest and newest[0].content_hash == bundle.content_hash:
                    return newest[0]
            db.executemany(
                "INSERT OR IGNORE INTO blobs (hash, size, data) VALUES (?, ?, ?)",
                [(blob, len(data), data) for blob, data in blobs.items()],
            )
            head = db.execute("SELECT max(number) FROM versions").fetchone()[0]
            info = VersionInfo(
                number=(head or 0) + 1,
                content_hash=manifest_hash(manifest.items()),
                parent=head,
                author=author,
                message=message,
                source=source,
                created_at=at or time.time(),
                file_count=len(manifest),
                total_size=bundle.size,
            )
            insert_many(db, "versions", VERSION_COLUMNS, [values_of(info, VERSION_COLUMNS)])
            db.executemany(
                "INSERT INTO version_files (version, path, blob) VALUES (?, ?, ?)",
                [(info.number, path, blob) for path, blob in manifest.items()],
            )
        return info

    def head(self) -> VersionInfo | None:
        """The newest version, or None in an empty store."""
        rows = self._records("read versions", VersionInfo, "versions", order="number DESC", limit=1)
        return rows[0] if rows else None

    def version(self, number: int) -> VersionInfo:
        """Version ``number``, or NotFoundError."""
        rows = self._records("read a version", VersionInfo, "versions", {"number": number})
        if not rows:
            raise common.version_not_found(number)
        return rows[0]

    def versions(self, *, limit: int | None = None, before: int | None = None) -> list[VersionInfo]:
        """Versions newest first."""
        where = "" if before is None else " WHERE number < ?"
        sql = f"SELECT {', '.join(VERSION_COLUMNS)} FROM versions{where} ORDER BY number DESC"
        params: list[Any] = [] if before is None else [before]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._tx("read versions") as db:
            return [VersionInfo(*row) for row in db.execute(sql, params)]

    def versions_by_hash(self, prefix: str) -> list[VersionInfo]:
        """Versions whose content hash starts with ``prefix``, newest first."""
        sql = (
            f"SELECT {', '.join(VERSION_COLUMNS)} FROM versions WHERE content_hash LIKE ? "
            "ORDER BY number DESC"
        )
        with self._tx("find versions") as db:
            return [VersionInfo(*row) for row in db.execute(sql, (prefix.lower() + "%",))]

    def manifest(self, number: int) -> dict[str, str]:
        """Path → blob hash of version ``number``."""
        sql = "SELECT path, blob FROM version_files WHERE version = ?"
        with self._tx("read a manifest") as db:
            return dict(db.execute(sql, (number,)).fetchall())

    def files(self, number: int) -> dict[str, bytes]:
        """Path → bytes of version ``number``, verified against the stored hashes."""
        sql = (
            "SELECT version_files.path, blobs.hash, blobs.data FROM version_files "
            "JOIN blobs ON blobs.hash = version_files.blob WHERE version_files.version = ?"
        )
        with self._tx("read files") as db:
            rows = db.execute(sql, (number,)).fetchall()
        return {
            path: common.verified_blob(bytes(data), blob, path=path, number=number)
            for path, blob, data in rows
        }

    def blob_count(self) -> int:
        with self._tx("count blobs") as db:
            return int(db.execute("SELECT count(*) FROM blobs").fetchone()[0] or 0)

    # ---- environments and verdicts ----------------------------------------------------------

    def env_state(self, env: str) -> EnvState:
        """What the ledger believes about ``env`` (empty state when never deployed)."""
        rows = self._records("read an environment", EnvState, "environments", {"name": env})
        return rows[0] if rows else EnvState(env, None, None, None)

    def set_env(self, env: str, **values: int | None) -> None:
        """Update ``live_version`` and/or ``last_good`` of ``env``, creating its row if needed."""
        changes: dict[str, Any] = {**values, "updated_at": time.time()}
        with self._tx("update an environment") as db:
            if not update(db, "environments", ENVIRONMENT_COLUMNS, changes, {"name": env}):
                insert_row(db, "environments", ENVIRONMENT_COLUMNS, {"name": env, **changes})

    def verdicts(self, env: str) -> dict[int, str]:
        """Version → verdict (good, bad, withdrawn) in ``env``."""
        sql = "SELECT version, verdict FROM verdicts WHERE env = ?"
        with self._tx("read verdicts") as db:
            return dict(db.execute(sql, (env,)).fetchall())

    def verdict_times(self, env: str) -> dict[int, tuple[str, float]]:
        """Version → (verdict, when) in ``env``."""
        sql = "SELECT version, verdict, at FROM verdicts WHERE env = ?"
        with self._tx("read verdicts") as db:
            return {version: (verdict, at) for version, verdict, at in db.execute(sql, (env,))}

    def set_verdict(
        self, env: str, version: int, verdict: str, *, deployment: int | None = None
    ) -> None:
        """Record that ``version`` is good, bad or withdrawn in ``env``."""
        changes = {"verdict": verdict, "at": time.time(), "deployment": deployment}
        key = {"env": env, "version": version}
        columns = ("env", "version", "verdict", "at", "deployment")
        with self._tx("record a verdict") as db:
            if not update(db, "verdicts", columns, changes, key):
                insert_row(db, "verdicts", columns, {**key, **changes})

    # ---- the ledger -------------------------------------------------------------------------

    def begin_deployment(self, **values: Any) -> Deployment:
        """Open a ledger record (status ``running`` unless given)."""
        row = common.deployment_row(values)
        with self._tx("open a ledger record") as db:
            new_id = insert_row(db, "deployments", DEPLOYMENT_COLUMNS, row)
            return _deployment(db, new_id)

    def update_deployment(self, deployment_id: int, **values: Any) -> Deployment:
        """Change fields of a ledger record and return it as it now stands."""
        with self._tx("update a ledger record") as db:
            if values:
                update(db, "deployments", DEPLOYMENT_COLUMNS, values, {"id": deployment_id})
            return _deployment(db, deployment_id)

    def deployment(self, deployment_id: int) -> Deployment:
        with self._tx("read a ledger record") as db:
            return _deployment(db, deployment_id)

    def deployments(
        self,
        env: str | None = None,
        *,
        limit: int | None = None,
        status: str | None = None,
        since: float | None = None,
    ) -> list[Deployment]:
        """Ledger records newest first, optionally for one environment or status, or only
        those requested at or after ``since``."""
        where = {"env": env, "status": status}
        return self._records(
            "read the ledger",
            Deployment,
            "deployments",
            where,
            order="id DESC",
            limit=limit,
            since=("requested_at", since),
        )

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        rows = [values_of(record, CHECK_COLUMNS) for record in records]
        if rows:
            with self._tx("record check results") as db:
                insert_many(db, "check_results", CHECK_COLUMNS, rows)

    def check_records(
        self, *, deployment: int | None = None, env: str | None = None, limit: int = 200
    ) -> list[CheckRecord]:
        """Check results, newest first."""
        where = {"deployment": deployment, "env": env}
        rows = self._records(
            "read check results", CheckRecord, "check_results", where, order="id DESC", limit=limit
        )
        return [replace_record(row, ok=bool(row.ok)) for row in rows]

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
        """Append one event to the ledger's event stream."""
        row = common.event_row(
            kind, message, env=env, version=version, deployment=deployment, data=data, at=at
        )
        with self._tx("record an event") as db:
            insert_row(db, "events", EVENT_COLUMNS, row)

    def events(
        self,
        env: str | None = None,
        *,
        limit: int | None = 100,
        since: float | None = None,
        kind: str | None = None,
    ) -> list[EventRecord]:
        """Events newest first, optionally of one kind or only those at or after ``since``."""
        where = {"env": env, "kind": kind}
        return self._records(
            "read events",
            EventRecord,
            "events",
            where,
            order="id DESC",
            limit=limit,
            since=("at", since),
        )

    # ---- tracked documents ------------------------------------------------------------------

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
        """Record ``content`` as the next version of document ``name`` (writes)."""
        digest = file_hash(content)
        with self._tx("record a document version") as db:
            db.execute(
                "INSERT OR IGNORE INTO blobs (hash, size, data) VALUES (?, ?, ?)",
                (digest, len(content), content),
            ).close()
            sql = "SELECT max(version) FROM document_versions WHERE name = ?"
            head = db.execute(sql, (name,)).fetchone()[0]
            record = DocumentVersion(
                name, (head or 0) + 1, digest, len(content), source, diff, added, removed,
                at or time.time(),
            )  # fmt: skip
            insert_many(
                db, "document_versions", DOCUMENT_COLUMNS, [values_of(record, DOCUMENT_COLUMNS)]
            )
        return record

    def document_versions(
        self, name: str | None = None, *, limit: int | None = 100, since: float | None = None
    ) -> list[DocumentVersion]:
        """Document versions newest first, of one document or all."""
        return self._records(
            "read document versions",
            DocumentVersion,
            "document_versions",
            {"name": name},
            order="at DESC, version DESC",
            limit=limit,
            since=("at", since),
        )

    def document_content(self, name: str, version: int) -> bytes:
        """The stored (normalized) content of one document version."""
        sql = (
            "SELECT blobs.hash, blobs.data FROM document_versions JOIN blobs "
            "ON blobs.hash = document_versions.content_hash "
            "WHERE document_versions.name = ? AND document_versions.version = ?"
        )
        with self._tx("read a document") as db:
            row = db.execute(sql, (name, version)).fetchone()
        if row is None:
            raise common.document_not_found(name, version)
        return common.verified_blob(bytes(row[1]), row[0], path=name, number=version)

    def prune_documents(self, name: str, *, keep: int, older_than: float) -> int:
        """Drop versions of ``name`` beyond the newest ``keep`` or older than ``older_than``,
        never the newest one (it is what the next change is compared with); returns how many."""
        with self._tx("prune document versions") as db:
            rows = db.execute(
                "SELECT version, at FROM document_versions WHERE name = ? ORDER BY version DESC",
                (name,),
            ).fetchall()
            doomed = common.doomed_document_versions(rows, keep=keep, older_than=older_than)
            db.executemany(
                "DELETE FROM document_versions WHERE name = ? AND version = ?",
                [(name, version) for version in doomed],
            )
            if doomed:
                db.execute(common.ORPHAN_BLOBS_SQL).close()
        return len(doomed)

    # ---- notification deliveries ------------------------------------------------------------

    def record_delivery(self, **values: Any) -> Delivery:
        """Keep one delivery attempt (writes)."""
        row = common.delivery_row(values)
        with self._tx("record a delivery") as db:
            new_id = insert_row(db, "deliveries", DELIVERY_COLUMNS, row)
        return Delivery(**{**row, "id": new_id})

    def deliveries(
        self,
        *,
        limit: int | None = 100,
        key: str | None = None,
        route: str | None = None,
        status: str | None = None,
    ) -> list[Delivery]:
        """Delivery attempts newest first, optionally for one dedupe key, route or status."""
        where = {"key": key, "route": route, "status": status}
        return self._records(
            "read deliveries", Delivery, "deliveries", where, order="id DESC", limit=limit
        )

    # ---- API tokens -------------------------------------------------------------------------

    def add_token(
        self, *, name: str, role: str, envs: str, token_hash: str, created_by: str
    ) -> ApiToken:
        """Keep a new token's hash, role and scope (writes)."""
        row = common.token_row(name, role, envs, token_hash, created_by)
        with self._tx("create a token") as db:
            new_id = insert_row(db, "api_tokens", TOKEN_COLUMNS, row)
        return ApiToken(**{**row, "id": new_id})

    def tokens(self, *, include_revoked: bool = False) -> list[ApiToken]:
        """Tokens oldest first, without the revoked ones unless asked."""
        found = self._records("read tokens", ApiToken, "api_tokens", order="id")
        return [token for token in found if include_revoked or token.revoked_at is None]

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        """The token whose secret hashes to ``token_hash``, revoked or not, or None."""
        found = self._records("read a token", ApiToken, "api_tokens", {"token_hash": token_hash})
        return found[0] if found else None

    def revoke_token(self, token_id: int) -> ApiToken:
        """Mark a token revoked from now on (writes); NotFoundError when there is none."""
        with self._tx("revoke a token") as db:
            db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), token_id),
            ).close()
            found = select(db, ApiToken, "api_tokens", {"id": token_id})
        if not found:
            raise common.token_not_found(token_id)
        return found[0]

    def switch_listener(self) -> None:
        """SQLite has no channel to announce switches on: servers on it poll."""
        return None

    # ---- consumers --------------------------------------------------------------------------

    def save_consumers(self, consumers: Iterable[Consumer]) -> None:
        """Insert or replace consumers by (env, consumer_id), all in one transaction (writes)."""
        rows = [values_of(consumer, CONSUMER_COLUMNS) for consumer in consumers]
        if not rows:
            return
        marks = ", ".join("?" for _ in CONSUMER_COLUMNS)
        sql = f"INSERT OR REPLACE INTO consumers ({', '.join(CONSUMER_COLUMNS)}) VALUES ({marks})"
        with self._tx("record consumers") as db:
            db.executemany(sql, rows)

    def consumers(
        self, env: str | None = None, *, seen_since: float | None = None
    ) -> list[Consumer]:
        """Consumers as last reported, most recently seen first; with ``seen_since``, only
        those heard from at or after it."""
        return self._records("read consumers", Consumer, "consumers", {"env": env},
                             order="seen_at DESC", since=("seen_at", seen_since))  # fmt: skip

    def forget_consumers(self, *, seen_before: float) -> int:
        """Drop consumers not seen since ``seen_before``; returns how many (writes)."""
        with self._tx("forget consumers") as db:
            cursor = db.execute("DELETE FROM consumers WHERE seen_at < ?", (seen_before,))
            count = cursor.rowcount
            cursor.close()
        return count

    # ---- web page sessions ------------------------------------------------------------------

    def save_session(self, session: WebSession) -> None:
        """Insert or replace a session by its hash (writes)."""
        marks = ", ".join("?" for _ in SESSION_COLUMNS)
        sql = f"INSERT OR REPLACE INTO web_sessions ({', '.join(SESSION_COLUMNS)}) VALUES ({marks})"
        with self._tx("record a web session") as db:
            db.execute(sql, values_of(session, SESSION_COLUMNS)).close()

    def session_by_hash(self, session_hash: str) -> WebSession | None:
        """The session whose cookie value hashes to ``session_hash``, or None."""
        found = self._records(
            "read a web session", WebSession, "web_sessions", {"session_hash": session_hash}
        )
        return found[0] if found else None

    def touch_session(self, session_hash: str, last_seen: float) -> bool:
        """Record a session's time of use (writes); False when it no longer exists."""
        with self._tx("record a web session's use") as db:
            cursor = db.execute(
                "UPDATE web_sessions SET last_seen = ? WHERE session_hash = ?",
                (last_seen, session_hash),
            )
            found = cursor.rowcount > 0
            cursor.close()
        return found

    def delete_session(self, session_hash: str) -> None:
        """Forget one session, if it is there (writes)."""
        with self._tx("end a web session") as db:
            db.execute("DELETE FROM web_sessions WHERE session_hash = ?", (session_hash,)).close()

    def forget_sessions(self, *, seen_before: float) -> int:
        """Drop sessions not used since ``seen_before``; returns how many (writes)."""
        with self._tx("forget web sessions") as db:
            cursor = db.execute("DELETE FROM web_sessions WHERE last_seen < ?", (seen_before,))
            count = cursor.rowcount
            cursor.close()
        return count

    # ---- leases -----------------------------------------------------------------------------

    def acquire_lease(
        self, name: str, *, purpose: str, holder_name: str, ttl: float, force: bool = False
    ) -> tuple[Lease, Lease | None]:
        """Take lease ``name``; returns (our lease, the lease we took over or broke, if any).

        A lease held by a process that is gone (same host, pid dead) counts as expired at once,
        so a kill -9 never blocks the next command. A live lease is broken only with ``force``.
        Read, decide and write happen in one ``BEGIN IMMEDIATE`` transaction, so no other
        process can slip in between: no compare-and-set retries are needed here.
        """
        mine = common.new_lease(name, purpose=purpose, holder_name=holder_name, ttl=ttl)
        with self._tx("take a lease") as db:
            previous = _lease(db, name)
            now = mine.acquired_at
            if previous is not None and not force and common.lease_is_alive(previous, now):
                raise common.locked_error(name, previous)
            if previous is None:
                insert_many(db, "leases", LEASE_COLUMNS, [values_of(mine, LEASE_COLUMNS)])
            else:
                changes = dict(zip(LEASE_COLUMNS, values_of(mine, LEASE_COLUMNS), strict=True))
                update(db, "leases", LEASE_COLUMNS, changes, {"name": name})
        return mine, previous

    def lease(self, name: str) -> Lease | None:
        with self._tx("read a lease") as db:
            return _lease(db, name)

    def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        """Extend our lease, or raise LeaseLostError when someone broke or took it."""
        expires = time.time() + ttl
        key = {"name": lease.name, "token": lease.token}
        with self._tx("renew a lease") as db:
            renewed = update(db, "leases", LEASE_COLUMNS, {"expires_at": expires}, key)
        if not renewed:
            raise common.lease_lost_error(lease)
        return replace_record(lease, expires_at=expires)

    def release_lease(self, lease: Lease) -> None:
        """Give the lease back (only if it is still ours)."""
        with self._tx("release a lease") as db:
            db.execute(
                "DELETE FROM leases WHERE name = ? AND token = ?", (lease.name, lease.token)
            ).close()

    # ---- reading records --------------------------------------------------------------------

    def _records(
        self,
        doing: str,
        record: type[RecordT],
        table: str,
        where: Mapping[str, Any] | None = None,
        *,
        order: str | None = None,
        limit: int | None = None,
        since: tuple[str, float | None] = ("", None),
    ) -> list[RecordT]:
        """Rows of ``table`` as ``record`` instances, in a transaction of their own."""
        with self._tx(doing) as db:
            return select(db, record, table, where or {}, order=order, limit=limit, at_least=since)


def _deployment(db: sqlite3.Connection, deployment_id: int) -> Deployment:
    rows = select(db, Deployment, "deployments", {"id": deployment_id})
    if not rows:
        raise common.deployment_not_found(deployment_id)
    return rows[0]


def _lease(db: sqlite3.Connection, name: str) -> Lease | None:
    rows = select(db, Lease, "leases", {"name": name})
    return rows[0] if rows else None
