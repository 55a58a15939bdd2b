"""Who is asking: API tokens on every request, sessions for the web page, CSRF for its forms.

The API takes ``Authorization: Bearer TOKEN``. The page signs in with a token once and then
holds a session: a random id in an HttpOnly, SameSite=Strict cookie, mapped on the server to the
token's record and a CSRF secret that every form must send back. Sessions are kept in the store
(only the SHA-256 of the cookie's value), so a restarted server, or another server on the same
store, keeps everyone signed in; they expire after ``SESSION_TTL`` of inactivity. The time of
last use is written at most every ``TOUCH_EVERY`` seconds, so reading pages does not write to the
store on every click.

Token lookups are cached for ``CACHE_TTL`` seconds so a busy config endpoint does not query the
store on every read; a revoked token stops working within that time. The tokens in use are read
again every ``CACHE_TTL / 2`` seconds in the background (:meth:`Authenticator.run`), so their
entries never expire while they are used: otherwise, every ``CACHE_TTL`` seconds, every read of
a whole fleet arriving at once (the moment a rollback lands) would miss the cache together and
take the slow path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
import threading
import time
from typing import TYPE_CHECKING

from lastgood import tokens
from lastgood.operations.tokens import find_token
from lastgood.record import replace
from lastgood.rows import WebSession

if TYPE_CHECKING:
    from lastgood.project import Project
    from lastgood.rows import ApiToken
    from lastgood.store.core import Store

CACHE_TTL = 5.0
KEEP_FRESH_FOR = 600.0  # seconds after its last use that a token's entry is kept fresh
SESSION_TTL = 8 * 3600.0
TOUCH_EVERY = 60.0
COOKIE = "lastgood_session"


class Authenticator:
    """Turns a bearer secret or a session cookie into the token record, or refuses."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.store: Store = project.store  # sessions; tokens go through the verbs
        self._cache: dict[str, tuple[float, ApiToken | None]] = {}
        self._used: dict[str, float] = {}  # token hash: when a read last found it cached
        # by hash: (when read, the session as the store holds it); read again after CACHE_TTL,
        # so signing out on one server ends the session on the others too
        self._sessions: dict[str, tuple[float, WebSession]] = {}
        self._lock = threading.Lock()

    def _lookup(self, token_hash: str) -> ApiToken | None:
        now = time.monotonic()
        cached = self._cache.get(token_hash)
        if cached is not None and now - cached[0] < CACHE_TTL:
            return cached[1]
        found = find_token(self.project, token_hash)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token_hash] = (now, found)
        return found

    def refresh_used(self) -> int:
        """Read again every cached token used within ``KEEP_FRESH_FOR`` seconds (store reads;
        run in a thread); returns how many. One that fails to read keeps its entry, which
        expires as usual, so a store that is down is still noticed by the reads."""
        cutoff = time.monotonic() - KEEP_FRESH_FOR
        used = self._used.copy()  # one C call: the event loop's reads go on adding to it
        for token_hash in [h for h, when in used.items() if when < cutoff]:
            self._used.pop(token_hash, None)
        hashes = [h for h, when in used.items() if when >= cutoff]
        for token_hash in hashes:
            found = find_token(self.project, token_hash)
            self._cache[token_hash] = (time.monotonic(), found)
        return len(hashes)

    async def run(self) -> None:
        """Keep the tokens in use fresh, forever (see the module docstring)."""
        while True:
            await asyncio.sleep(CACHE_TTL / 2)
            with contextlib.suppress(Exception):  # the store is down: the entries expire
                await asyncio.to_thread(self.refresh_used)

    def by_secret(self, secret: str | None) -> ApiToken:
        """The live token for ``secret``; AuthError (never saying more than needed) otherwise."""
        return tokens.live(self._lookup(tokens.hash_secret(tokens.required(secret))))

    def by_header(self, authorization: str | None) -> ApiToken:
        return self.by_secret(_bearer(authorization))

    @staticmethod
    def hash_of(authorization: str | None) -> str | None:
        """The token hash ``Authorization: Bearer SECRET`` names; None without a bearer token."""
        secret = _bearer(authorization)
        return tokens.hash_secret(secret) if secret else None

    def cached(self, authorization: str | None) -> ApiToken | None:
        """The valid token of ``authorization`` if the cache knows it; None means "ask
        :meth:`by_header`", which reads the store and raises for a missing or bad token."""
        token_hash = self.hash_of(authorization)
        return None if token_hash is None else self.cached_hash(token_hash)

    def cached_hash(self, token_hash: str) -> ApiToken | None:
        """:meth:`cached` for a token already hashed (the fast path keeps a connection's)."""
        cached = self._cache.get(token_hash)
        now = time.monotonic()
        if cached is None or now - cached[0] >= CACHE_TTL:
            return None
        self._used[token_hash] = now
        found = cached[1]
        return found if found is not None and found.revoked_at is None else None

    # ---- sessions (the web page) ------------------------------------------------------------

    def sign_in(self, secret: str) -> tuple[str, ApiToken]:
        """Start a session for a valid token; returns the session id for the cookie (writes
        the session's hash to the store, and forgets sessions that expired)."""
        token = self.by_secret(secret.strip())
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        session = WebSession(session_hash=tokens.hash_secret(session_id),
                             token_hash=token.token_hash, csrf=secrets.token_urlsafe(24),
                             created_at=now, last_seen=now)  # fmt: skip
        self.store.forget_sessions(seen_before=now - SESSION_TTL)
        self.store.save_session(session)
        with self._lock:
            self._sessions[session.session_hash] = (time.monotonic(), session)
        return session_id, token

    def session(self, session_id: str | None) -> tuple[WebSession, ApiToken] | None:
        """The live session and its (still valid) token, or None (reads the store when this
        process has not seen the session yet; writes its time of use now and then)."""
        if not session_id:
            return None
        session_hash = tokens.hash_secret(session_id)
        with self._lock:
            read_at, session = self._sessions.get(session_hash) or (0.0, None)
        if session is None or time.monotonic() - read_at >= CACHE_TTL:
            read_at, session = time.monotonic(), self.store.session_by_hash(session_hash)
        if session is None:  # unknown, or ended on another server: nothing to write
            with self._lock:
                self._sessions.pop(session_hash, None)
            return None
        now = time.time()
        token = self._lookup(session.token_hash)
        if now - session.last_seen > SESSION_TTL or token is None or token.revoked_at is not None:
            self._end(session_hash)
            return None
        if now - session.last_seen > TOUCH_EVERY:
            session = replace(session, last_seen=now)
            if not self.store.touch_session(session_hash, now):  # signed out meanwhile
                self._end(session_hash)
                return None
        with self._lock:
            if len(self._sessions) > 10_000:
                self._sessions.clear()
            self._sessions[session_hash] = (read_at, session)
        return session, token

    def sign_out(self, session_id: str | None) -> None:
        """End a session, here and in the store (writes)."""
        if session_id:
            self._end(tokens.hash_secret(session_id))

    def _end(self, session_hash: str) -> None:
        with self._lock:
            self._sessions.pop(session_hash, None)
        self.store.delete_session(session_hash)


def _bearer(authorization: str | None) -> str | None:
    """The secret of ``Authorization: Bearer SECRET``; None for anything else."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
    return None


def csrf_ok(session: WebSession, sent: str | None) -> bool:
    """Constant-time comparison of the form's CSRF field with the session's secret."""
    return bool(sent) and hmac.compare_digest(session.csrf, sent or "")
