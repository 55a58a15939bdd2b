"""``lastgood store verify``, ``lastgood prune`` and ``lastgood store copy``, as a user runs
them, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from lastgood.bundle import Bundle
from lastgood.store import open_store
from lastgood.store.database import create_engine
from tests.conftest import Workspace

Make = Callable[..., Workspace]


def history(ws: Workspace, count: int) -> None:
    """``count`` versions of a nested folder, each changing one file and adding one, recorded
    by the verb ``lastgood snapshot`` runs, in this process: the tools under test run as a user
    runs them, and starting the CLI only to write a history was most of some tests' time."""
    from lastgood.operations.snapshot import snapshot
    from lastgood.project import Project

    project = Project.open(ws.root, store_url=ws.store, actor="tester")
    try:
        for number in range(1, count + 1):
            ws.write("rules/routing/eu.yaml", f"queue: eu-{number}\n")
            ws.write(f"notes/n{number}.md", f"note {number}\n")
            ws.write("prompt.txt", "Score each lead.\n")
            assert snapshot(project, f"change {number}").created
    finally:
        project.close()


def execute(url: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            result = db.execute(sa.text(sql), params or {})
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def count(url: str, table: str) -> int:
    return int(execute(url, f"SELECT count(*) FROM {table}")[0][0])


def store_of(ws: Workspace) -> str:
    return ws.store or f"sqlite:///{ws.root / '.lastgood' / 'store.db'}"


# ---- store verify -----------------------------------------------------------------------------


def test_verify_says_a_sound_store_is_sound(workspace: Make, store_url: str) -> None:
    ws = workspace(store=store_url)
    history(ws, 3)
    done = ws.run("store", "verify")
    assert done.returncode == 0, done.stderr
    assert "store is sound: checked 3 versions" in done.stdout


def test_verify_names_a_damaged_blob_and_the_versions_that_hold_it(
    workspace: Make, store_url: str
) -> None:
    ws = workspace(store=store_url)
    history(ws, 3)
    digest = Bundle({"p": b"Score each lead.\n"}).manifest["p"]
    execute(store_of(ws), "UPDATE blobs SET data = :data WHERE hash = :hash",
            {"data": b"Score no lead.\n", "hash": digest})  # fmt: skip
    done = ws.run("store", "verify", "--json")
    assert done.returncode == 4, done.stderr
    report = json.loads(done.stdout)
    assert report["healthy"] is False
    assert {"kind": "blob", "name": digest,
            "problem": "its bytes no longer hash to its name"} in report["damage"]  # fmt: skip
    versions = {d["name"] for d in report["damage"] if d["kind"] == "version"}
    assert versions == {"v1", "v2", "v3"}
    plain = ws.run("store", "verify")
    assert plain.returncode == 4
    assert "prompt.txt is missing or damaged" in plain.stdout
    assert "rollback ENV --offline" in plain.stderr


def test_verify_names_a_damaged_tree(workspace: Make, store_url: str) -> None:
    ws = workspace(store=store_url)
    history(ws, 3)
    url = store_of(ws)
    # the routing folder's tree of v2, stored as a delta on v1's: break its bytes
    (key, data), *_ = execute(url, "SELECT hash, data FROM trees WHERE depth = 1 LIMIT 1")
    execute(url, "UPDATE trees SET data = :data WHERE hash = :hash",
            {"data": bytes(data)[:-3] + b"zz\0", "hash": key})  # fmt: skip
    done = ws.run("store", "verify", "--json")
    assert done.returncode == 4, done.stderr
    damage = json.loads(done.stdout)["damage"]
    assert any(d["kind"] == "version" and "damaged" in d["problem"] for d in damage), damage
    assert bytes(key).hex()[:12] in json.dumps(damage)


def test_verify_names_a_version_whose_content_hash_does_not_recompute(
    workspace: Make, store_url: str
) -> None:
    ws = workspace(store=store_url)
    history(ws, 2)
    execute(store_of(ws), "UPDATE versions SET content_hash = :h WHERE number = 2", {"h": "a" * 64})
    done = ws.run("store", "verify", "--json")
    assert done.returncode == 4
    assert json.loads(done.stdout)["damage"] == [
        {"kind": "version", "name": "v2",
         "problem": "its trees no longer give back its content hash"}
    ]  # fmt: skip


# ---- prune ------------------------------------------------------------------------------------


def test_prune_never_drops_what_is_live_last_good_or_retained(
    workspace: Make, store_url: str
) -> None:
    ws = workspace(store=store_url, bake="0.1s")
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "one").returncode == 0  # v1: retained, then last good
    history(ws, 4)  # v2..v5 never ran anywhere
    ws.healthy("two")
    assert ws.run("deploy", "staging", "-m", "two").returncode == 0  # v6: live and last good
    history(ws, 2)  # v7, v8: v8 is the newest
    dry = ws.run("prune", "--keep", "1", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["versions"] == ["v2", "v3", "v4", "v5", "v7"]
    assert plan["kept"]["v1"] == "retained on staging's target"
    assert plan["kept"]["v6"].startswith(("live", "last known good"))
    assert ws.run("log", "-n", "20").stdout.count("\nv") == 8  # a dry run changes nothing
    refused = ws.run("prune", "--keep", "1")
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    done = ws.run("prune", "--keep", "1", "--yes")
    assert done.returncode == 0, done.stderr
    assert "dropped 5 versions: v2, v3, v4, v5, v7" in done.stdout
    assert "kept v1: retained on staging's target" in done.stderr
    gone = ws.run("show", "v3")
    assert gone.returncode == 2 and "no version v3: it was pruned" in gone.stderr
    for kept in ("v1", "v6", "v8"):
        assert ws.run("show", kept).returncode == 0
    assert ws.run("store", "verify").returncode == 0
    rollback = ws.run("rollback", "staging", "--to", "v1")
    assert rollback.returncode == 0, rollback.stderr
    project = ws.project()
    (event,) = project.store.events(kind="pruned")
    assert event.message == "pruned 5 versions (v2, v3, v4, v5, v7)"


def test_prune_frees_the_trees_and_blobs_only_dropped_versions_held(
    workspace: Make, store_url: str
) -> None:
    ws = workspace(store=store_url)
    history(ws, 12)
    url = store_of(ws)
    before = count(url, "trees"), count(url, "blobs")
    done = ws.run("prune", "--keep", "3", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["versions"] == [f"v{n}" for n in range(1, 10)]
    after = count(url, "trees"), count(url, "blobs")
    assert after[0] == before[0] - result["trees"] and result["trees"] > 0
    assert after[1] == before[1] - result["blobs"] and result["blobs"] > 0
    assert execute(url, "SELECT count(*) FROM trees WHERE base IS NOT NULL AND base NOT IN "
                   "(SELECT hash FROM trees)") == [(0,)]  # fmt: skip
    assert ws.run("store", "verify").returncode == 0
    project = ws.project()
    for number in (10, 11, 12):
        files = project.store.files(number)
        assert files[f"notes/n{number}.md"] == f"note {number}\n".encode()
        assert Bundle(files).content_hash == project.store.version(number).content_hash


def test_prune_needs_a_rule_and_a_real_age(workspace: Make) -> None:
    ws = workspace()
    history(ws, 1)
    bare = ws.run("prune")
    assert bare.returncode == 2 and "--keep N" in bare.stderr
    assert ws.run("prune", "--older-than", "soon").returncode == 2
    old = ws.run("prune", "--older-than", "30d", "--yes")
    assert old.returncode == 0 and "nothing to prune" in old.stdout


def test_the_store_refuses_to_drop_a_protected_version_even_when_asked(tmp_path: Any) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        for number in (1, 2, 3):
            store.add_version(Bundle({"a": str(number).encode()}), author="a", message="m",
                              source="cli")  # fmt: skip
        store.set_env("production", live_version=1)
        from lastgood.errors import RefusedError

        with pytest.raises(RefusedError, match=r"refusing to prune v1, v3"):
            store.drop_versions([1, 2, 3])
        assert [v.number for v in store.versions()] == [3, 2, 1]
    finally:
        store.close()


# ---- store copy -------------------------------------------------------------------------------


def busy_store(ws: Workspace) -> None:
    """A store with everything in it: versions, the ledger, checks, events, documents, tokens."""
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "one").returncode == 0
    ws.broken("two")
    assert ws.run("deploy", "staging", "-m", "two").returncode == 3
    history(ws, 3)
    assert ws.run("token", "create", "--name", "ci", "--role", "deployer").returncode == 0
    project = ws.project()
    project.store.add_document_version("runbook", b"step one\n", source="file:r.md", diff="",
                                       added=1, removed=0)  # fmt: skip


def test_copy_moves_a_busy_sqlite_store_to_postgresql_and_everything_works_there(
    workspace: Make, pg_url: str
) -> None:
    ws = workspace(bake="0.1s")
    busy_store(ws)
    done = ws.run("store", "copy", "--to", pg_url, "--json")
    assert done.returncode == 0, done.stderr
    copied = json.loads(done.stdout)
    assert copied["verified"] is True and copied["rows"]["versions"] == 5
    assert copied["rows"]["check_results"] > 0 and copied["rows"]["api_tokens"] == 1
    source = store_of(ws)
    for table in ("versions", "deployments", "events", "check_results", "blobs", "trees",
                  "document_versions", "api_tokens", "verdicts", "environments"):  # fmt: skip
        assert execute(pg_url, f"SELECT count(*) FROM {table}") == execute(
            source, f"SELECT count(*) FROM {table}"
        ), table
    log = ws.run("log").stdout
    ws.store = pg_url  # every command, on the copy
    assert ws.run("log").stdout == log
    assert "v2" in ws.run("history", "staging").stdout
    assert ws.run("show", "v1", "health.txt").stdout == "ok\n"
    assert ws.run("documents", "show", "runbook").stdout == "step one\n"
    assert ws.run("token", "list").stdout.count("ci") == 1
    rollback = ws.run("rollback", "staging", "--to", "v1")
    assert rollback.returncode == 0, rollback.stderr
    ws.healthy("three")
    deploy = ws.run("deploy", "staging", "-m", "three")
    assert deploy.returncode == 0, deploy.stderr
    assert "#4" in ws.run("history", "staging").stdout  # ids continue after the copied ones
    assert ws.run("store", "verify").returncode == 0


def test_copy_moves_a_postgresql_store_back_to_sqlite(
    workspace: Make, pg_url: str, tmp_path: Any
) -> None:
    ws = workspace(store=pg_url, bake="0.1s")
    busy_store(ws)
    back = f"sqlite:///{tmp_path / 'back.db'}"
    done = ws.run("store", "copy", "--to", back)
    assert done.returncode == 0, done.stderr
    ws.store = back
    assert ws.run("store", "verify").returncode == 0
    assert ws.run("rollback", "staging", "--to", "v1").returncode == 0


def test_copy_refuses_a_destination_that_holds_anything(workspace: Make, tmp_path: Any) -> None:
    ws = workspace()
    history(ws, 1)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    store = open_store(other)
    store.record_event("note", "already used")
    store.close()
    done = ws.run("store", "copy", "--to", other)
    assert done.returncode == 5
    assert "is not empty (it holds alembic_version, api_tokens" in done.stderr
    assert execute(other, "SELECT count(*) FROM versions") == [(0,)]


# ---- what operators found (each failed before its fix) ---------------------------------------


def test_prune_keeps_where_a_rollback_would_go_and_what_is_quarantined(workspace: Make) -> None:
    ws = workspace(bake="0.2s")
    config = ws.root / "lastgood.toml"
    config.write_text(config.read_text().replace("keep = 5", "keep = 1"))
    for marker in ("one", "two"):
        ws.healthy(marker)
        assert ws.run("deploy", "staging", "-m", marker).returncode == 0  # v1, v2: good
    ws.broken("three")
    assert ws.run("deploy", "staging", "-m", "three").returncode == 3  # v3: bad, v2 restored
    ws.healthy("four")
    assert ws.run("deploy", "staging", "-m", "four").returncode == 0  # v4: live
    done = ws.run("prune", "--keep", "1", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["versions"] == ["v1"]
    assert result["kept"]["v2"] == "where 'lastgood rollback staging' would go"
    assert result["kept"]["v3"] == "failed somewhere: its quarantine needs it"
    ws.broken("three")  # the same broken content again: still refused, not deployed
    again = ws.run("deploy", "staging", "-m", "three again")
    assert again.returncode == 5 and "quarantined" in again.stderr
    rollback = ws.run("rollback", "staging")
    assert rollback.returncode == 0 and "restored v2" in rollback.stderr


def test_prune_refuses_when_a_target_cannot_show_what_it_keeps(workspace: Make) -> None:
    ws = workspace(target="files", bake="0.1s")
    for marker in ("one", "two"):
        ws.healthy(marker)
        assert ws.run("deploy", "staging", "-m", marker).returncode == 0
    history(ws, 2)
    app = ws.base / "app"
    app.rename(ws.base / "app.moved")
    done = ws.run("prune", "--keep", "1", "--yes")
    assert done.returncode == 5
    assert "cannot tell which versions staging's target keeps" in done.stderr
    (ws.base / "app.moved").rename(app)
    assert ws.run("log").stdout.count("\nv") == 4


def test_a_deploy_cannot_start_on_a_version_a_prune_just_dropped(tmp_path: Any) -> None:
    from lastgood.errors import NotFoundError

    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        for number in (1, 2, 3):
            store.add_version(Bundle({"a": str(number).encode()}), author="a", message="m",
                              source="cli")  # fmt: skip
        store.drop_versions([2])
        with pytest.raises(NotFoundError, match="no version v2: it was pruned"):
            store.begin_deployment(env="staging", kind="deploy", to_version=2, actor="a",
                                   source="cli")  # fmt: skip
        assert store.deployments() == []
    finally:
        store.close()


def test_prune_gives_the_space_back_to_the_disk(workspace: Make) -> None:
    ws = workspace()
    history(ws, 30)
    assert ws.run("prune", "--keep", "2", "--yes").returncode == 0
    path = ws.root / ".lastgood" / "store.db"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA freelist_count").fetchone() == (0,)


def test_a_bare_number_is_not_an_age(workspace: Make) -> None:
    ws = workspace()
    history(ws, 2)
    done = ws.run("prune", "--older-than", "90", "--yes")
    assert done.returncode == 2 and "needs a unit" in done.stderr
    assert ws.run("log").stdout.count("\nv") == 2


def test_a_damaged_content_hash_stops_show_and_deploy(workspace: Make) -> None:
    ws = workspace()
    history(ws, 2)
    execute(store_of(ws), "UPDATE versions SET content_hash = :h WHERE number = 1", {"h": "0" * 64})
    for args in (("show", "v1"), ("deploy", "staging", "--version", "v1")):
        done = ws.run(*args)
        assert done.returncode == 1, args
        assert "stored content of v1 is damaged: its files no longer match" in done.stderr
        assert "store verify" in done.stderr


def test_copy_refuses_a_database_with_other_tables_and_the_store_itself(
    workspace: Make, pg_url: str
) -> None:
    ws = workspace()
    history(ws, 1)
    execute(pg_url, "CREATE TABLE customers (id integer)")
    done = ws.run("store", "copy", "--to", pg_url)
    assert done.returncode == 5 and "it holds customers" in done.stderr
    assert execute(pg_url, "SELECT count(*) FROM information_schema.tables "
                   "WHERE table_schema = 'public'") == [(1,)]  # fmt: skip
    itself = ws.run("store", "copy", "--to", f"sqlite:///{ws.root}/./.lastgood/store.db")
    assert itself.returncode == 2 and "the destination is the store itself" in itself.stderr


def test_copy_refuses_while_a_deploy_is_running(workspace: Make, tmp_path: Any) -> None:
    ws = workspace()
    history(ws, 1)
    project = ws.project()
    project.store.begin_deployment(env="staging", kind="deploy", to_version=1, actor="a",
                                   source="cli")  # fmt: skip
    done = ws.run("store", "copy", "--to", f"sqlite:///{tmp_path / 'copy.db'}")
    assert done.returncode == 5 and "deploy #1 on staging is running" in done.stderr
    assert not (tmp_path / "copy.db").exists()


def test_copy_goes_ahead_into_the_empty_store_an_interrupted_copy_left(
    workspace: Make, tmp_path: Any
) -> None:
    ws = workspace()
    history(ws, 2)
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    open_store(target).close()  # the schema, created before a copy that was then killed
    done = ws.run("store", "copy", "--to", target)
    assert done.returncode == 0, done.stderr
    assert count(target, "versions") == 2


def test_a_store_from_a_newer_release_is_left_alone(tmp_path: Any) -> None:
    from lastgood.errors import StoreError

    url = f"sqlite:///{tmp_path / 'store.db'}"
    open_store(url).close()
    execute(url, "UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(StoreError, match="schema 0099, which this lastgood does not know"):
        open_store(url)
    assert execute(url, "SELECT version_num FROM alembic_version") == [("0099",)]


def test_an_sqlite_too_old_for_the_store_is_named(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lastgood.errors import StoreError

    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(
        StoreError, match=r"needs SQLite 3\.35 or newer; this Python uses SQLite 3\.31\.1"
    ):
        open_store(f"sqlite:///{tmp_path / 'store.db'}")
