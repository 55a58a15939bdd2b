"""Switch announcements between processes sharing a PostgreSQL store: ``LISTEN/NOTIFY``.

When a ledger record gets its ``activated_at`` (a deploy or rollback has just switched a
target), the PostgreSQL store sends ``NOTIFY lastgood_switch, '<env>'`` in the same
transaction, so PostgreSQL delivers it when, and only if, the record commits. Every
``lastgood serve`` on that store holds one :class:`SwitchListener` and refreshes the named
environment's feed the moment the announcement arrives, instead of waiting for its next poll.
SQLite has no such channel: servers on a SQLite store keep polling.

psycopg is used directly here, on a dedicated autocommit connection outside the engine's pool
(a pooled connection would be recycled under the listener); its errors become
:class:`~lastgood.errors.StoreError` like every other driver error.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from lastgood.store import common

if TYPE_CHECKING:
    import psycopg

CHANNEL = "lastgood_switch"
APPLICATION_NAME = "lastgood switch listener"


class SwitchListener:
    """One dedicated connection listening for switch announcements on ``CHANNEL``."""

    def __init__(self, dsn: str, url: str) -> None:
        self.dsn = dsn  # a libpq URI with the password: never shown, ``url`` is
        self.url = url
        self._connection: psycopg.Connection[Any] | None = None

    def connect(self) -> None:
        """Open the connection and ``LISTEN``; raises StoreError when the store is down."""
        import psycopg

        self.close()
        try:
            connection = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5,
                                         application_name=APPLICATION_NAME)  # fmt: skip
            connection.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            raise common.store_failure(self.url, "listen for switches", exc) from exc
        self._connection = connection

    def wait(self, timeout: float) -> set[str]:
        """The environments announced within ``timeout`` seconds (empty when none were); returns
        at the first announcement, so the caller acts on it at once rather than at the end of
        the wait.

        Raises StoreError when the connection is lost: reconnect with :meth:`connect`, and
        look at every environment, since announcements made meanwhile are gone."""
        import psycopg

        if self._connection is None:
            self.connect()
        assert self._connection is not None
        try:
            notes = self._connection.notifies(timeout=timeout, stop_after=1)
            return {note.payload for note in notes}
        except psycopg.Error as exc:
            self.close()
            raise common.store_failure(self.url, "listen for switches", exc) from exc

    def close(self) -> None:
        """Drop the connection, if any (never raises)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # a dead connection may fail to close: it is gone
                connection.close()
