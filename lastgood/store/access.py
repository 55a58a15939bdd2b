"""What the server keeps in the store: API tokens and web sessions (only hashes of their
secrets), and the consumers that read served configuration through the SDK."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable

from lastgood.rows import ApiToken, Consumer, WebSession
from lastgood.store import chain, common, statements
from lastgood.store.audit import Auditor, AuditStore
from lastgood.store.base import select_records

TOKEN_COLUMNS = statements.columns_of(ApiToken)
CONSUMER_COLUMNS = statements.columns_of(Consumer)
SESSION_COLUMNS = statements.columns_of(WebSession)
CONSUMER_WRITES = "consumers"  # the counters row that numbers the writes of consumers
# one more than the last number, taken in the write's transaction: the row stays locked until
# it commits, so numbers are committed in the order they are taken (PostgreSQL too)
_NEXT_WRITE = (
    "INSERT INTO counters (name, value) VALUES (:name, 1) "
    "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value"
)
_LAST_WRITE = "SELECT value FROM counters WHERE name = :name"


class AccessStore(AuditStore):
    """Tokens, web sessions and consumers."""

    # ---- API tokens -------------------------------------------------------------------------

    def add_token(
        self, *, name: str, role: str, envs: str, token_hash: str, created_by: str
    ) -> ApiToken:
        """Keep a new token's hash, role and scope (writes)."""
        row = common.token_row(name, role, envs, token_hash, created_by)
        with self._audited("create a token") as audit:
            sql = statements.insert("api_tokens", row, returning="id")
            token = ApiToken(**{**row, "id": int(audit.session.value(sql, row))})
            _chain(audit, "token-created", token, created_by)
        return token

    def tokens(self, *, include_revoked: bool = False) -> list[ApiToken]:
        """Tokens oldest first, without the revoked ones unless asked."""
        found = self._records("read tokens", ApiToken, "api_tokens", order="id")
        return [token for token in found if include_revoked or token.revoked_at is None]

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        """The token whose secret hashes to ``token_hash``, revoked or not, or None."""
        found = self._records("read a token", ApiToken, "api_tokens", {"token_hash": token_hash})
        return found[0] if found else None

    def revoke_token(self, token_id: int, *, actor: str) -> ApiToken:
        """Mark a token revoked from now on, by ``actor`` (who asked: on the server, the calling
        token's name), chained as theirs (writes); NotFoundError when there is none. Revoking
        a revoked token changes nothing and chains nothing."""
        with self._audited("revoke a token") as audit:
            changed = audit.session.run(
                "UPDATE api_tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL",
                {"now": time.time(), "id": token_id},
            )
            found = select_records(audit.session, ApiToken, "api_tokens", {"id": token_id})
            if changed and found:
                _chain(audit, "token-revoked", found[0], actor)
        if not found:
            raise common.token_not_found(token_id)
        return found[0]

    # ---- consumers --------------------------------------------------------------------------

    def save_consumers(
        self, consumers: Iterable[Consumer], *, leaving: Iterable[Consumer] = ()
    ) -> int:
        """Record consumers' reports by (env, consumer_id), all in one transaction (writes);
        returns the write's number (0 when there was nothing to write).

        A report older than the one kept (by ``seen_at``) changes nothing but ``first_seen``:
        servers flush in any order, and one flushing an older report last must not undo a
        newer one. ``first_seen`` keeps the earliest any server had. ``leaving`` consumers
        (stopped cleanly: their ``seen_at`` is set back on purpose) replace what is kept.

        Every report taken carries the write's number (``written``), one more than the last
        write's on this store: what :meth:`consumers_written_after` reads back. A report that
        loses to a newer one leaves the row's number as it was: the row still holds the other
        server's report, which the server writing now has to read (only ``first_seen`` may
        change then, and other servers see that with the consumer's next report)."""
        rows = [statements.row_of(consumer, CONSUMER_COLUMNS) for consumer in consumers]
        left = [statements.row_of(consumer, CONSUMER_COLUMNS) for consumer in leaving]
        if not rows and not left:
            return 0
        with self.db.transaction("record consumers") as session:
            number = int(session.value(_NEXT_WRITE, {"name": CONSUMER_WRITES}))
            for newer, batch in (("seen_at", rows), (None, left)):
                for row in batch:
                    row["written"] = number
                if batch:
                    session.run_many(_consumer_upsert(newer), batch)
        return number

    def consumers(
        self, env: str | None = None, *, seen_since: float | None = None
    ) -> list[Consumer]:
        """Consumers as last reported, most recently seen first; with ``seen_since``, only
        those heard from at or after it."""
        return self._records("read consumers", Consumer, "consumers", {"env": env},
                             order="seen_at DESC", since=("seen_at", seen_since))  # fmt: skip

    def consumers_written_after(
        self, after: int, *, skip: Collection[int] = (), seen_since: float | None = None
    ) -> tuple[list[Consumer], int]:
        """The consumers written after write number ``after`` (-1: all), except by the writes
        numbered in ``skip`` (a server's own), and the newest write number: what servers
        sharing a store read of each other's reports. One snapshot: every write up to that
        number is in it, and none after. With ``seen_since``, only those heard from since."""
        numbers = sorted(skip)
        excluded = {f"skip{index}": number for index, number in enumerate(numbers)}
        conditions = ["written > :after"]
        if seen_since is not None:
            conditions.append("seen_at >= :since")
        if excluded:
            conditions.append(f"written NOT IN (:{', :'.join(excluded)})")
        sql = (f"SELECT {', '.join(CONSUMER_COLUMNS)} FROM consumers "
               f"WHERE {' AND '.join(conditions)}")  # fmt: skip
        params = {"after": after, "since": seen_since, **excluded}
        with self.db.transaction("read consumers", snapshot=True) as session:
            newest = session.value(_LAST_WRITE, {"name": CONSUMER_WRITES})
            found = [Consumer(*row) for row in session.rows(sql, params)]
        return found, int(newest or 0)

    def forget_consumers(self, *, seen_before: float) -> int:
        """Drop consumers not seen since ``seen_before``; returns how many (writes)."""
        with self.db.transaction("forget consumers") as session:
            return session.run(
                "DELETE FROM consumers WHERE seen_at < :before", {"before": seen_before}
            )

    # ---- web page sessions ------------------------------------------------------------------

    def save_session(self, session: WebSession) -> None:
        """Insert or replace a session by its hash (writes)."""
        sql = statements.upsert("web_sessions", SESSION_COLUMNS, ("session_hash",))
        with self.db.transaction("record a web session") as db:
            db.run(sql, statements.row_of(session, SESSION_COLUMNS))

    def session_by_hash(self, session_hash: str) -> WebSession | None:
        """The session whose cookie value hashes to ``session_hash``, or None."""
        found = self._records(
            "read a web session", WebSession, "web_sessions", {"session_hash": session_hash}
        )
        return found[0] if found else None

    def touch_session(self, session_hash: str, last_seen: float) -> bool:
        """Record a session's time of use (writes); False when it no longer exists (never
        brings back a session that was signed out)."""
        with self.db.transaction("record a web session's use") as db:
            return (
                db.run(
                    "UPDATE web_sessions SET last_seen = :seen WHERE session_hash = :hash",
                    {"seen": last_seen, "hash": session_hash},
                )
                > 0
            )

    def delete_session(self, session_hash: str) -> None:
        """Forget one session, if it is there (writes)."""
        with self.db.transaction("end a web session") as db:
            db.run("DELETE FROM web_sessions WHERE session_hash = :hash", {"hash": session_hash})

    def forget_sessions(self, *, seen_before: float) -> int:
        """Drop sessions not used since ``seen_before``; returns how many (writes)."""
        with self.db.transaction("forget web sessions") as db:
            return db.run(
                "DELETE FROM web_sessions WHERE last_seen < :before", {"before": seen_before}
            )


def _consumer_upsert(newer: str | None) -> str:
    # the number goes with the report: a row that keeps another server's newer report keeps
    # that server's number, so the server whose older report lost still reads the newer one
    return statements.upsert_newer("consumers", (*CONSUMER_COLUMNS, "written"),
                                   ("env", "consumer_id"), newer=newer,
                                   earliest="first_seen")  # fmt: skip


def _chain(audit: Auditor, kind: str, token: ApiToken, actor: str) -> None:
    """Chain a token as it now stands, without its secret's hash (exports travel) but with a
    digest of it, so ``audit verify`` catches a hash swapped in the table."""
    row = statements.row_of(token, TOKEN_COLUMNS)
    row["token_hash_digest"] = chain.digest(token.token_hash)
    audit.append(kind, f"token:{token.id}", actor, row, leave_out=("token_hash",))
