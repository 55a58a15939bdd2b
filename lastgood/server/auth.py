"""Who is asking: API tokens on every request, sessions for the web page, CSRF for its forms.

The API takes ``Authorization: Bearer TOKEN``. The page signs in with a token once and then
holds a session: a random id in an HttpOnly, SameSite=Strict cookie, mapped on the server to the
token's record and a CSRF secret that every form must send back. Sessions live in memory, so a
restarted server signs everyone out; they expire after ``SESSION_TTL`` of inactivity.

Token lookups are cached for ``CACHE_TTL`` seconds so a busy config endpoint does not query the
store on every read; a revoked token stops working within that time.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from typing import TYPE_CHECKING

from lastgood import tokens
from lastgood.errors import AuthError
from lastgood.record import Record

if TYPE_CHECKING:
    from lastgood.records import ApiToken
    from lastgood.store.base import StoreBackend

CACHE_TTL = 5.0
SESSION_TTL = 8 * 3600.0
COOKIE = "lastgood_session"


class Session(Record, frozen=False):
    token_hash: str
    csrf: str
    last_seen: float


class Authenticator:
    """Turns a bearer secret or a session cookie into the token record, or refuses."""

    def __init__(self, store: StoreBackend) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, ApiToken | None]] = {}
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _lookup(self, token_hash: str) -> ApiToken | None:
        now = time.monotonic()
        cached = self._cache.get(token_hash)
        if cached is not None and now - cached[0] < CACHE_TTL:
            return cached[1]
        found = self.store.token_by_hash(token_hash)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token_hash] = (now, found)
        return found

    def by_secret(self, secret: str | None) -> ApiToken:
        if not secret:
            return tokens.authenticate(self.store, None)  # raises the "needs a token" error
        found = self._lookup(tokens.hash_secret(secret))
        if found is None or found.revoked_at is not None:
            raise AuthError(
                "the API token is unknown or revoked",
                hint="check the token, or create a new one with 'lastgood token create'",
            )
        return found

    def by_header(self, authorization: str | None) -> ApiToken:
        return self.by_secret(_bearer(authorization))

    def cached(self, authorization: str | None) -> ApiToken | None:
        """The valid token of ``authorization`` if the cache knows it; None means "ask
        :meth:`by_header`", which reads the store and raises for a missing or bad token."""
        secret = _bearer(authorization)
        if not secret:
            return None
        cached = self._cache.get(tokens.hash_secret(secret))
        if cached is None or time.monotonic() - cached[0] >= CACHE_TTL:
            return None
        found = cached[1]
        return found if found is not None and found.revoked_at is None else None

    # ---- sessions (the web page) ------------------------------------------------------------

    def sign_in(self, secret: str) -> tuple[str, ApiToken]:
        """Start a session for a valid token; returns the session id for the cookie."""
        token = self.by_secret(secret.strip())
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session_id] = Session(token.token_hash, secrets.token_urlsafe(24),
                                                 time.time())  # fmt: skip
        return session_id, token

    def session(self, session_id: str | None) -> tuple[Session, ApiToken] | None:
        """The live session and its (still valid) token, or None."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or time.time() - session.last_seen > SESSION_TTL:
                self._sessions.pop(session_id, None)
                return None
            session.last_seen = time.time()
        token = self._lookup(session.token_hash)
        if token is None or token.revoked_at is not None:
            self.sign_out(session_id)
            return None
        return session, token

    def sign_out(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)


def _bearer(authorization: str | None) -> str | None:
    """The secret of ``Authorization: Bearer SECRET``; None for anything else."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
    return None


def csrf_ok(session: Session, sent: str | None) -> bool:
    """Constant-time comparison of the form's CSRF field with the session's secret."""
    return bool(sent) and hmac.compare_digest(session.csrf, sent or "")
