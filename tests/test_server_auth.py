"""Web page sessions (``lastgood.server.auth``) on a real SQLite store, as two servers see them.

Two ``Authenticator``s on one store are two servers sharing it (or one server before and after a
restart). The cache and expiry times are the module's own constants, shortened here so the tests
need not wait for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from lastgood import tokens
from lastgood.operations.tokens import create_token, revoke_token
from lastgood.project import Project
from lastgood.server import auth
from lastgood.server.auth import Authenticator
from lastgood.store.core import Store
from tests.conftest import Workspace


@pytest.fixture
def project(workspace: Callable[..., Workspace]) -> Project:
    return workspace().project()  # type: ignore[no-any-return]


@pytest.fixture
def store(project: Project) -> Store:
    return project.store


@pytest.fixture
def secret(project: Project) -> str:
    return create_token(project, name="ops", role="deployer", envs=[])[1]


def test_a_session_is_stored_by_hash_and_seen_by_another_server(
    project: Project, store: Store, secret: str
) -> None:
    first, second = Authenticator(project), Authenticator(project)
    session_id, token = first.sign_in(secret)
    stored = store.session_by_hash(tokens.hash_secret(session_id))
    assert stored is not None and stored.token_hash == token.token_hash
    found = second.session(session_id)
    assert found is not None and found[0].csrf == stored.csrf and found[1].name == "ops"
    assert second.session("not-a-session") is None and second.session(None) is None


def test_signing_out_on_one_server_ends_the_session_on_the_others(
    project: Project, store: Store, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "CACHE_TTL", 0.0)  # the others read the store on every visit
    first, second = Authenticator(project), Authenticator(project)
    session_id, _ = first.sign_in(secret)
    assert second.session(session_id) is not None
    first.sign_out(session_id)
    assert second.session(session_id) is None
    assert store.session_by_hash(tokens.hash_secret(session_id)) is None


def test_use_is_written_now_and_then_and_never_revives_a_signed_out_session(
    project: Project, store: Store, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "TOUCH_EVERY", 0.0)
    first, second = Authenticator(project), Authenticator(project)
    session_id, _ = first.sign_in(secret)
    key = tokens.hash_secret(session_id)
    store.touch_session(key, time.time() - 3600)
    assert second.session(session_id) is not None
    seen = store.session_by_hash(key)
    assert seen is not None and time.time() - seen.last_seen < 60  # written again
    first.sign_out(session_id)  # while `second` still holds it in its cache
    assert second.session(session_id) is None  # its write of the time of use finds nothing
    assert store.session_by_hash(key) is None


def test_expired_and_revoked_sessions_end(
    project: Project, store: Store, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "CACHE_TTL", 0.0)
    server = Authenticator(project)
    idle, token = server.sign_in(secret)
    store.touch_session(tokens.hash_secret(idle), time.time() - auth.SESSION_TTL - 1)
    assert server.session(idle) is None
    assert store.session_by_hash(tokens.hash_secret(idle)) is None  # removed, not kept
    active, _ = server.sign_in(secret)
    revoke_token(project, token.id)
    monkeypatch.setattr(server, "_cache", {})  # the token cache's 5 s, elapsed
    assert server.session(active) is None


def _age(authenticator: Authenticator, secret: str, seconds: float) -> None:
    """Make the cache entry of ``secret`` ``seconds`` older, as if that much time had passed."""
    token_hash = tokens.hash_secret(secret)
    when, token = authenticator._cache[token_hash]
    authenticator._cache[token_hash] = (when - seconds, token)


def test_a_token_in_use_is_read_again_in_the_background_and_never_expires_from_the_cache(
    project: Project, secret: str
) -> None:
    """Without the refresh, every read of a whole fleet missed the cache together once every
    CACHE_TTL and took the slow path at once (the moment a rollback landed, say)."""
    authenticator = Authenticator(project)
    header = f"Bearer {secret}"
    authenticator.by_header(header)
    assert authenticator.cached(header) is not None  # a read found it: it is in use
    _age(authenticator, secret, auth.CACHE_TTL + 1)
    assert authenticator.cached(header) is None  # stale: the slow path would answer
    assert authenticator.refresh_used() == 1
    found = authenticator.cached(header)
    assert found is not None and found.name == "ops"


def test_a_revoked_token_stops_working_at_the_next_background_read(
    project: Project, secret: str
) -> None:
    authenticator = Authenticator(project)
    header = f"Bearer {secret}"
    token = authenticator.by_header(header)
    assert authenticator.cached(header) is not None
    revoke_token(project, token.id)
    assert authenticator.refresh_used() == 1
    assert authenticator.cached(header) is None


def test_a_token_unused_for_long_is_no_longer_read_again(project: Project, secret: str) -> None:
    authenticator = Authenticator(project)
    header = f"Bearer {secret}"
    authenticator.by_header(header)
    assert authenticator.cached(header) is not None
    token_hash = tokens.hash_secret(secret)
    authenticator._used[token_hash] -= auth.KEEP_FRESH_FOR + 1
    assert authenticator.refresh_used() == 0
    assert token_hash not in authenticator._used
