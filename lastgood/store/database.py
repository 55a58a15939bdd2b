"""The one door to persistence: versions, blobs, environment state, the ledger and leases.

SQLAlchemy is used here and nowhere else; its exceptions are wrapped into
:class:`lastgood.errors.StoreError`. SQLite is the default (WAL, every write transaction
``BEGIN IMMEDIATE`` so concurrent processes queue rather than deadlock); PostgreSQL works the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from lastgood.bundle import Bundle, file_hash
from lastgood.errors import ConfigError, StoreError
from lastgood.record import as_dict
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
from lastgood.store import common, schema, switches
from lastgood.store import tables as t
from lastgood.store.switches import SwitchListener


def normalize_url(url: str) -> str:
    """Pick the psycopg 3 driver for bare ``postgresql://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_engine(url: str) -> Engine:
    """An engine for ``url`` with lastgood's connection settings, timeouts included."""
    url = normalize_url(url)
    timeouts = common.store_timeouts()
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(
                url, connect_args={"timeout": timeouts.busy_milliseconds / 1000}
            )
            sa_event.listen(engine, "connect", _sqlite_settings(timeouts))
            sa_event.listen(engine, "begin", _sqlite_begin)
            return engine
        arguments = _postgres_arguments(sa.make_url(url), timeouts) if _is_postgres(url) else {}
        return sa.create_engine(url, pool_pre_ping=True, connect_args=arguments)
    except ModuleNotFoundError as exc:
        postgres = url.startswith("postgresql")
        raise StoreError(
            f"the driver for {mask_url(url)} is not installed ({exc.name})",
            hint="run: pip install 'lastgood[postgres]'"
            if postgres
            else f"install the Python package that provides {exc.name}",
        ) from exc
    except (SQLAlchemyError, ValueError) as exc:
        raise ConfigError(
            f"cannot use store URL {mask_url(url)}: {exc}",
            hint="give an SQLAlchemy URL such as sqlite:///path/store.db or "
            "postgresql://user@host/db (--store, LASTGOOD_STORE or store = in lastgood.toml)",
        ) from exc


def _is_postgres(url: str) -> bool:
    """PostgreSQL through a libpq driver (psycopg 3 or 2), which takes the timeouts below."""
    return url.startswith(("postgresql+psycopg://", "postgresql+psycopg2://"))


def _postgres_arguments(url: sa.URL, timeouts: common.StoreTimeouts) -> dict[str, Any]:
    """psycopg's connect timeout and a server-side statement timeout, so a server that accepts
    connections but never answers, or a lock held for ever, ends in an error instead of a hang.

    Options the URL already carries win: its ``connect_timeout``, and its ``options``, which
    come after ours (PostgreSQL keeps the last ``-c`` of a setting).
    """
    arguments: dict[str, Any] = {}
    if timeouts.connect > 0 and "connect_timeout" not in url.query:
        arguments["connect_timeout"] = common.connect_seconds(timeouts)
    if timeouts.statement > 0:
        own = f"-c statement_timeout={max(1, round(timeouts.statement * 1000))}"
        theirs = url.query.get("options")
        theirs = " ".join(theirs) if isinstance(theirs, tuple) else theirs
        arguments["options"] = f"{own} {theirs}" if theirs else own
    return arguments


def _sqlite_settings(timeouts: common.StoreTimeouts) -> Callable[[Any, Any], None]:
    """The connect hook for SQLite: WAL, and a busy timeout of the statement timeout."""

    def connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={timeouts.busy_milliseconds}")
        cursor.close()

    return connect


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    """Versions, ledger and leases in one SQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        with self._wrap("open"):
            schema.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _wrap(self, doing: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise common.store_failure(self.url, doing, exc) from exc

    @contextmanager
    def _tx(self, doing: str) -> Iterator[Connection]:
        with self._wrap(doing), self.engine.begin() as connection:
            yield connection

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
        content. Two processes recording at once (PostgreSQL) race for the next number: the
        loser retries, and then finds the winner's version.
        """
        for _attempt in range(5):
            try:
                with self._tx("record a version") as db:
                    return self._add_version(db, bundle, author, message, source, at, unless_head)
            except StoreError as exc:
                if not isinstance(exc.__cause__, IntegrityError):
                    raise
        raise StoreError("could not record a version: other processes kept recording at once")

    def _add_version(
        self,
        db: Connection,
        bundle: Bundle,
        author: str,
        message: str,
        source: str,
        at: float | None,
        unless_head: bool,
    ) -> VersionInfo:
        manifest = bundle.manifest
        head_row = db.execute(
            sa.select(t.versions).order_by(t.versions.c.number.desc()).limit(1)
        ).first()
        if unless_head and head_row is not None and head_row.content_hash == bundle.content_hash:
            return VersionInfo(**head_row._mapping)
        self._insert_blobs(db, {h: bundle.files[p] for p, h in manifest.items()})
        head = None if head_row is None else head_row.number
        row = {
            "number": (head or 0) + 1,
            "content_hash": bundle.content_hash,
            "parent": head,
            "author": author,
            "message": message,
            "source": source,
            "created_at": at or time.time(),
            "file_count": len(manifest),
            "total_size": bundle.size,
        }
        db.execute(t.versions.insert(), row)
        if manifest:
            db.execute(
                t.version_files.insert(),
                [{"version": row["number"], "path": p, "blob": h} for p, h in manifest.items()],
            )
        return VersionInfo(**row)

    def _insert_blobs(self, db: Connection, blobs: dict[str, bytes]) -> None:
        """Insert blobs, skipping any already stored (even by a concurrent transaction)."""
        if not blobs:
            return
        rows = [{"hash": h, "size": len(d), "data": d} for h, d in blobs.items()]
        dialect = db.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            known = {
                r[0] for r in db.execute(sa.select(t.blobs.c.hash).where(t.blobs.c.hash.in_(blobs)))
            }
            fresh = [r for r in rows if r["hash"] not in known]
            if fresh:
                db.execute(t.blobs.insert(), fresh)
            return
        db.execute(insert(t.blobs).on_conflict_do_nothing(index_elements=["hash"]), rows)

    def head(self) -> VersionInfo | None:
        """The newest version, or None in an empty store."""
        with self._tx("read versions") as db:
            row = db.execute(
                sa.select(t.versions).order_by(t.versions.c.number.desc()).limit(1)
            ).first()
        return None if row is None else VersionInfo(**row._mapping)

    def version(self, number: int) -> VersionInfo:
        """Version ``number``, or NotFoundError."""
        with self._tx("read a version") as db:
            row = db.execute(sa.select(t.versions).where(t.versions.c.number == number)).first()
        if row is None:
            raise common.version_not_found(number)
        return VersionInfo(**row._mapping)

    def versions(self, *, limit: int | None = None, before: int | None = None) -> list[VersionInfo]:
        """Versions newest first."""
        query = sa.select(t.versions).order_by(t.versions.c.number.desc())
        if before is not None:
            query = query.where(t.versions.c.number < before)
        if limit is not None:
            query = query.limit(limit)
        with self._tx("read versions") as db:
            return [VersionInfo(**row._mapping) for row in db.execute(query)]

    def versions_by_hash(self, prefix: str) -> list[VersionInfo]:
        """Versions whose content hash starts with ``prefix``, newest first."""
        query = (
            sa.select(t.versions)
            .where(t.versions.c.content_hash.like(prefix.lower() + "%"))
            .order_by(t.versions.c.number.desc())
        )
        with self._tx("find versions") as db:
            return [VersionInfo(**row._mapping) for row in db.execute(query)]

    def manifest(self, number: int) -> dict[str, str]:
        """Path → blob hash of version ``number``."""
        query = sa.select(t.version_files.c.path, t.version_files.c.blob).where(
            t.version_files.c.version == number
        )
        with self._tx("read a manifest") as db:
            return {row.path: row.blob for row in db.execute(query)}

    def files(self, number: int) -> dict[str, bytes]:
        """Path → bytes of version ``number``, verified against the stored hashes."""
        query = (
            sa.select(t.version_files.c.path, t.blobs.c.hash, t.blobs.c.data)
            .join(t.blobs, t.blobs.c.hash == t.version_files.c.blob)
            .where(t.version_files.c.version == number)
        )
        with self._tx("read files") as db:
            rows = list(db.execute(query))
        return {
            row.path: common.verified_blob(bytes(row.data), row.hash, path=row.path, number=number)
            for row in rows
        }

    def blob_count(self) -> int:
        with self._tx("count blobs") as db:
            return int(db.execute(sa.select(sa.func.count()).select_from(t.blobs)).scalar() or 0)

    # ---- environments and verdicts ----------------------------------------------------------

    def env_state(self, env: str) -> EnvState:
        """What the ledger believes about ``env`` (empty state when never deployed)."""
        with self._tx("read an environment") as db:
            row = db.execute(sa.select(t.environments).where(t.environments.c.name == env)).first()
        if row is None:
            return EnvState(env, None, None, None)
        return EnvState(row.name, row.live_version, row.last_good, row.updated_at)

    def set_env(self, env: str, **values: int | None) -> None:
        """Update ``live_version`` and/or ``last_good`` of ``env``, creating its row if needed."""
        values_with_time: dict[str, Any] = {**values, "updated_at": time.time()}
        with self._tx("update an environment") as db:
            updated = db.execute(
                t.environments.update()
                .where(t.environments.c.name == env)
                .values(**values_with_time)
            ).rowcount
            if not updated:
                db.execute(t.environments.insert().values(name=env, **values_with_time))

    def verdicts(self, env: str) -> dict[int, str]:
        """Version → verdict (good, bad, withdrawn) in ``env``."""
        query = sa.select(t.verdicts.c.version, t.verdicts.c.verdict).where(t.verdicts.c.env == env)
        with self._tx("read verdicts") as db:
            return {row.version: row.verdict for row in db.execute(query)}

    def verdict_times(self, env: str) -> dict[int, tuple[str, float]]:
        """Version → (verdict, when) in ``env``."""
        query = sa.select(t.verdicts).where(t.verdicts.c.env == env)
        with self._tx("read verdicts") as db:
            return {row.version: (row.verdict, row.at) for row in db.execute(query)}

    def set_verdict(
        self, env: str, version: int, verdict: str, *, deployment: int | None = None
    ) -> None:
        """Record that ``version`` is good, bad or withdrawn in ``env``."""
        now = time.time()
        with self._tx("record a verdict") as db:
            updated = db.execute(
                t.verdicts.update()
                .where(t.verdicts.c.env == env, t.verdicts.c.version == version)
                .values(verdict=verdict, at=now, deployment=deployment)
            ).rowcount
            if not updated:
                db.execute(
                    t.verdicts.insert().values(
                        env=env, version=version, verdict=verdict, at=now, deployment=deployment
                    )
                )

    # ---- the ledger -------------------------------------------------------------------------

    def begin_deployment(self, **values: Any) -> Deployment:
        """Open a ledger record (status ``running`` unless given)."""
        row = common.deployment_row(values)
        with self._tx("open a ledger record") as db:
            new_id = db.execute(t.deployments.insert().values(**row)).inserted_primary_key[0]
        return self.deployment(int(new_id))

    def update_deployment(self, deployment_id: int, **values: Any) -> Deployment:
        """Change fields of a ledger record and return it as it now stands.

        Setting ``activated_at`` on PostgreSQL also announces the switch to every server on
        the store (``NOTIFY``, delivered when this transaction commits; see
        :mod:`lastgood.store.switches`)."""
        with self._tx("update a ledger record") as db:
            db.execute(
                t.deployments.update().where(t.deployments.c.id == deployment_id).values(**values)
            )
            if values.get("activated_at") is not None and self._listens:
                where = t.deployments.c.id == deployment_id
                env = db.execute(sa.select(t.deployments.c.env).where(where)).scalar()
                if env is not None:
                    switches.announce(db, env)
        return self.deployment(deployment_id)

    @property
    def _listens(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def switch_listener(self) -> SwitchListener | None:
        """A listener for switches announced on this store; None unless it is PostgreSQL."""
        if not self._listens:
            return None
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return SwitchListener(dsn, self.url)

    def deployment(self, deployment_id: int) -> Deployment:
        with self._tx("read a ledger record") as db:
            row = db.execute(
                sa.select(t.deployments).where(t.deployments.c.id == deployment_id)
            ).first()
        if row is None:
            raise common.deployment_not_found(deployment_id)
        return Deployment(**row._mapping)

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
        query = sa.select(t.deployments).order_by(t.deployments.c.id.desc())
        if env is not None:
            query = query.where(t.deployments.c.env == env)
        if status is not None:
            query = query.where(t.deployments.c.status == status)
        if since is not None:
            query = query.where(t.deployments.c.requested_at >= since)
        if limit is not None:
            query = query.limit(limit)
        with self._tx("read the ledger") as db:
            return [Deployment(**row._mapping) for row in db.execute(query)]

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        rows = [record.__dict__ for record in records]
        if rows:
            with self._tx("record check results") as db:
                db.execute(t.check_results.insert(), rows)

    def check_records(
        self, *, deployment: int | None = None, env: str | None = None, limit: int = 200
    ) -> list[CheckRecord]:
        """Check results, newest first."""
        query = sa.select(t.check_results).order_by(t.check_results.c.id.desc()).limit(limit)
        if deployment is not None:
            query = query.where(t.check_results.c.deployment == deployment)
        if env is not None:
            query = query.where(t.check_results.c.env == env)
        with self._tx("read check results") as db:
            rows = list(db.execute(query))
        return [CheckRecord(**{k: v for k, v in r._mapping.items() if k != "id"}) for r in rows]

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
            db.execute(t.events.insert().values(**row))

    def events(
        self,
        env: str | None = None,
        *,
        limit: int | None = 100,
        since: float | None = None,
        kind: str | None = None,
    ) -> list[EventRecord]:
        """Events newest first, optionally of one kind or only those at or after ``since``."""
        query = sa.select(t.events).order_by(t.events.c.id.desc()).limit(limit)
        if env is not None:
            query = query.where(t.events.c.env == env)
        if kind is not None:
            query = query.where(t.events.c.kind == kind)
        if since is not None:
            query = query.where(t.events.c.at >= since)
        with self._tx("read events") as db:
            return [EventRecord(**row._mapping) for row in db.execute(query)]

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
        """Record ``content`` as the next version of document ``name`` (writes); a concurrent
        writer of the same document makes the loser retry with the next number."""
        digest = file_hash(content)
        for _attempt in range(5):
            try:
                with self._tx("record a document version") as db:
                    self._insert_blobs(db, {digest: content})
                    head = db.execute(
                        sa.select(sa.func.max(t.document_versions.c.version)).where(
                            t.document_versions.c.name == name
                        )
                    ).scalar()
                    record = DocumentVersion(
                        name, (head or 0) + 1, digest, len(content), source, diff, added,
                        removed, at or time.time(),
                    )  # fmt: skip
                    db.execute(t.document_versions.insert().values(**as_dict(record)))
                    return record
            except StoreError as exc:
                if not isinstance(exc.__cause__, IntegrityError):
                    raise
        raise StoreError(f"could not record a version of document {name!r}: too many writers")

    def document_versions(
        self, name: str | None = None, *, limit: int | None = 100, since: float | None = None
    ) -> list[DocumentVersion]:
        """Document versions newest first, of one document or all."""
        c = t.document_versions.c
        query = sa.select(t.document_versions).order_by(c.at.desc(), c.version.desc()).limit(limit)
        if name is not None:
            query = query.where(c.name == name)
        if since is not None:
            query = query.where(c.at >= since)
        with self._tx("read document versions") as db:
            return [DocumentVersion(**row._mapping) for row in db.execute(query)]

    def document_content(self, name: str, version: int) -> bytes:
        """The stored (normalized) content of one document version."""
        c = t.document_versions.c
        query = (
            sa.select(t.blobs.c.hash, t.blobs.c.data)
            .join(t.document_versions, c.content_hash == t.blobs.c.hash)
            .where(c.name == name, c.version == version)
        )
        with self._tx("read a document") as db:
            row = db.execute(query).first()
        if row is None:
            raise common.document_not_found(name, version)
        return common.verified_blob(bytes(row.data), row.hash, path=name, number=version)

    def prune_documents(self, name: str, *, keep: int, older_than: float) -> int:
        """Drop versions of ``name`` beyond the newest ``keep`` or older than ``older_than``,
        never the newest one; returns how many."""
        c = t.document_versions.c
        with self._tx("prune document versions") as db:
            rows = db.execute(
                sa.select(c.version, c.at).where(c.name == name).order_by(c.version.desc())
            ).all()
            doomed = common.doomed_document_versions(
                [tuple(row) for row in rows], keep=keep, older_than=older_than
            )
            if doomed:
                db.execute(
                    t.document_versions.delete().where(c.name == name, c.version.in_(doomed))
                )
                db.execute(sa.text(common.ORPHAN_BLOBS_SQL))
        return len(doomed)

    # ---- notification deliveries ------------------------------------------------------------

    def record_delivery(self, **values: Any) -> Delivery:
        """Keep one delivery attempt (writes)."""
        row = common.delivery_row(values)
        with self._tx("record a delivery") as db:
            new_id = db.execute(t.deliveries.insert().values(**row)).inserted_primary_key[0]
        return Delivery(**{**row, "id": int(new_id)})

    def deliveries(
        self,
        *,
        limit: int | None = 100,
        key: str | None = None,
        route: str | None = None,
        status: str | None = None,
    ) -> list[Delivery]:
        """Delivery attempts newest first, optionally for one dedupe key, route or status."""
        c = t.deliveries.c
        query = sa.select(t.deliveries).order_by(c.id.desc()).limit(limit)
        for column, value in ((c.key, key), (c.route, route), (c.status, status)):
            if value is not None:
                query = query.where(column == value)
        with self._tx("read deliveries") as db:
            return [Delivery(**row._mapping) for row in db.execute(query)]

    # ---- API tokens -------------------------------------------------------------------------

    def add_token(
        self, *, name: str, role: str, envs: str, token_hash: str, created_by: str
    ) -> ApiToken:
        """Keep a new token's hash, role and scope (writes)."""
        row = common.token_row(name, role, envs, token_hash, created_by)
        with self._tx("create a token") as db:
            new_id = db.execute(t.api_tokens.insert().values(**row)).inserted_primary_key[0]
        return ApiToken(**{**row, "id": int(new_id)})

    def tokens(self, *, include_revoked: bool = False) -> list[ApiToken]:
        """Tokens oldest first, without the revoked ones unless asked."""
        query = sa.select(t.api_tokens).order_by(t.api_tokens.c.id)
        if not include_revoked:
            query = query.where(t.api_tokens.c.revoked_at.is_(None))
        with self._tx("read tokens") as db:
            return [ApiToken(**row._mapping) for row in db.execute(query)]

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        """The token whose secret hashes to ``token_hash``, revoked or not, or None."""
        query = sa.select(t.api_tokens).where(t.api_tokens.c.token_hash == token_hash)
        with self._tx("read a token") as db:
            row = db.execute(query).first()
        return None if row is None else ApiToken(**row._mapping)

    def revoke_token(self, token_id: int) -> ApiToken:
        """Mark a token revoked from now on (writes); NotFoundError when there is none."""
        c = t.api_tokens.c
        with self._tx("revoke a token") as db:
            db.execute(
                t.api_tokens.update()
                .where(c.id == token_id, c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            row = db.execute(sa.select(t.api_tokens).where(c.id == token_id)).first()
        if row is None:
            raise common.token_not_found(token_id)
        return ApiToken(**row._mapping)

    # ---- consumers --------------------------------------------------------------------------

    def save_consumers(self, consumers: Iterable[Consumer]) -> None:
        """Insert or replace consumers by (env, consumer_id), all in one transaction (writes)."""
        rows = [as_dict(consumer) for consumer in consumers]
        if not rows:
            return
        key = sa.tuple_(t.consumers.c.env, t.consumers.c.consumer_id)
        with self._tx("record consumers") as db:
            for start in range(0, len(rows), 500):  # a fleet's reports in a few statements
                batch = rows[start : start + 500]
                done = [(row["env"], row["consumer_id"]) for row in batch]
                db.execute(t.consumers.delete().where(key.in_(done)))
                db.execute(t.consumers.insert(), batch)

    def consumers(
        self, env: str | None = None, *, seen_since: float | None = None
    ) -> list[Consumer]:
        """Consumers as last reported, most recently seen first; with ``seen_since``, only
        those heard from at or after it."""
        query = sa.select(t.consumers).order_by(t.consumers.c.seen_at.desc())
        if env is not None:
            query = query.where(t.consumers.c.env == env)
        if seen_since is not None:
            query = query.where(t.consumers.c.seen_at >= seen_since)
        with self._tx("read consumers") as db:
            return [Consumer(**row._mapping) for row in db.execute(query)]

    def forget_consumers(self, *, seen_before: float) -> int:
        """Drop consumers not seen since ``seen_before``; returns how many (writes)."""
        with self._tx("forget consumers") as db:
            done = db.execute(t.consumers.delete().where(t.consumers.c.seen_at < seen_before))
        return int(done.rowcount or 0)

    # ---- web page sessions ------------------------------------------------------------------

    def save_session(self, session: WebSession) -> None:
        """Insert or replace a session by its hash (writes)."""
        sessions = t.web_sessions
        with self._tx("record a web session") as db:
            db.execute(sessions.delete().where(sessions.c.session_hash == session.session_hash))
            db.execute(sessions.insert().values(**as_dict(session)))

    def session_by_hash(self, session_hash: str) -> WebSession | None:
        """The session whose cookie value hashes to ``session_hash``, or None."""
        query = sa.select(t.web_sessions).where(t.web_sessions.c.session_hash == session_hash)
        with self._tx("read a web session") as db:
            row = db.execute(query).first()
        return WebSession(**row._mapping) if row is not None else None

    def touch_session(self, session_hash: str, last_seen: float) -> bool:
        """Record a session's time of use (writes); False when it no longer exists."""
        sessions = t.web_sessions
        with self._tx("record a web session's use") as db:
            done = db.execute(
                sessions.update()
                .where(sessions.c.session_hash == session_hash)
                .values(last_seen=last_seen)
            )
        return bool(done.rowcount)

    def delete_session(self, session_hash: str) -> None:
        """Forget one session, if it is there (writes)."""
        sessions = t.web_sessions
        with self._tx("end a web session") as db:
            db.execute(sessions.delete().where(sessions.c.session_hash == session_hash))

    def forget_sessions(self, *, seen_before: float) -> int:
        """Drop sessions not used since ``seen_before``; returns how many (writes)."""
        sessions = t.web_sessions
        with self._tx("forget web sessions") as db:
            done = db.execute(sessions.delete().where(sessions.c.last_seen < seen_before))
        return int(done.rowcount or 0)

    # ---- leases -----------------------------------------------------------------------------

    def acquire_lease(
        self, name: str, *, purpose: str, holder_name: str, ttl: float, force: bool = False
    ) -> tuple[Lease, Lease | None]:
        """Take lease ``name``; returns (our lease, the lease we took over or broke, if any).

        A lease held by a process that is gone (same host, pid dead) counts as expired at once,
        so a kill -9 never blocks the next command. A live lease is broken only with ``force``.
        """
        mine = common.new_lease(name, purpose=purpose, holder_name=holder_name, ttl=ttl)
        now = mine.acquired_at
        with self._wrap("take a lease"):
            for _attempt in range(common.LEASE_ATTEMPTS):
                previous = self.lease(name)
                if previous is not None and not force and common.lease_is_alive(previous, now):
                    raise common.locked_error(name, previous)
                if self._swap_lease(previous, mine):
                    return mine, previous
        raise common.lease_race_error(name)

    def _swap_lease(self, previous: Lease | None, mine: Lease) -> bool:
        """Compare-and-set: replace exactly ``previous`` (by token) with ``mine``."""
        with self.engine.begin() as db:
            if previous is None:
                try:
                    db.execute(t.leases.insert().values(**mine.__dict__))
                except IntegrityError:
                    return False
                return True
            return bool(
                db.execute(
                    t.leases.update()
                    .where(t.leases.c.name == mine.name, t.leases.c.token == previous.token)
                    .values(**mine.__dict__)
                ).rowcount
            )

    def lease(self, name: str) -> Lease | None:
        with self._tx("read a lease") as db:
            row = db.execute(sa.select(t.leases).where(t.leases.c.name == name)).first()
        return None if row is None else Lease(**row._mapping)

    def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        """Extend our lease, or raise LeaseLostError when someone broke or took it."""
        expires = time.time() + ttl
        with self._tx("renew a lease") as db:
            renewed = db.execute(
                t.leases.update()
                .where(t.leases.c.name == lease.name, t.leases.c.token == lease.token)
                .values(expires_at=expires)
            ).rowcount
        if not renewed:
            raise common.lease_lost_error(lease)
        return Lease(**{**lease.__dict__, "expires_at": expires})

    def release_lease(self, lease: Lease) -> None:
        """Give the lease back (only if it is still ours)."""
        with self._tx("release a lease") as db:
            db.execute(
                t.leases.delete().where(
                    t.leases.c.name == lease.name, t.leases.c.token == lease.token
                )
            )
