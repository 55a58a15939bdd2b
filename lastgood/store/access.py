"""What the server keeps in the store: API tokens and web sessions (only hashes of their
secrets), and the consumers that read served configuration through the SDK."""

from __future__ import annotations

import time
from collections.abc import Iterable

from lastgood.rows import ApiToken, Consumer, WebSession
from lastgood.store import chain, common, statements
from lastgood.store.audit import Auditor, AuditStore
from lastgood.store.base import select_records

TOKEN_COLUMNS = statements.columns_of(ApiToken)
CONSUMER_COLUMNS = statements.columns_of(Consumer)
SESSION_COLUMNS = statements.columns_of(WebSession)


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
    ) -> None:
        """Record consumers' reports by (env, consumer_id), all in one transaction (writes).

        A report older than the one kept (by ``seen_at``) changes nothing but ``first_seen``:
        servers flush in any order, and one flushing an older report last must not undo a
        newer one. ``first_seen`` keeps the earliest any server had. ``leaving`` consumers
        (stopped cleanly: their ``seen_at`` is set back on purpose) replace what is kept."""
        rows = [statements.row_of(consumer, CONSUMER_COLUMNS) for consumer in consumers]
        left = [statements.row_of(consumer, CONSUMER_COLUMNS) for consumer in leaving]
        if not rows and not left:
            return
        with self.db.transaction("record consumers") as session:
            for newer, batch in (("seen_at", rows), (None, left)):
                if batch:
                    session.run_many(_consumer_upsert(newer), batch)

    def consumers(
        self, env: str | None = None, *, seen_since: float | None = None
    ) -> list[Consumer]:
        """Consumers as last reported, most recently seen first; with ``seen_since``, only
        those heard from at or after it (how servers sharing a store read each other's)."""
        return self._records("read consumers", Consumer, "consumers", {"env": env},
                             order="seen_at DESC", since=("seen_at", seen_since))  # fmt: skip

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
    return statements.upsert_newer("consumers", CONSUMER_COLUMNS, ("env", "consumer_id"),
                                   newer=newer, earliest="first_seen")  # fmt: skip


def _chain(audit: Auditor, kind: str, token: ApiToken, actor: str) -> None:
    """Chain a token as it now stands, without its secret's hash (exports travel) but with a
    digest of it, so ``audit verify`` catches a hash swapped in the table."""
    row = statements.row_of(token, TOKEN_COLUMNS)
    row["token_hash_digest"] = chain.digest(token.token_hash)
    audit.append(kind, f"token:{token.id}", actor, row, leave_out=("token_hash",))
