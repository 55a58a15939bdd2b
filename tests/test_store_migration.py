"""Store v2's migration (0005): a store the previous release wrote becomes trees, verified.

``tests/data/store-0004.db`` was written by that release (``tests/data/make_store_0004.py``
says how). On PostgreSQL the same rows are copied into a database migrated to 0004 first.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from lastgood.bundle import Bundle, manifest_hash
from lastgood.errors import StoreError
from lastgood.store import open_store, schema
from lastgood.store.database import create_engine

FIXTURE = Path(__file__).parent / "data" / "store-0004.db"
PG_ADMIN = os.environ.get("LASTGOOD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
OLD_TABLES = ("blobs", "versions", "version_files", "environments", "verdicts", "deployments",
              "events", "document_versions", "api_tokens")  # fmt: skip


def old_rows(table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(FIXTURE) as db:
        return db.execute(f"SELECT * FROM {table}").fetchall()


def alembic_upgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(schema.MIGRATIONS))
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def copy_fixture_into(url: str) -> None:
    """The fixture's rows in a database at schema 0004 (how the old release left PostgreSQL)."""
    alembic_upgrade(url, "0004")
    source, target = create_engine(f"sqlite:///{FIXTURE}"), create_engine(url)
    tables = sa.MetaData()
    tables.reflect(target, only=list(OLD_TABLES))
    with source.connect() as read, target.begin() as write:
        for name in OLD_TABLES:
            rows = [dict(row._mapping) for row in read.execute(sa.text(f"SELECT * FROM {name}"))]
            if rows:
                write.execute(tables.tables[name].insert(), rows)
        if target.dialect.name == "postgresql":
            for name in ("deployments", "events", "api_tokens"):
                write.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT max(id) FROM {name}))"
                ))  # fmt: skip
    source.dispose()
    target.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a store exactly as the previous release left it."""
    if request.param == "sqlite":
        shutil.copy(FIXTURE, tmp_path / "store.db")
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    name = f"lastgood_migrate_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")  # fmt: skip
    with admin.connect() as db:
        db.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        copy_fixture_into(url)
        yield url
    finally:
        with admin.connect() as db:
            db.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            return [tuple(row) for row in db.execute(sa.text(sql))]
    finally:
        engine.dispose()


def tables_of(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_store_the_previous_release_wrote_migrates_with_every_version_intact(
    old_store: str,
) -> None:
    old_manifests: dict[int, dict[str, str]] = {}
    for version, path, blob in old_rows("version_files"):
        old_manifests.setdefault(int(version), {})[str(path)] = str(blob)  # type: ignore[call-overload]
    store = open_store(old_store)
    try:
        versions = store.versions()
        assert [v.number for v in versions] == list(range(41, 0, -1))
        for version in versions:
            files = store.files(version.number)
            assert Bundle(files).content_hash == version.content_hash, version.label
            assert store.manifest(version.number) == old_manifests.get(version.number, {})
        assert (
            store.files(1)["notes/caf\u00e9 menu.md"]
            == "Caf\u00e9 \u2014 prompts by region\n".encode()
        )
        assert store.files(40) == {}
        assert store.document_content("runbook", 2) == b"step one\nstep two\n"
        assert store.env_state("production").live_version == 41
        assert [t.name for t in store.tokens()] == ["ci"]
        assert store.deployments("production")[0].status == "verified"
        assert store.events("production")[0].kind == "deploy-verified"
        store.add_version(
            Bundle({"after.txt": b"migrated\n"}), author="a", message="m", source="cli"
        )
        assert store.files(42) == {"after.txt": b"migrated\n"}
        record = store.begin_deployment(env="production", kind="deploy", actor="a", source="cli")
        assert record.id == 2
    finally:
        store.close()
    assert "version_files" not in tables_of(old_store)
    assert query(old_store, "SELECT version_num FROM alembic_version") == [(schema.HEAD,)]
    chained = query(old_store, "SELECT seq, kind, subject FROM audit_log ORDER BY seq")
    assert chained == [(1, "chain-started", "store"), (2, "deployment-opened", "deployment:2")]
    if old_store.startswith("sqlite:///"):  # compacted once after the upgrade
        path = Path(old_store[len("sqlite:///") :])
        assert path.stat().st_size < FIXTURE.stat().st_size
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA freelist_count").fetchone() == (0,)
    codecs = dict(query(old_store, "SELECT codec, count(*) FROM blobs GROUP BY codec"))
    assert codecs.get("zlib", 0) >= 1  # big/scoring.json compresses
    assert query(old_store, "SELECT count(*) FROM versions WHERE tree IS NULL") == [(0,)]


def test_pruning_a_document_keeps_a_blob_an_old_version_also_holds(old_store: str) -> None:
    """The runbook's first content equals a version's file: migrated, it stays a version's."""
    store = open_store(old_store)
    try:
        store.prune_documents("runbook", keep=1, older_than=0)
        assert [d.version for d in store.document_versions("runbook")] == [2]
        assert store.files(1)["rules/threshold.yaml"] == b"threshold: 0.5\n"
    finally:
        store.close()


KILLED_OPEN = textwrap.dedent(
    """
    import sys
    from lastgood.store import open_store
    open_store(sys.argv[1])
    """
)


def test_a_migration_killed_midway_leaves_the_old_store_as_it_was(old_store: str) -> None:
    before = sorted(query(old_store, "SELECT version, path, blob FROM version_files"))
    environment = {**os.environ, "LASTGOOD_FAILPOINT": "migration.mid-trees"}
    done = subprocess.run([sys.executable, "-c", KILLED_OPEN, old_store], env=environment,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == -9, done.stderr
    assert query(old_store, "SELECT version_num FROM alembic_version") == [("0004",)]
    assert sorted(query(old_store, "SELECT version, path, blob FROM version_files")) == before
    assert "trees" not in tables_of(old_store)
    store = open_store(old_store)  # the next command migrates it after all
    try:
        assert all(
            Bundle(store.files(v.number)).content_hash == v.content_hash for v in store.versions()
        )
    finally:
        store.close()


def test_a_damaged_old_store_is_refused_by_name_and_left_untouched(old_store: str) -> None:
    other = query(old_store, "SELECT blob FROM version_files WHERE path = 'binary.bin'")[0][0]
    engine = create_engine(old_store)
    with engine.begin() as db:  # v7's prompt.txt now names another stored file's bytes
        db.execute(sa.text(
            "UPDATE version_files SET blob = :blob WHERE version = 7 AND path = 'prompt.txt'"
        ), {"blob": other})  # fmt: skip
    engine.dispose()
    with pytest.raises(StoreError, match=r"v7 is damaged .*nothing was changed") as caught:
        open_store(old_store)
    assert "rollback ENV --offline" in (caught.value.hint or "")
    assert query(old_store, "SELECT version_num FROM alembic_version") == [("0004",)]
    assert "version_files" in tables_of(old_store)


def test_the_migration_can_be_undone_to_the_previous_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    shutil.copy(FIXTURE, tmp_path / "store.db")
    open_store(url).close()
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(schema.MIGRATIONS))
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
    engine.dispose()
    assert sorted(query(url, "SELECT version, path, blob FROM version_files")) == sorted(
        old_rows("version_files")
    )
    assert sorted(query(url, "SELECT hash, size, data FROM blobs")) == sorted(old_rows("blobs"))
    for number, content_hash in query(url, "SELECT number, content_hash FROM versions"):
        rows = query(url, f"SELECT path, blob FROM version_files WHERE version = {number}")
        assert manifest_hash([(str(p), str(b)) for p, b in rows]) == content_hash


OPEN_AT_ONCE = """
import sys, time
from lastgood.store import open_store
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
open_store(sys.argv[1]).close()
print("opened")
"""


def test_processes_opening_a_new_store_at_the_same_moment_all_succeed(
    store_url: str,
) -> None:
    """The first commands on a new PostgreSQL database often start together (two servers, a
    server and the CLI): each used to create the tables in its own transaction, and all but one
    failed with a duplicate-key error from the catalogue. Every one must open the store."""
    start = f"{time.time() + 1.5:.3f}"
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT_ONCE, store_url, start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for opener in openers:
            out, err = opener.communicate(timeout=60)
            assert opener.returncode == 0 and out.strip() == "opened", err
    finally:
        for opener in openers:
            opener.kill()
            opener.communicate()
    engine = create_engine(store_url)
    try:
        assert schema.current_revision(engine) == schema.HEAD
    finally:
        engine.dispose()


@pytest.mark.parametrize("layer", ["store", "engine"])
def test_a_new_sqlite_store_opens_while_another_connection_holds_its_write_lock(
    tmp_path: Path, layer: str
) -> None:
    """Turning a new database to WAL needs its exclusive lock, which SQLite refuses at once
    (no busy wait) while another connection holds the write lock: a process opening a new store
    while another was creating it failed with "database is locked". It now waits for the lock,
    as the busy timeout says, through both connection layers."""
    path = tmp_path / "store.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock of a database not yet in WAL
    releaser = threading.Timer(0.5, holder.execute, ("COMMIT",))
    releaser.start()
    started = time.monotonic()
    try:
        if layer == "store":
            open_store(f"sqlite:///{path}").close()
        else:
            engine = create_engine(f"sqlite:///{path}")
            with engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            engine.dispose()
    finally:
        releaser.join()
        holder.close()
    assert time.monotonic() - started >= 0.4  # it waited for the lock rather than failing
