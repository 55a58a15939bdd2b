"""Rules of the store that are not SQL, free of any database driver: when a lease counts as
alive, what a lease looks like, how errors read, which defaults a ledger record gets, the
timeouts. Both connection layers use them too (errors, timeouts), and importing this module
stays cheap (no SQLAlchemy), which is the point of the SQLite fast lane.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from lastgood import holder, settings
from lastgood.bundle import file_hash
from lastgood.errors import LeaseLostError, LockedError, NotFoundError, StoreError
from lastgood.record import Record
from lastgood.rows import Lease
from lastgood.settings import Setting, mask_url
from lastgood.units import parse_duration

LEASE_ATTEMPTS = 5
"""How many compare-and-set rounds a lease take-over tries before giving up on a racing crowd."""


class StoreTimeouts(Record):
    """How long the store may take, in seconds; 0 means lastgood sets no limit."""

    connect: float
    statement: float

    @property
    def busy_milliseconds(self) -> int:
        """SQLite's busy timeout: how long a statement waits for another process's lock."""
        return round(self.statement * 1000) if self.statement > 0 else 2**31 - 1


DEFAULT_TIMEOUTS = StoreTimeouts(connect=10.0, statement=30.0)


def use_wal(connection: Any, busy_milliseconds: int) -> None:
    """``PRAGMA journal_mode=WAL`` on a SQLite DB-API ``connection``, waiting for the lock as
    long as its busy timeout would.

    Turning a new database to WAL takes its exclusive lock, and SQLite refuses at once, without
    calling its busy handler, while another connection holds the write lock: two processes
    opening a new store at the same moment (two servers, a server and the CLI) made one of them
    fail with "database is locked". So this asks again until the busy timeout has passed."""
    deadline = time.monotonic() + busy_milliseconds / 1000
    while True:
        cursor = connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        finally:
            cursor.close()
        time.sleep(0.005)


def store_timeouts() -> StoreTimeouts:
    """The timeouts from ``LASTGOOD_STORE_*_TIMEOUT``, over the defaults; a bad value is a
    ConfigError naming the variable. A store that never answers must not hang every command."""
    return StoreTimeouts(
        connect=_timeout(settings.STORE_CONNECT_TIMEOUT, DEFAULT_TIMEOUTS.connect),
        statement=_timeout(settings.STORE_STATEMENT_TIMEOUT, DEFAULT_TIMEOUTS.statement),
    )


def _timeout(setting: Setting, default: float) -> float:
    raw = setting.read()
    return default if raw is None else parse_duration(raw, name=setting.env_var)


_OFFLINE_HINT = "to undo a bad version without the store: lastgood rollback ENV --offline"


def store_failure(url: str, doing: str, exc: BaseException) -> StoreError:
    """The StoreError a driver exception becomes: masked URL, what we were doing, the cause.

    A store that did not answer in time, or stayed locked, gets its own message saying which
    limit ran out, how to raise it, and how to roll back without the store meanwhile.
    """
    cause = getattr(exc, "orig", None) or exc
    kinds = {cls.__name__ for cls in type(cause).__mro__}
    if "ConnectionTimeout" in kinds:
        return _connect_timeout_error(url, doing)
    if getattr(cause, "sqlstate", None) == "57014" and "statement timeout" in str(cause):
        return _statement_timeout_error(url, doing, "did not finish a statement within")
    if "sqlite3.OperationalError" in _qualified(cause) and "locked" in str(cause):
        return _statement_timeout_error(url, doing, "stayed locked by another connection for over")
    lines = str(exc).splitlines() or [""]
    if _disk_full(cause):
        return StoreError(
            f"store {mask_url(url)} failed to {doing}: the disk holding it is full or failing "
            f"({exc.__class__.__name__}: {lines[0]})",
            hint="free space on that disk, then run 'lastgood status ENV' (it closes what this "
            "left open); meanwhile 'lastgood rollback ENV --offline' works without the store",
        )
    return StoreError(
        f"store {mask_url(url)} failed to {doing}: {exc.__class__.__name__}: {lines[0]}",
        hint="check that the store is reachable; 'lastgood status' retries safely; "
        + _OFFLINE_HINT,
    )


_FULL = (
    "database or disk is full",
    "disk i/o error",  # SQLite's answer when its journal cannot grow
    "no space left on device",
    "disk full",
    "could not extend",
)


def _disk_full(cause: BaseException) -> bool:
    """SQLite's SQLITE_FULL or SQLITE_IOERR, or PostgreSQL's 53100 disk_full (or its
    message)."""
    text = str(cause).lower()
    return getattr(cause, "sqlstate", None) == "53100" or any(words in text for words in _FULL)


def _qualified(error: BaseException) -> str:
    return f"{type(error).__module__}.{type(error).__name__}"


def connect_seconds(timeouts: StoreTimeouts) -> int:
    """The connect timeout as the PostgreSQL driver takes it: whole seconds, at least 2."""
    return max(2, math.ceil(timeouts.connect))


def _connect_timeout_error(url: str, doing: str) -> StoreError:
    setting = settings.STORE_CONNECT_TIMEOUT
    timeouts = store_timeouts()
    limit = f"{connect_seconds(timeouts)} s ({setting.env_var})"
    if "connect_timeout=" in url:
        limit = "connect_timeout in the URL"
    elif timeouts.connect == 0:
        limit = f"the driver's own limit ({setting.env_var}=0)"
    return StoreError(
        f"store {mask_url(url)} did not answer the connection within {limit} "
        f"while trying to {doing}",
        hint=f"check that the store is up and reachable, or raise {setting.env_var}; "
        + _OFFLINE_HINT,
    )


def _statement_timeout_error(url: str, doing: str, what: str) -> StoreError:
    setting = settings.STORE_STATEMENT_TIMEOUT
    limit = f"{store_timeouts().statement:g} s ({setting.env_var})"
    return StoreError(
        f"store {mask_url(url)} {what} {limit} while trying to {doing}",
        hint="another connection may hold a lock on it (a stuck process or migration): find "
        f"and stop it, or raise {setting.env_var}; " + _OFFLINE_HINT,
    )


SQLITE_NEEDED = (3, 35)
"""The store's SQL uses ``RETURNING`` (SQLite 3.35, 2021) and upserts (3.24)."""


def require_sqlite(url: str) -> None:
    """StoreError when the SQLite library Python uses is too old for the store's SQL."""
    if sqlite3.sqlite_version_info < SQLITE_NEEDED:
        raise StoreError(
            f"store {mask_url(url)} needs SQLite 3.35 or newer; this Python uses SQLite "
            f"{sqlite3.sqlite_version}",
            hint="use a Python built with a newer SQLite (python.org builds and current Linux "
            "releases have one), or a PostgreSQL store",
        )


def version_not_found(number: int, *, pruned: bool = False) -> NotFoundError:
    """No such version; when older versions exist, it can only have been pruned."""
    if pruned:
        return NotFoundError(
            f"no version v{number}: it was pruned",
            hint="'lastgood log' lists the versions kept; the 'pruned' events say when it went",
        )
    return NotFoundError(f"no version v{number}", hint="run 'lastgood log' to list versions")


def deployment_not_found(deployment_id: int) -> NotFoundError:
    return NotFoundError(f"no ledger record #{deployment_id}")


def document_not_found(name: str, version: int) -> NotFoundError:
    return NotFoundError(
        f"no version {version} of document {name!r}",
        hint="it may have been pruned: see keep and max_age under [[watch.document]]",
    )


def doomed_document_versions(
    rows: Sequence[tuple[int, float]], *, keep: int, older_than: float
) -> list[int]:
    """Which of a document's versions (``(version, at)`` newest first) retention drops: those
    beyond the newest ``keep`` and those older than ``older_than``, but never the newest."""
    return [
        version
        for index, (version, at) in enumerate(rows)
        if index > 0 and (index >= keep or at < older_than)
    ]


DELIVERY_FIELDS = (
    "at",
    "route",
    "destination",
    "event",
    "env",
    "key",
    "attempt",
    "status",
    "detail",
)


def delivery_row(values: Mapping[str, Any]) -> dict[str, Any]:
    """A delivery attempt's columns; unknown names are an error, ``at`` defaults to now."""
    unknown = sorted(set(values) - set(DELIVERY_FIELDS))
    if unknown:
        raise TypeError(f"unknown delivery fields: {', '.join(unknown)}")
    row: dict[str, Any] = {"at": time.time(), "env": None, "attempt": 1, "detail": ""}
    row.update(values)
    missing = sorted(set(DELIVERY_FIELDS) - set(row))
    if missing:
        raise TypeError(f"missing delivery fields: {', '.join(missing)}")
    return row


def token_row(name: str, role: str, envs: str, token_hash: str, created_by: str) -> dict[str, Any]:
    """The columns of a new API token (``id`` comes from the database)."""
    return {"name": name, "role": role, "envs": envs, "token_hash": token_hash,
            "created_at": time.time(), "created_by": created_by, "revoked_at": None}  # fmt: skip


def token_not_found(token_id: int) -> NotFoundError:
    return NotFoundError(
        f"there is no API token #{token_id}", hint="'lastgood token list' shows the tokens"
    )


def verified_blob(data: bytes, expected_hash: str, *, path: str, number: int) -> bytes:
    """``data`` when it still hashes to ``expected_hash``; a damaged blob is a StoreError."""
    if file_hash(data) != expected_hash:
        raise StoreError(
            f"stored content of {path} in v{number} is damaged",
            hint="nothing was changed; 'lastgood store verify' lists all the damage; restore "
            "the store from a backup (meanwhile 'lastgood rollback ENV --offline' works "
            "without it)",
        )
    return data


def deployment_row(values: Mapping[str, Any]) -> dict[str, Any]:
    """A new ledger record's columns: ``values`` over the defaults (running, requested now)."""
    row: dict[str, Any] = {
        "status": "running",
        "reason": "",
        "detail": "",
        "requested_at": time.time(),
    }
    row.update(values)
    return row


def event_row(
    kind: str,
    message: str,
    *,
    env: str | None,
    version: int | None,
    deployment: int | None,
    data: Mapping[str, Any] | None,
    at: float | None,
) -> dict[str, Any]:
    """An event's columns, with ``data`` serialised as JSON (anything odd becomes a string)."""
    return {
        "at": at or time.time(),
        "kind": kind,
        "env": env,
        "version": version,
        "deployment": deployment,
        "message": message,
        "data": json.dumps(dict(data or {}), default=str),
    }


def new_lease(name: str, *, purpose: str, holder_name: str, ttl: float) -> Lease:
    """A lease for this process, valid ``ttl`` seconds from now, with a fresh random token."""
    now = time.time()
    pid = os.getpid()
    return Lease(
        name=name,
        token=os.urandom(16).hex(),
        holder=holder_name,
        purpose=purpose,
        host=holder.hostname(),
        pid=pid,
        pid_start=holder.process_start(pid),
        acquired_at=now,
        expires_at=now + ttl,
    )


def locked_error(name: str, previous: Lease) -> LockedError:
    """The refusal that names who holds the lease, why, and until when."""
    until = time.strftime("%H:%M:%S", time.localtime(previous.expires_at))
    return LockedError(
        f"{name} is locked by {previous.holder} ({previous.purpose}, pid "
        f"{previous.pid} on {previous.host}) until {until}",
        hint="wait for it to finish, or break the lock with --force (recorded in the ledger)",
    )


def lease_race_error(name: str) -> LockedError:
    return LockedError(f"{name}: could not take the lease: other processes keep racing for it")


def lease_lost_error(lease: Lease) -> LeaseLostError:
    return LeaseLostError(
        f"lost the lease on {lease.name}: another process broke or took it over",
        hint="see 'lastgood history' for who took over; this process stops here",
    )
