"""Web page sessions (``lastgood.server.auth``) on a real SQLite store, as two servers see them.

Two ``Authenticator``s on one store are two servers sharing it (or one server before and after a
restart). The cache and expiry times are the module's own constants, shortened here so the tests
need not wait for them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood import tokens
from lastgood.server import auth
from lastgood.server.auth import Authenticator
from lastgood.store import open_store
from lastgood.store.core import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


@pytest.fixture
def secret(store: Store) -> str:
    return tokens.create(store, name="ops", role="deployer", envs=[], created_by="t")[1]


def test_a_session_is_stored_by_hash_and_seen_by_another_server(store: Store, secret: str) -> None:
    first, second = Authenticator(store), Authenticator(store)
    session_id, token = first.sign_in(secret)
    stored = store.session_by_hash(tokens.hash_secret(session_id))
    assert stored is not None and stored.token_hash == token.token_hash
    found = second.session(session_id)
    assert found is not None and found[0].csrf == stored.csrf and found[1].name == "ops"
    assert second.session("not-a-session") is None and second.session(None) is None


def test_signing_out_on_one_server_ends_the_session_on_the_others(
    store: Store, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "CACHE_TTL", 0.0)  # the others read the store on every visit
    first, second = Authenticator(store), Authenticator(store)
    session_id, _ = first.sign_in(secret)
    assert second.session(session_id) is not None
    first.sign_out(session_id)
    assert second.session(session_id) is None
    assert store.session_by_hash(tokens.hash_secret(session_id)) is None


def test_use_is_written_now_and_then_and_never_revives_a_signed_out_session(
    store: Store, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "TOUCH_EVERY", 0.0)
    first, second = Authenticator(store), Authenticator(store)
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
    store: Store, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "CACHE_TTL", 0.0)
    server = Authenticator(store)
    idle, token = server.sign_in(secret)
    store.touch_session(tokens.hash_secret(idle), time.time() - auth.SESSION_TTL - 1)
    assert server.session(idle) is None
    assert store.session_by_hash(tokens.hash_secret(idle)) is None  # removed, not kept
    active, _ = server.sign_in(secret)
    store.revoke_token(token.id)
    monkeypatch.setattr(server, "_cache", {})  # the token cache's 5 s, elapsed
    assert server.session(active) is None
