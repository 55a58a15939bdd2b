"""The store's tables, as SQLAlchemy Core. Only :mod:`lastgood.store` imports this.

Times are UNIX epoch seconds as floats: exact to the microsecond on SQLite and PostgreSQL alike,
so restore times are computed in the database's own numbers with no time-zone ambiguity.
Changing a table means a new Alembic migration in ``migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    true,
)

metadata = MetaData()

blobs = Table(
    "blobs",
    metadata,
    Column("hash", String(64), primary_key=True),  # SHA-256 of the original bytes
    Column("size", Integer, nullable=False),  # of the original bytes
    Column("data", LargeBinary, nullable=False),  # as stored: see codec
    Column("codec", String(10), nullable=False, server_default="none"),  # none or zlib
    Column("in_versions", Boolean, nullable=False, server_default=true()),  # not only documents'
    sqlite_with_rowid=False,  # keyed by the hash alone: no second copy of it in an index
)

trees = Table(
    "trees",
    metadata,
    Column("hash", LargeBinary(32), primary_key=True),  # SHA-256, raw: see store/objects.py
    Column("base", LargeBinary(32), nullable=True),  # the tree this one is a delta against
    Column("depth", Integer, nullable=False),  # deltas from a whole tree (0: stored whole)
    Column("data", LargeBinary, nullable=False),
    sqlite_with_rowid=False,  # the hash is the key: no second copy of it in a rowid index
)

versions = Table(
    "versions",
    metadata,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("content_hash", String(64), nullable=False, index=True),
    Column("parent", Integer, nullable=True),
    Column("author", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("source", String(40), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("total_size", Integer, nullable=False),
    Column("tree", LargeBinary(32), nullable=True),  # the root tree (raw hash); always set
    Column("git_commit", String(64), nullable=True, index=True),  # taken from this commit
    Column("git_dirty", Boolean, nullable=True),  # the folder differed from git_commit
)

environments = Table(
    "environments",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("live_version", Integer, nullable=True),
    Column("last_good", Integer, nullable=True),
    Column("updated_at", Float, nullable=False),
)

verdicts = Table(
    "verdicts",
    metadata,
    Column("env", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("verdict", String(20), nullable=False),
    Column("at", Float, nullable=False),
    Column("deployment", Integer, nullable=True),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("env", String(100), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("status", String(30), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("source", String(40), nullable=False),
    Column("parent", Integer, nullable=True),
    Column("trigger_at", Float, nullable=True),
    Column("requested_at", Float, nullable=False),
    Column("activated_at", Float, nullable=True),
    Column("verified_at", Float, nullable=True),
    Column("failed_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("detail", Text, nullable=False, default=""),
    Index("ix_deployments_env_id", "env", "id"),
)

check_results = Table(
    "check_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment", Integer, nullable=True, index=True),
    Column("env", String(100), nullable=False),
    Column("phase", String(20), nullable=False),
    Column("round", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
    Column("duration", Float, nullable=False),
    Column("at", Float, nullable=False),
    Column("value", Float, nullable=True),
    Column("baseline", Float, nullable=True),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("env", String(100), nullable=True),
    Column("version", Integer, nullable=True),
    Column("deployment", Integer, nullable=True),
    Column("message", Text, nullable=False),
    Column("data", Text, nullable=False, default="{}"),
    Index("ix_events_env_id", "env", "id"),
    Index("ix_events_at", "at"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("token", String(64), nullable=False),
    Column("holder", String(300), nullable=False),
    Column("purpose", String(100), nullable=False),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("pid_start", String(40), nullable=False),
    Column("acquired_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

document_versions = Table(
    "document_versions",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("content_hash", String(64), ForeignKey("blobs.hash"), nullable=False),
    Column("size", Integer, nullable=False),
    Column("source", String(1000), nullable=False),
    Column("diff", Text, nullable=False),
    Column("added", Integer, nullable=False),
    Column("removed", Integer, nullable=False),
    Column("at", Float, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("route", String(200), nullable=False),
    Column("destination", String(1000), nullable=False),
    Column("event", String(40), nullable=False),
    Column("env", String(100), nullable=True),
    Column("key", String(400), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_deliveries_key_route", "key", "route"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("envs", String(2000), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked_at", Float, nullable=True),
)

consumers = Table(
    "consumers",
    metadata,
    Column("env", String(100), primary_key=True),
    Column("consumer_id", String(200), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=True),
    Column("content_hash", String(64), nullable=True),
    Column("since", Float, nullable=False),
    Column("seen_at", Float, nullable=False),
    Column("kind", String(20), nullable=False, server_default="sdk"),
    Column("health", String(20), nullable=True),
    Column("detail", String(200), nullable=True),
    Column("metrics", Text, nullable=True),
    Column("first_seen", Float, nullable=True),  # when a server first heard from it
    # the number of the flush that wrote it last (counters 'consumers'): servers read what
    # the others wrote since the newest number they have seen
    Column("written", BigInteger, nullable=False, server_default="0"),
    Index("ix_consumers_written", "written"),
)

counters = Table(
    "counters",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", BigInteger, nullable=False),  # only grows: a row is never deleted
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)

change_requests = Table(
    "change_requests",
    metadata,
    Column("number", Integer, primary_key=True, autoincrement=True),
    Column("env", String(100), nullable=False),
    Column("version", Integer, nullable=False),  # what is proposed; pruning keeps it while open
    Column("content_hash", String(64), nullable=False),  # of that version: approvals bind to it
    Column("base_version", Integer, nullable=True),  # what the environment served when opened
    Column("base_hash", String(64), nullable=False),  # its content hash ("" when nothing)
    Column("requester", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("risk", String(10), nullable=False),
    Column("routing", Text, nullable=False),  # JSON: the rules that matched, what they need
    Column("apply_at", Float, nullable=True),  # scheduled: the watcher applies it then
    Column("emergency", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("deployment", Integer, nullable=True),  # the ledger record that applied it
    Column("detail", Text, nullable=False),
    Index("ix_change_requests_env_status", "env", "status"),
)

request_entries = Table(
    "request_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request", Integer, ForeignKey("change_requests.number"), nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(20), nullable=False),  # opened, approved, rejected, updated, …
    Column("content_hash", String(64), nullable=False),  # what the request held at the time
    Column("base_hash", String(64), nullable=False),
    Column("comment", Text, nullable=False),
    Column("via", String(20), nullable=False),  # cli, server
    Index("ix_request_entries_request", "request", "id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),  # 1, 2, 3 … no gaps
    Column("at", Float, nullable=False),
    Column("kind", String(40), nullable=False),  # deployment-opened, token-revoked, …
    Column("subject", String(200), nullable=False),  # deployment:12, request:3, token:4
    Column("actor", String(200), nullable=False),
    Column("data", Text, nullable=False),  # canonical JSON of the row as written
    Column("hash", String(64), nullable=False),  # SHA-256(previous hash ‖ entry), hex
)
