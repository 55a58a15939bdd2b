"""The store, on both connection layers: sqlite3 and SQLAlchemy on SQLite files, SQLAlchemy on
real PostgreSQL.

Every test taking ``store`` runs three times. SQLite stores are copies of one migrated template
(migrating costs far more than copying); the PostgreSQL store is one database per module,
emptied before each test, created through the ``postgres`` database and dropped WITH (FORCE).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from lastgood.bundle import Bundle, file_hash
from lastgood.errors import ConfigError, LeaseLostError, LockedError, NotFoundError, StoreError
from lastgood.rows import CheckRecord, EnvState
from lastgood.store import open_store, schema
from lastgood.store import tables as t
from lastgood.store.core import Store
from lastgood.store.database import AlchemyDatabase
from lastgood.store.lite import SCHEMA_HEAD, LiteDatabase, sqlite_location

PG_ADMIN = os.environ.get("LASTGOOD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = [
    "lite-sqlite",
    "sqlalchemy-sqlite",
    pytest.param("sqlalchemy-postgres", marks=pytest.mark.postgres),
]
V1 = {"prompt.txt": b"score leads kindly\n", "rules/threshold.yaml": b"threshold: 0.5\n"}
V2 = {"prompt.txt": b"score leads kindly\n", "rules/threshold.yaml": b"threshold: 0.7\n"}


def LiteStore(url: str) -> Store:
    """The store on the stdlib sqlite3 layer."""
    return Store(LiteDatabase(url))


def AlchemyStore(url: str) -> Store:
    """The store on the SQLAlchemy layer."""
    return Store(AlchemyDatabase(url))


# ---- fixtures -------------------------------------------------------------------------------


def _pg_url(database: str, admin: str = PG_ADMIN) -> str:
    return admin.rsplit("/", 1)[0] + "/" + database


def _pg_connect(url: str = PG_ADMIN) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=3)


def _pg_problem() -> str | None:
    """None when PostgreSQL answers, else why not (the skip reason shown by pytest -ra)."""
    try:
        with _pg_connect():
            return None
    except Exception as exc:  # any failure to connect means: skip, and say why
        return f"PostgreSQL at {PG_ADMIN} is unreachable: {exc}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty store migrated once; tests get copies."""
    path = tmp_path_factory.mktemp("template") / "store.db"
    AlchemyStore(f"sqlite:///{path}").close()
    return path


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A migrated PostgreSQL database for this module, dropped at the end."""
    problem = _pg_problem()
    if problem:
        pytest.skip(problem)
    name = f"lg_{secrets.token_hex(6)}"
    with _pg_connect() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        AlchemyStore(_pg_url(name)).close()
        yield _pg_url(name)
    finally:
        with _pg_connect() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _empty_postgres(url: str) -> None:
    names = ", ".join(table.name for table in t.metadata.sorted_tables)
    with _pg_connect(url) as connection:
        connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which backend a test runs on: ``lite-sqlite``, ``sqlalchemy-sqlite`` or ``…-postgres``."""
    return str(request.param)


@pytest.fixture
def store_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> str:
    """The URL of an empty, migrated store for the backend under test."""
    if backend.endswith("postgres"):
        url = str(request.getfixturevalue("postgres_database"))
        _empty_postgres(url)
        return url
    path = tmp_path / "store.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def store(backend: str, store_url: str) -> Iterator[Store]:
    """An open store of the backend under test; closed afterwards."""
    opened: Store = LiteStore(store_url) if backend == "lite-sqlite" else AlchemyStore(store_url)
    yield opened
    opened.close()


def raw_execute(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run SQL behind the store's back (to damage data, or to peek); ``?`` placeholders."""
    location = sqlite_location(url)
    if location is None:
        with _pg_connect(url) as connection:
            cursor = connection.execute(sql.replace("?", "%s"), params)
            return list(cursor.fetchall()) if cursor.description else []
    with closing(sqlite3.connect(location.database)) as connection, connection:
        return list(connection.execute(sql, params).fetchall())


def add(store: Store, files: dict[str, bytes], message: str = "change") -> Any:
    return store.add_version(Bundle(files), author="tester", message=message, source="cli")


# ---- versions -------------------------------------------------------------------------------


def test_versions_are_numbered_and_share_blobs(store: Store) -> None:
    assert store.head() is None
    v1 = add(store, V1, "first")
    v2 = add(store, V2, "second")
    assert (v1.number, v1.parent, v2.number, v2.parent) == (1, None, 2, 1)
    assert v1.content_hash == Bundle(V1).content_hash
    assert (v2.file_count, v2.total_size) == (2, Bundle(V2).size)
    assert store.blob_count() == 3  # prompt.txt is the same in both: stored once
    assert store.head() == v2
    assert store.version(1) == v1
    assert [v.number for v in store.versions()] == [2, 1]
    assert [v.number for v in store.versions(limit=1)] == [2]
    assert [v.number for v in store.versions(before=2)] == [1]


def test_version_records_author_message_source_and_time(store: Store) -> None:
    made = store.add_version(Bundle(V1), author="ana", message="why", source="api", at=1234.5)
    assert store.version(1) == made
    assert (made.author, made.message, made.source, made.created_at) == (
        "ana",
        "why",
        "api",
        1234.5,
    )
    assert abs(add(store, V2).created_at - time.time()) < 60


def test_missing_version_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no version v7") as caught:
        store.version(7)
    assert "lastgood log" in str(caught.value)


def test_manifest_and_files_round_trip(store: Store) -> None:
    add(store, V1)
    assert store.manifest(1) == {path: file_hash(data) for path, data in V1.items()}
    assert store.files(1) == V1
    assert store.files(99) == {} and store.manifest(99) == {}


def test_empty_bundle_is_a_version(store: Store) -> None:
    empty = add(store, {})
    assert (empty.number, empty.file_count, empty.total_size) == (1, 0, 0)
    assert store.files(1) == {}


def test_hash_prefix_lookup(store: Store) -> None:
    v1 = add(store, V1)
    add(store, V2)
    again = add(store, V1)  # same content as v1: same hash, new number
    assert again.content_hash == v1.content_hash
    assert [v.number for v in store.versions_by_hash(v1.content_hash[:6])] == [3, 1]
    assert [v.number for v in store.versions_by_hash(v1.content_hash[:8].upper())] == [3, 1]
    assert store.versions_by_hash("0" * 64) == []


def test_damaged_blob_is_detected(store: Store, store_url: str) -> None:
    add(store, V1)
    damaged = file_hash(V1["prompt.txt"])
    raw_execute(store_url, "UPDATE blobs SET data = ? WHERE hash = ?", (b"tampered\n", damaged))
    with pytest.raises(StoreError, match=r"prompt.txt in v1 is damaged"):
        store.files(1)


# ---- environments and verdicts -----------------------------------------------------------------


def test_env_state_starts_empty_and_updates_fields_separately(store: Store) -> None:
    assert store.env_state("staging") == EnvState("staging", None, None, None)
    store.set_env("staging", live_version=2)
    store.set_env("staging", last_good=1)
    state = store.env_state("staging")
    assert (state.name, state.live_version, state.last_good) == ("staging", 2, 1)
    assert state.updated_at is not None and abs(state.updated_at - time.time()) < 60
    store.set_env("staging", live_version=None)
    assert store.env_state("staging").live_version is None
    assert store.env_state("production").live_version is None


def test_verdicts_are_per_env_and_replaced(store: Store) -> None:
    store.set_verdict("staging", 1, "good")
    store.set_verdict("staging", 2, "bad", deployment=5)
    store.set_verdict("production", 1, "bad")
    assert store.verdicts("staging") == {1: "good", 2: "bad"}
    store.set_verdict("staging", 1, "withdrawn")
    assert store.verdicts("staging") == {1: "withdrawn", 2: "bad"}
    times = store.verdict_times("staging")
    assert times[2][0] == "bad" and abs(times[2][1] - time.time()) < 60
    assert store.verdicts("nowhere") == {}


# ---- the ledger -----------------------------------------------------------------------------


def open_record(store: Store, env: str = "staging", **values: Any) -> Any:
    fields = {"env": env, "kind": "deploy", "actor": "ana", "source": "cli", **values}
    return store.begin_deployment(**fields)


def test_ledger_record_defaults_and_updates(store: Store) -> None:
    add(store, V1)
    add(store, V2)
    record = open_record(store, from_version=1, to_version=2, trigger_at=100.0)
    assert (record.id, record.status, record.reason, record.detail) == (1, "running", "", "")
    assert abs(record.requested_at - time.time()) < 60
    done = store.update_deployment(record.id, by="tester", status="succeeded", activated_at=100.25)
    assert (done.status, done.activated_at, done.time_to_active) == ("succeeded", 100.25, 0.25)
    assert store.deployment(record.id) == done


def test_ledger_lists_newest_first_with_filters(store: Store) -> None:
    first = open_record(store)
    open_record(store, "production")
    third = open_record(store, status="succeeded")
    assert [d.id for d in store.deployments()] == [3, 2, 1]
    assert [d.id for d in store.deployments("staging")] == [third.id, first.id]
    assert [d.id for d in store.deployments("staging", status="running")] == [first.id]
    assert [d.id for d in store.deployments(limit=2)] == [3, 2]


def test_a_running_record_needs_its_versions_in_the_store(store: Store) -> None:
    with pytest.raises(NotFoundError, match=r"^no version v3\n"):
        open_record(store, to_version=3)
    done = open_record(store, to_version=3, status="succeeded")  # already happened: kept as is
    assert done.to_version == 3


def test_missing_ledger_record_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no ledger record #42"):
        store.deployment(42)
    with pytest.raises(NotFoundError):
        store.update_deployment(42, by="tester", status="failed")


def test_bad_ledger_writes_become_store_errors(store: Store) -> None:
    with pytest.raises(StoreError, match="failed to open a ledger record"):
        store.begin_deployment(kind="deploy")  # no env, actor or source
    record = open_record(store)
    with pytest.raises(StoreError, match="failed to update a ledger record"):
        store.update_deployment(record.id, by="tester", no_such_column=1)
    assert store.deployment(record.id) == record


def test_check_records_round_trip_and_filter(store: Store) -> None:
    store.record_checks([])
    made = [
        CheckRecord(1, "staging", "bake", 1, "up", True, "200 OK", 0.01, 10.0),
        CheckRecord(1, "staging", "bake", 2, "up", False, "500", 0.02, 11.0),
        CheckRecord(None, "production", "check", 1, "up", True, "200 OK", 0.01, 12.0),
    ]
    store.record_checks(record for record in made)  # any iterable, a generator too
    newest_first = list(reversed(made))
    assert store.check_records() == newest_first
    assert all(type(r.ok) is bool for r in store.check_records())
    assert store.check_records(deployment=1) == newest_first[1:]
    assert store.check_records(env="production") == newest_first[:1]
    assert store.check_records(limit=1) == newest_first[:1]


def test_events_round_trip(store: Store) -> None:
    store.record_event("deploy-started", "deploying v1", env="staging", version=1, at=5.0)
    store.record_event(
        "check-failed", "boom", env="staging", deployment=3, data={"path": Path("/x"), "n": 2}
    )
    store.record_event("lease-broken", "elsewhere", env="production")
    events = store.events("staging")
    assert [e.kind for e in events] == ["check-failed", "deploy-started"]
    assert events[0].to_json()["data"] == {"path": "/x", "n": 2}
    assert (events[1].at, events[1].version, events[1].data) == (5.0, 1, "{}")
    assert [e.kind for e in store.events(limit=1)] == ["lease-broken"]
    assert len(store.events()) == 3


# ---- leases ---------------------------------------------------------------------------------


def test_tokens_keep_hashes_and_are_revoked(store: Store) -> None:
    from lastgood.errors import NotFoundError

    first = store.add_token(
        name="ci", role="deployer", envs="staging,qa", token_hash="a" * 64, created_by="ana"
    )
    second = store.add_token(
        name="page", role="viewer", envs="", token_hash="b" * 64, created_by="ana"
    )
    assert [token.name for token in store.tokens()] == ["ci", "page"]
    assert first.env_list == ["staging", "qa"] and second.env_list == []
    assert "token_hash" not in first.to_json()
    found = store.token_by_hash("a" * 64)
    assert found is not None and found.id == first.id and found.role == "deployer"
    assert store.token_by_hash("c" * 64) is None
    revoked = store.revoke_token(first.id, actor="tester")
    assert revoked.revoked_at is not None
    assert [token.name for token in store.tokens()] == ["page"]
    assert len(store.tokens(include_revoked=True)) == 2
    with pytest.raises(NotFoundError, match="no API token #999"):
        store.revoke_token(999, actor="tester")


def test_consumers_are_replaced_by_id_and_forgotten(store: Store) -> None:
    from lastgood.rows import Consumer

    def seen(cid: str, version: int, at: float) -> Consumer:
        return Consumer(
            env="prod", consumer_id=cid, name=f"app-{cid}", version=version,
            content_hash="h" * 64, since=at, seen_at=at,
        )  # fmt: skip

    store.save_consumers([seen("a", 1, 100.0), seen("b", 1, 101.0)])
    store.save_consumers([seen("a", 2, 102.0)])
    store.save_consumers([])
    listed = store.consumers("prod")
    assert [(c.consumer_id, c.version) for c in listed] == [("a", 2), ("b", 1)]
    assert store.consumers("staging") == []
    assert store.forget_consumers(seen_before=101.5) == 1
    assert [c.consumer_id for c in store.consumers()] == ["a"]
    fleet = [seen(f"f{n}", 1, 200.0) for n in range(1200)]  # more than one statement's worth
    store.save_consumers(fleet)
    store.save_consumers([seen(f"f{n}", 2, 201.0) for n in range(1200)])
    versions = [c.version for c in store.consumers("prod") if c.consumer_id.startswith("f")]
    assert len(versions) == 1200 and set(versions) == {2}


def test_consumer_writes_are_numbered_and_read_back_by_what_changed(store: Store) -> None:
    """Every write of consumers takes the next number of the store's counter; a server reads
    the rows written after the newest number it has seen, leaving its own writes out."""
    from lastgood.rows import Consumer

    def seen(cid: str, version: int, at: float) -> Consumer:
        return Consumer(env="prod", consumer_id=cid, name=cid, version=version,
                        content_hash=None, since=at, seen_at=at)  # fmt: skip

    def ids(found: tuple[list[Consumer], int]) -> tuple[list[str], int]:
        return sorted(consumer.consumer_id for consumer in found[0]), found[1]

    first = store.save_consumers([seen("a", 1, 100.0), seen("b", 1, 100.0)])
    second = store.save_consumers([seen("b", 2, 101.0)])
    assert store.save_consumers([]) == 0  # nothing written, no number taken
    assert second == first + 1
    assert ids(store.consumers_written_after(-1)) == (["a", "b"], second)
    assert ids(store.consumers_written_after(first)) == (["b"], second)
    assert ids(store.consumers_written_after(first, skip={second})) == ([], second)
    assert ids(store.consumers_written_after(second)) == ([], second)
    assert ids(store.consumers_written_after(-1, seen_since=100.5)) == (["b"], second)
    third = store.save_consumers([], leaving=[seen("a", 1, 5.0)])  # left: seen long ago
    assert ids(store.consumers_written_after(second, seen_since=None)) == (["a"], third)
    assert store.forget_consumers(seen_before=1000.0) == 2
    assert store.save_consumers([seen("c", 1, 2000.0)]) == third + 1  # numbers never go back


def test_consumer_writes_from_two_processes_take_distinct_numbers(store_url: str) -> None:
    """Two servers flushing at once: every write has a number of its own, and the last one
    read covers every row (nothing committed below it is missed)."""
    from lastgood.rows import Consumer

    stores = [open_store(store_url) for _ in range(2)]
    numbers: list[int] = []

    def flush(store: Store, side: str) -> None:
        for n in range(15):
            row = Consumer(env="prod", consumer_id=f"{side}{n}", name=side, version=1,
                           content_hash=None, since=1.0, seen_at=1.0)  # fmt: skip
            numbers.append(store.save_consumers([row]))

    try:
        sides = zip(stores, "xy", strict=True)
        threads = [threading.Thread(target=flush, args=side) for side in sides]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        found, newest = stores[0].consumers_written_after(-1)
        assert sorted(numbers) == list(range(1, 31)) and newest == 30
        assert len(found) == 30
    finally:
        for store in stores:
            store.close()


def test_consumers_keep_the_newest_report_and_the_earliest_first_seen(store: Store) -> None:
    """Servers flush their consumers in any order: an older report landing last undoes
    nothing, and the first sight of a consumer is the earliest any server had (unknown, from
    before it was kept, is earliest of all). A consumer that left is written as it says."""
    from lastgood.record import replace
    from lastgood.rows import Consumer

    def seen(version: int, at: float, first: float | None) -> Consumer:
        return Consumer(env="prod", consumer_id="a", name="a", version=version,
                        content_hash=None, since=at, seen_at=at, first_seen=first)  # fmt: skip

    def kept() -> tuple[int | None, float, float | None]:
        (found,) = store.consumers("prod")
        return found.version, found.seen_at, found.first_seen

    store.save_consumers([seen(2, 110.0, 105.0)])  # a second server heard it first at 105
    store.save_consumers([seen(1, 100.0, 100.0)])  # the first one, flushing late
    assert kept() == (2, 110.0, 100.0)
    store.save_consumers([seen(3, 120.0, 120.0)])
    assert kept() == (3, 120.0, 100.0)
    store.save_consumers([], leaving=[replace(seen(3, 20.0, 120.0), name="gone")])
    assert kept() == (3, 20.0, 100.0) and store.consumers("prod")[0].name == "gone"
    store.save_consumers([seen(3, 130.0, None)])  # known from before first sights were kept
    store.save_consumers([seen(3, 140.0, 130.0)])
    assert kept() == (3, 140.0, None)


def test_web_sessions_are_kept_by_hash_replaced_and_forgotten(store: Store) -> None:
    from lastgood.rows import WebSession

    def session(key: str, seen: float) -> WebSession:
        return WebSession(session_hash=key * 64, token_hash="t" * 64, csrf=f"csrf-{key}",
                          created_at=100.0, last_seen=seen)  # fmt: skip

    assert store.session_by_hash("a" * 64) is None
    store.save_session(session("a", 100.0))
    store.save_session(session("b", 200.0))
    store.save_session(session("a", 300.0))  # used again: replaced, not doubled
    assert store.session_by_hash("a" * 64) == session("a", 300.0)
    assert store.touch_session("b" * 64, 200.0) and not store.touch_session("c" * 64, 1.0)
    assert store.session_by_hash("c" * 64) is None  # a touch never makes a session
    assert store.forget_sessions(seen_before=250.0) == 1
    assert store.session_by_hash("b" * 64) is None
    store.delete_session("a" * 64)
    store.delete_session("a" * 64)  # twice is fine
    assert store.session_by_hash("a" * 64) is None


def take(store: Store, ttl: float = 60, force: bool = False, who: str = "ana") -> Any:
    return store.acquire_lease(
        "env:staging", purpose="deploy", holder_name=who, ttl=ttl, force=force
    )


def test_lease_is_taken_and_refused_while_alive(store: Store) -> None:
    mine, previous = take(store)
    assert previous is None and store.lease("env:staging") == mine
    assert (mine.pid, mine.holder, mine.purpose) == (os.getpid(), "ana", "deploy")
    with pytest.raises(LockedError, match=r"locked by ana \(deploy, pid \d+") as caught:
        take(store, who="bob")
    assert "--force" in str(caught.value)


def test_expired_lease_is_taken_over(store: Store) -> None:
    stale, _ = take(store, ttl=-1)
    mine, previous = take(store, who="bob")
    assert previous == stale and store.lease("env:staging") == mine


def test_lease_of_a_dead_process_is_free_at_once(store: Store, store_url: str) -> None:
    child = _run_child(store_url, store, "take-and-die")
    assert child.returncode == 0, child.stderr
    left = store.lease("env:staging")
    assert left is not None and left.expires_at > time.time() + 100  # not expired by time
    mine, previous = take(store)
    assert previous == left and mine.pid == os.getpid()


def test_force_breaks_a_live_lease_and_the_loser_learns_it(store: Store) -> None:
    first, _ = take(store)
    second, previous = take(store, force=True, who="bob")
    assert previous == first
    with pytest.raises(LeaseLostError, match="lost the lease on env:staging"):
        store.renew_lease(first, 60)
    store.release_lease(first)  # not ours any more: must not free bob's lease
    assert store.lease("env:staging") == second
    renewed = store.renew_lease(second, 600)
    assert renewed.expires_at > second.expires_at
    assert store.lease("env:staging") == renewed
    store.release_lease(renewed)
    assert store.lease("env:staging") is None


CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from lastgood.errors import LockedError
    from lastgood.store.core import Store
    from lastgood.store.database import AlchemyDatabase
    from lastgood.store.lite import LiteDatabase

    kind, url, mode, go, stop = sys.argv[1:]
    store = Store((LiteDatabase if kind == "LiteDatabase" else AlchemyDatabase)(url))
    if mode == "take-and-die":
        store.acquire_lease("env:staging", purpose="deploy", holder_name="gone", ttl=600)
        os._exit(0)  # no release, no close: what kill -9 leaves behind
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.002)
    try:
        store.acquire_lease("env:staging", purpose="deploy", holder_name=str(os.getpid()), ttl=60)
        print("won", flush=True)
    except LockedError:
        print("locked", flush=True)
    while not Path(stop).exists():
        time.sleep(0.01)
    store.close()
    """
)


def _child_command(url: str, store: Store, mode: str, folder: Path) -> list[str]:
    kind = type(store.db).__name__
    return [sys.executable, "-c", CHILD, kind, url, mode, str(folder / "go"), str(folder / "stop")]


def _run_child(url: str, store: Store, mode: str) -> subprocess.CompletedProcess[str]:
    command = _child_command(url, store, mode, Path("/nonexistent"))
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_two_processes_racing_for_a_lease_exactly_one_wins(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    command = _child_command(store_url, store, "race", tmp_path)
    racers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        for racer in racers:
            assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
        (tmp_path / "go").touch()
        results = sorted(racer.stdout.readline().strip() for racer in racers if racer.stdout)
    finally:
        (tmp_path / "stop").touch()
        outputs = [racer.communicate(timeout=60) for racer in racers]
    assert results == ["locked", "won"], outputs
    assert all(racer.returncode == 0 for racer in racers), outputs
    held = store.lease("env:staging")
    assert held is not None and held.holder in {str(racer.pid) for racer in racers}


# ---- errors, backends and the schema ----------------------------------------------------------


@pytest.mark.postgres
def test_store_errors_name_the_store_with_its_password_masked(postgres_database: str) -> None:
    with_password = postgres_database.replace("postgres@", "postgres:hunter2@")
    opened = AlchemyStore(with_password)  # trust auth ignores the password
    try:
        with pytest.raises(StoreError) as caught:
            opened.begin_deployment(kind="deploy")
    finally:
        opened.close()
    assert "postgres:***@" in str(caught.value) and "hunter2" not in str(caught.value)


def test_lite_store_errors_name_the_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="failed to open") as caught:
        LiteStore(f"sqlite:///{tmp_path}/missing/folder/store.db")
    assert str(tmp_path) in str(caught.value)
    opened = LiteStore(f"sqlite:///{tmp_path}/store.db")
    opened.close()
    opened.close()
    with pytest.raises(StoreError, match="failed to read versions"):
        opened.head()


def test_both_backends_see_each_others_writes(tmp_path: Path, sqlite_template: Path) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "store.db")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    lite, full = LiteStore(url), AlchemyStore(url)
    try:
        add(lite, V1)
        add(full, V2)
        full.set_env("staging", live_version=2)
        lite.record_event("deploy-started", "from lite", env="staging")
        assert [v.number for v in full.versions()] == [2, 1] == [v.number for v in lite.versions()]
        assert lite.env_state("staging") == full.env_state("staging")
        assert full.events() == lite.events()
        assert lite.files(2) == full.files(2) == V2
        take(lite)
        with pytest.raises(LockedError):
            take(full)
    finally:
        lite.close()
        full.close()


def test_documents_are_versioned_per_name_with_their_diff(store: Store) -> None:
    first = store.add_document_version(
        "pricing", b"plan,price\nbasic,10\n", source="shared/pricing.csv", diff="", added=2,
        removed=0, at=1000.0,
    )  # fmt: skip
    second = store.add_document_version(
        "pricing", b"plan,price\nbasic,12\n", source="shared/pricing.csv",
        diff="-basic,10\n+basic,12\n", added=1, removed=1, at=2000.0,
    )  # fmt: skip
    other = store.add_document_version(
        "policy", b"be kind\n", source="https://example.com/policy", diff="", added=1, removed=0
    )
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert store.document_content("pricing", 1) == b"plan,price\nbasic,10\n"
    assert store.document_content("pricing", 2) == b"plan,price\nbasic,12\n"
    assert [d.version for d in store.document_versions("pricing")] == [2, 1]
    assert [d.name for d in store.document_versions(since=1500.0)][:2] == ["policy", "pricing"]
    assert store.document_versions("pricing", limit=1)[0].diff == "-basic,10\n+basic,12\n"
    with pytest.raises(NotFoundError, match="no version 9 of document 'pricing'"):
        store.document_content("pricing", 9)


def test_document_retention_keeps_the_newest_and_frees_blobs(store: Store) -> None:
    for number in range(1, 6):
        store.add_document_version(
            "sheet", f"row {number}\n".encode(), source="sheet.csv", diff="", added=1, removed=0,
            at=float(number * 100),
        )  # fmt: skip
    blobs_before = store.blob_count()
    assert store.prune_documents("sheet", keep=3, older_than=0.0) == 2
    assert [d.version for d in store.document_versions("sheet")] == [5, 4, 3]
    assert store.blob_count() == blobs_before - 2
    # by age: everything older than 450 goes, except the newest, which always stays
    assert store.prune_documents("sheet", keep=10, older_than=10_000.0) == 2
    assert [d.version for d in store.document_versions("sheet")] == [5]
    assert store.document_content("sheet", 5) == b"row 5\n"


def test_pruning_documents_never_drops_a_blob_a_version_uses(store: Store) -> None:
    add(store, {"pricing.csv": b"shared bytes\n"})
    store.add_document_version(
        "p", b"shared bytes\n", source="p", diff="", added=1, removed=0, at=1.0
    )
    store.add_document_version("p", b"newer\n", source="p", diff="", added=1, removed=1, at=2.0)
    assert store.prune_documents("p", keep=1, older_than=0.0) == 1
    assert store.files(1) == {"pricing.csv": b"shared bytes\n"}


def test_deliveries_are_recorded_and_found_by_key(store: Store) -> None:
    first = store.record_delivery(
        route="ops", destination="json://127.0.0.1/hook", event="drift-detected", env="staging",
        key="drift-detected:staging:abc", status="failed", detail="connection refused",
    )  # fmt: skip
    second = store.record_delivery(
        route="ops", destination="json://127.0.0.1/hook", event="drift-detected", env="staging",
        key="drift-detected:staging:abc", attempt=2, status="sent",
    )  # fmt: skip
    store.record_delivery(
        route="mail", destination="mailto://***@x", event="digest", key="d", status="sent"
    )
    assert second.id > first.id
    found = store.deliveries(key="drift-detected:staging:abc")
    assert [(d.attempt, d.status) for d in found] == [(2, "sent"), (1, "failed")]
    assert found[1].detail == "connection refused"
    assert [d.route for d in store.deliveries(status="sent")] == ["mail", "ops"]
    assert store.deliveries(route="mail", limit=5)[0].env is None
    with pytest.raises(TypeError, match="unknown delivery fields: colour"):
        store.record_delivery(route="x", destination="y", event="z", key="k", status="s", colour=1)


def test_events_and_ledger_records_can_be_read_since_a_time(store: Store) -> None:
    store.record_event("deploy-started", "old", env="staging", at=100.0)
    store.record_event("drift-detected", "new", env="staging", at=200.0)
    store.record_event("deploy-started", "newer", env="prod", at=300.0)
    assert [e.message for e in store.events(since=150.0)] == ["newer", "new"]
    assert [e.message for e in store.events(kind="deploy-started")] == ["newer", "old"]
    assert [e.message for e in store.events("staging", since=150.0, limit=None)] == ["new"]
    old = store.begin_deployment(env="staging", kind="deploy", actor="a", source="cli")
    cutoff = time.time() + 0.001
    while time.time() < cutoff:
        pass
    new = store.begin_deployment(env="staging", kind="rollback", actor="a", source="cli")
    assert [d.id for d in store.deployments(since=cutoff)] == [new.id]
    assert [d.id for d in store.deployments("staging")] == [new.id, old.id]


def test_a_store_made_by_an_older_release_is_upgraded_in_place(tmp_path: Path) -> None:
    """A 0001 store (issue 2's schema) opens under 0002 with its versions intact."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from lastgood.store.database import create_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(schema.MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    engine.dispose()
    raw_execute(url, "INSERT INTO blobs (hash, size, data) VALUES ('h', 1, x'00')")
    assert raw_execute(url, "SELECT version_num FROM alembic_version") == [("0001",)]
    opened = LiteStore(url)
    try:
        assert raw_execute(url, "SELECT version_num FROM alembic_version") == [(SCHEMA_HEAD,)]
        assert opened.blob_count() == 1
        assert opened.document_versions() == []
    finally:
        opened.close()


def test_schema_heads_agree() -> None:
    assert schema.HEAD == schema.alembic_head() == SCHEMA_HEAD


def test_record_fields_match_the_tables() -> None:
    from lastgood.record import fields_of
    from lastgood.rows import (
        ApiToken,
        AuditEntry,
        Consumer,
        Delivery,
        Deployment,
        DocumentVersion,
        EventRecord,
        Lease,
        VersionInfo,
    )

    pairs = [
        (DocumentVersion, t.document_versions),
        (Delivery, t.deliveries),
        (ApiToken, t.api_tokens),
        (Consumer, t.consumers),
        (VersionInfo, t.versions),
        (EnvState, t.environments),
        (Deployment, t.deployments),
        (EventRecord, t.events),
        (Lease, t.leases),
        (CheckRecord, t.check_results),
        (AuditEntry, t.audit_log),
    ]
    for record, table in pairs:
        columns = [column.name for column in table.columns]
        if record is CheckRecord:
            columns.remove("id")  # results are read back without their row id
        if record is VersionInfo:
            columns.remove("tree")  # the store's own pointer, read only inside the store
        if record is Consumer:
            columns.remove("written")  # the store's write number, read only inside the store
        assert list(fields_of(record)) == columns, table.name


@pytest.mark.parametrize("backend_class", [LiteStore, AlchemyStore], ids=["lite", "sqlalchemy"])
def test_a_fresh_sqlite_database_is_migrated(backend_class: type[Any], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a new store.db'}"
    opened = backend_class(url)
    try:
        assert add(opened, V1).number == 1
    finally:
        opened.close()
    assert raw_execute(url, "SELECT version_num FROM alembic_version") == [(schema.HEAD,)]


def schema_of(url: str) -> list[tuple[Any, ...]]:
    return raw_execute(url, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")


def test_a_new_sqlite_store_gets_the_schema_the_migrations_build(tmp_path: Path) -> None:
    made = f"sqlite:///{tmp_path / 'made.db'}"  # the fast lane: sqlite_schema.sql
    migrated = f"sqlite:///{tmp_path / 'migrated.db'}"  # SQLAlchemy: every Alembic migration
    for opened in (LiteStore(made), AlchemyStore(migrated)):
        opened.close()
    assert schema_of(made) == schema_of(migrated)
    assert len(schema_of(made)) > 20
    for url in (made, migrated):
        assert raw_execute(url, "SELECT version_num FROM alembic_version") == [(SCHEMA_HEAD,)]


def test_the_new_store_schema_file_is_what_the_migrations_build() -> None:
    generator = Path(__file__).resolve().parent.parent / "scripts" / "gen_sqlite_schema.py"
    done = subprocess.run([sys.executable, str(generator), "--check"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_processes_opening_one_new_sqlite_store_at_once_all_get_the_same_schema(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    probe = f"from lastgood.store import open_store; open_store({url!r}).close(); print('ok')"
    starting = [subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(4)]  # fmt: skip
    for process in starting:
        out, err = process.communicate(timeout=60)
        assert (process.returncode, out) == (0, "ok\n"), err
    assert raw_execute(url, "SELECT version_num FROM alembic_version") == [(SCHEMA_HEAD,)]
    alone = f"sqlite:///{tmp_path / 'alone.db'}"
    LiteStore(alone).close()
    assert schema_of(url) == schema_of(alone)


def test_a_database_holding_another_programs_table_is_not_given_the_schema(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'theirs.db'}"
    theirs = "CREATE TABLE versions (id INTEGER PRIMARY KEY, label TEXT)"
    raw_execute(url, theirs)
    with pytest.raises(StoreError, match="failed to open"):
        LiteStore(url)
    assert schema_of(url) == [("table", "versions", "versions", theirs)]


def test_an_in_memory_lite_store_works() -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        opened = LiteStore(url)
        try:
            add(opened, V1)
            assert opened.files(1) == V1
        finally:
            opened.close()


def test_lite_store_is_thread_safe(tmp_path: Path, sqlite_template: Path) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "store.db")
    opened = LiteStore(f"sqlite:///{tmp_path / 'store.db'}")

    def write(n: int) -> None:
        for i in range(20):
            opened.record_event("check-round", f"{n}/{i}", env="staging")

    workers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    try:
        assert len(opened.events(limit=1000)) == 80
    finally:
        opened.close()


def test_an_up_to_date_lite_store_never_imports_sqlalchemy(sqlite_template: Path) -> None:
    probe = textwrap.dedent(
        f"""
        import sys
        from lastgood.store import open_store
        store = open_store("sqlite:///{sqlite_template}")
        store.head(); store.env_state("staging"); store.close()
        heavy = sorted(m for m in ("sqlalchemy", "alembic") if m in sys.modules)
        print(type(store.db).__name__, heavy)
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "LiteDatabase []", done.stderr


@pytest.mark.parametrize(
    ("url", "database", "uri"),
    [
        ("sqlite:///relative/store.db", os.path.abspath("relative/store.db"), False),
        ("sqlite:////abs/store.db", "/abs/store.db", False),
        ("sqlite+pysqlite:////abs/my%20store.db", "/abs/my store.db", False),
        ("sqlite://", None, True),
        ("sqlite:///:memory:", None, True),
    ],
)
def test_sqlite_urls_parse_like_sqlalchemy(url: str, database: str | None, uri: bool) -> None:
    location = sqlite_location(url)
    assert location is not None and location.uri is uri
    if database is not None:
        assert location.database == database
    else:
        assert location.database.endswith("?vfs=memdb")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1/db",
        "sqlite:///store.db?timeout=5",
        "sqlite://host/store.db",
        "mysql:///x",
    ],
)
def test_urls_the_fast_lane_leaves_to_sqlalchemy(url: str) -> None:
    assert sqlite_location(url) is None
    with pytest.raises(StoreError, match="cannot open"):
        LiteStore(url)


def test_open_store_picks_the_fast_lane_for_plain_sqlite_urls(tmp_path: Path) -> None:
    lite = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    full = open_store(f"sqlite:///{tmp_path / 'b.db'}?timeout=5")
    try:
        assert (type(lite.db), type(full.db)) == (LiteDatabase, AlchemyDatabase)
    finally:
        lite.close()
        full.close()


@pytest.mark.postgres
def test_open_store_gives_postgresql_to_sqlalchemy(postgres_database: str) -> None:
    remote = open_store(postgres_database)
    try:
        assert type(remote) is Store
    finally:
        remote.close()


# ---- timeouts: a store that never answers, or stays locked ----------------------------------


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A real TCP server on 127.0.0.1 that accepts connections and never says a word."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in [*accepted, listener]:
        connection.close()


@pytest.mark.parametrize(
    "command",
    [["status"], ["deploy", "staging", "-m", "try"], ["rollback", "staging"]],
    ids=lambda args: args[0],
)
def test_a_store_that_accepts_but_never_answers_is_a_clear_error(
    workspace: Any, silent_server: int, command: list[str]
) -> None:
    url = f"postgresql://user:secret@127.0.0.1:{silent_server}/db"
    ws = workspace(store=url)
    ws.healthy()
    result = ws.run(*command, env={"LASTGOOD_STORE_CONNECT_TIMEOUT": "2"}, timeout=30)
    assert result.returncode == StoreError.exit_code, result.stderr
    assert result.stderr.startswith(
        f"error: store postgresql://user:***@127.0.0.1:{silent_server}/db did not answer "
        "the connection within 2 s (LASTGOOD_STORE_CONNECT_TIMEOUT) while trying to open\n"
    )
    assert "lastgood rollback ENV --offline" in result.stderr
    assert "secret" not in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_a_connect_timeout_in_the_store_url_wins(workspace: Any, silent_server: int) -> None:
    ws = workspace(store=f"postgresql://user@127.0.0.1:{silent_server}/db?connect_timeout=2")
    result = ws.run("status", env={"LASTGOOD_STORE_CONNECT_TIMEOUT": "10m"}, timeout=30)
    assert result.returncode == StoreError.exit_code
    assert "did not answer the connection within connect_timeout in the URL" in result.stderr


@pytest.mark.postgres
def test_a_postgresql_store_locked_by_another_session_is_a_clear_error(
    workspace: Any, pg_url: str
) -> None:
    AlchemyStore(pg_url).close()
    ws = workspace(store=pg_url)
    with _pg_connect(pg_url) as holder, holder.transaction():
        holder.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
        result = ws.run("status", env={"LASTGOOD_STORE_STATEMENT_TIMEOUT": "1s"}, timeout=30)
    assert result.returncode == StoreError.exit_code, result.stderr
    assert result.stderr.startswith(
        f"error: store {pg_url} did not finish a statement within 1 s "
        "(LASTGOOD_STORE_STATEMENT_TIMEOUT) while trying to open\n"
    )
    assert "another connection may hold a lock" in result.stderr
    assert "lastgood rollback ENV --offline" in result.stderr


def _hold_write_lock(url: str) -> Any:
    """Another connection holding the store's write lock (its transaction stays open)."""
    location = sqlite_location(url)
    if location is None:
        holder = _pg_connect(url)
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE deployments IN ACCESS EXCLUSIVE MODE")
        return holder
    holder = sqlite3.connect(location.database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_store_locked_by_another_connection_ends_within_the_statement_timeout(
    backend: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LASTGOOD_STORE_STATEMENT_TIMEOUT", "500ms")
    opened = LiteStore(store_url) if backend == "lite-sqlite" else AlchemyStore(store_url)
    holder = _hold_write_lock(store_url)
    try:
        with pytest.raises(StoreError) as caught:
            opened.begin_deployment(kind="deploy", env="staging")
    finally:
        holder.close()
        opened.close()
    waited = (
        "did not finish a statement within"
        if backend.endswith("postgres")
        else "stayed locked by another connection for over"
    )
    assert caught.value.message == (
        f"store {store_url} {waited} 0.5 s (LASTGOOD_STORE_STATEMENT_TIMEOUT) "
        "while trying to open a ledger record"
    )
    assert "lastgood rollback ENV --offline" in str(caught.value.hint)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LASTGOOD_STORE_CONNECT_TIMEOUT", "soon"), ("LASTGOOD_STORE_STATEMENT_TIMEOUT", "-1s")],
)
def test_a_bad_store_timeout_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"^{variable} = '{re.escape(value)}' is not a duration"):
        open_store(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.mark.parametrize(
    ("value", "limit"),
    [
        ("2.5s", "3 s (LASTGOOD_STORE_CONNECT_TIMEOUT)"),
        ("0", "the driver's own limit (LASTGOOD_STORE_CONNECT_TIMEOUT=0)"),
    ],
)
def test_a_connect_timeout_message_names_the_limit_the_driver_used(
    monkeypatch: pytest.MonkeyPatch, value: str, limit: str
) -> None:
    from psycopg.errors import ConnectionTimeout

    from lastgood.store.common import store_failure

    monkeypatch.setenv("LASTGOOD_STORE_CONNECT_TIMEOUT", value)
    error = store_failure("postgresql://u:pw@db/x", "open", ConnectionTimeout("expired"))
    assert error.message == (
        f"store postgresql://u:***@db/x did not answer the connection within {limit} "
        "while trying to open"
    )


# ---- a prune and a version recorded at the same moment (PostgreSQL) ----------------------------


def _waiting_for_advisory_lock(url: str) -> bool:
    with _pg_connect(url) as peek:
        return bool(
            peek.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()[0]
        )


@pytest.mark.postgres
def test_a_version_recorded_during_a_prune_waits_and_keeps_its_files(
    postgres_database: str,
) -> None:
    """A new version that reuses an old version's file and folder, recorded while a prune
    deletes them, must not see them "already stored" and then lose them."""
    from lastgood.store.database import HISTORY_LOCK
    from tests.conftest import eventually

    url = postgres_database
    _empty_postgres(url)
    store = AlchemyStore(url)
    try:
        add(store, {"conf/a.yaml": b"first\n"})
        add(store, {"conf/a.yaml": b"second\n"})
        with _pg_connect(url) as prune, prune.transaction():
            prune.execute("SELECT pg_advisory_xact_lock(%s)", (HISTORY_LOCK,))
            recorded: list[Any] = []
            writer = threading.Thread(
                target=lambda: recorded.append(add(store, {"conf/a.yaml": b"first\n"}))
            )
            writer.start()
            eventually(lambda: _waiting_for_advisory_lock(url))
            # what a prune of v1 deletes: its blob and its trees (v2 never needed them)
            prune.execute("DELETE FROM blobs WHERE hash = %s", (file_hash(b"first\n"),))
            prune.execute("DELETE FROM trees WHERE base IS NULL AND depth = 0 AND hash NOT IN "
                          "(SELECT tree FROM versions WHERE number = 2)")  # fmt: skip
            prune.execute("DELETE FROM versions WHERE number = 1")
        writer.join(timeout=30)
        assert [v.number for v in recorded] == [3]
        assert store.files(3) == {"conf/a.yaml": b"first\n"}
    finally:
        store.close()


@pytest.mark.postgres
def test_a_prune_waits_for_a_version_being_recorded(postgres_database: str) -> None:
    from lastgood.store.database import HISTORY_LOCK
    from tests.conftest import eventually

    url = postgres_database
    _empty_postgres(url)
    store = AlchemyStore(url)
    try:
        for text in (b"one\n", b"two\n", b"three\n"):
            add(store, {"a": text})
        with _pg_connect(url) as writer, writer.transaction():
            writer.execute("SELECT pg_advisory_xact_lock_shared(%s)", (HISTORY_LOCK,))
            pruned: list[Any] = []
            prune = threading.Thread(target=lambda: pruned.append(store.drop_versions([1])))
            prune.start()
            eventually(lambda: _waiting_for_advisory_lock(url))
            assert pruned == []
        prune.join(timeout=30)
        assert pruned[0].versions == (1,)
    finally:
        store.close()
