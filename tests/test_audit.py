"""The audit chain: what is chained, that a clean chain verifies, that every form of tampering
is caught and named (a row edited, deleted, reordered, the tail truncated, the chain rewritten),
on SQLite and PostgreSQL, that concurrent writers on PostgreSQL keep one chain, that a real
deploy and rollback through the CLI chain their ledger records and keep the head on the target,
and that every link names who made that change (an update's maker, not the record's actor; a
token revoked through the server, the calling token). The tables held against the chain are
``tests/test_audit_rows.py``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from lastgood.bundle import Bundle
from lastgood.errors import UsageError
from lastgood.operations.audit import export_audit, read_head_file, verify_audit
from lastgood.project import Project
from lastgood.refs import LARGEST_SEQ
from lastgood.rows import AuditHead
from lastgood.store import chain, open_store
from lastgood.store.chain_rows import RowCheck
from lastgood.store.chain_walk import ChainWalk
from lastgood.store.lite import sqlite_location
from lastgood.targets.base import Release
from lastgood.targets.directory import DirectoryTarget
from tests.conftest import FAST, Workspace

DOCS = Path(__file__).resolve().parent.parent / "docs" / "audit.md"


def raw(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run SQL behind the store's back, as someone tampering with it would (``?`` params)."""
    location = sqlite_location(url)
    if location is None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as connection:
            cursor = connection.execute(sql.replace("?", "%s"), params)
            return list(cursor.fetchall()) if cursor.description else []
    with closing(sqlite3.connect(location.database)) as connection, connection:
        return list(connection.execute(sql, params).fetchall())


@pytest.fixture
def project(workspace: Callable[..., Workspace], store_url: str) -> Project:
    """A workspace on the store under test (SQLite, then PostgreSQL); its target holds nothing
    yet, so no head is kept outside the table unless a test makes one."""
    opened: Project = workspace(store=store_url, **FAST).project()
    return opened


def fill(project: Project) -> list[str]:
    """Write one of everything that is chained; returns the kinds chained, in order."""
    store = project.store
    version = store.add_version(Bundle({"a.txt": b"1\n"}), author="ann", message="m", source="cli")
    record = store.begin_deployment(env="staging", kind="deploy", to_version=1, actor="ann",
                                    source="cli")  # fmt: skip
    store.update_deployment(record.id, by="dan", status="succeeded", finished_at=1.5)
    token = store.add_token(name="ci", role="deployer", envs="", token_hash="f" * 64,
                            created_by="ann")  # fmt: skip
    store.revoke_token(token.id, actor="bob")
    entry = {"actor": "ann", "action": "opened", "content_hash": version.content_hash,
             "base_hash": ""}  # fmt: skip
    request = store.open_request(entry, env="staging", version=1, content_hash=version.content_hash,
                                 base_version=None, base_hash="", requester="ann", reason="why",
                                 status="open", risk="low", routing="{}")  # fmt: skip
    store.add_request_entry(request.number, {**entry, "actor": "bob", "action": "approved"})
    store.record_event("lease-broken", "broke it", env="staging", actor="cat")
    store.record_event("staged", "not chained", env="staging")
    return ["deployment-opened", "deployment-updated", "token-created", "token-revoked",
            "request-opened", "request-entry", "request-entry", "event-lease-broken"]  # fmt: skip


def first_break(project: Project, *heads: Path) -> tuple[int, str, str]:
    report = verify_audit(project, head_files=heads)
    assert report.first_break is not None, "tampering went unnoticed"
    assert not report.sound
    return report.first_break.seq, report.first_break.problem, report.first_break.detail


# ---- what is chained ----------------------------------------------------------------------------


def test_a_clean_chain_verifies_and_holds_every_kind_of_write(project: Project) -> None:
    kinds = fill(project)
    entries = project.store.audit_entries()
    assert [entry.kind for entry in entries] == kinds
    assert [entry.seq for entry in entries] == list(range(1, len(kinds) + 1))
    assert [entry.actor for entry in entries] == ["ann", "dan", "ann", "bob", "ann", "ann", "bob",
                                                  "cat"]  # fmt: skip
    assert [entry.subject for entry in entries][:5] == [
        "deployment:1", "deployment:1", "token:1", "token:1", "request:1"
    ]  # fmt: skip
    assert json.loads(entries[1].data)["status"] == "succeeded"
    assert json.loads(entries[6].data)["action"] == "approved"
    assert all("token_hash" not in json.loads(entry.data) for entry in entries)
    report = verify_audit(project)
    assert report.sound and report.first_break is None
    assert report.entries == len(kinds)
    assert report.head == AuditHead(entries[-1].seq, entries[-1].hash)


def test_each_link_hashes_the_one_before_and_its_canonical_entry(project: Project) -> None:
    fill(project)
    previous = None
    for entry in project.store.audit_entries():
        data = json.loads(entry.data)
        assert entry.data == json.dumps(data, sort_keys=True, separators=(",", ":"))
        layout = json.dumps({"actor": entry.actor, "at": entry.at, "data": entry.data,
                             "kind": entry.kind, "seq": entry.seq, "subject": entry.subject},
                            sort_keys=True, separators=(",", ":")).encode("ascii")  # fmt: skip
        import hashlib

        start = bytes(32) if previous is None else bytes.fromhex(previous)
        assert entry.hash == hashlib.sha256(start + layout).hexdigest()
        previous = entry.hash


def test_the_worked_example_in_the_docs_is_what_the_code_computes() -> None:
    text = DOCS.read_text(encoding="utf-8")
    entry = chain.entry_bytes(1, 1750000000.25, "token-revoked", "token:4", "ann",
                              '{"id":4,"revoked_at":1750000000.25}')  # fmt: skip
    assert entry.decode() in text
    assert chain.link_hash(None, entry) in text


def test_a_write_that_fails_chains_nothing(project: Project) -> None:
    from lastgood.errors import NotFoundError, StoreError

    with pytest.raises(NotFoundError):
        project.store.begin_deployment(env="staging", kind="deploy", to_version=7, actor="a",
                                       source="cli")  # fmt: skip
    with pytest.raises(StoreError):
        project.store.update_deployment(1, by="a", no_such_column=1)
    assert project.store.audit_entries() == []


# ---- tampering, each form caught and named ----------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [("data", '{"status":"succeeded"}'), ("actor", "mallory"), ("at", 1.0), ("kind", "x")],
)
def test_an_edited_row_is_named(project: Project, store_url: str, column: str, value: Any) -> None:
    fill(project)
    raw(store_url, f"UPDATE audit_log SET {column} = ? WHERE seq = 3", (value,))
    seq, problem, detail = first_break(project)
    assert (seq, problem) == (3, "edited")
    assert "token:1" in detail


def test_a_row_deleted_in_the_middle_is_named_missing(project: Project, store_url: str) -> None:
    fill(project)
    raw(store_url, "DELETE FROM audit_log WHERE seq IN (4, 5)")
    seq, problem, detail = first_break(project)
    assert (seq, problem) == (4, "missing")
    assert "seq 4 to 5 missing" in detail


def test_the_first_row_deleted_is_named_missing(project: Project, store_url: str) -> None:
    fill(project)
    raw(store_url, "DELETE FROM audit_log WHERE seq = 1")
    assert first_break(project)[:2] == (1, "missing")


def test_two_rows_swapped_are_named_out_of_order(project: Project, store_url: str) -> None:
    fill(project)
    for sql in ("UPDATE audit_log SET seq = -3 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = 4",
                "UPDATE audit_log SET seq = 4 WHERE seq = -3"):  # fmt: skip
        raw(store_url, sql)
    seq, problem, detail = first_break(project)
    assert (seq, problem) == (3, "out-of-order")
    assert "written as seq 4" in detail


def test_a_truncated_tail_is_caught_through_an_export(
    project: Project, store_url: str, tmp_path: Path
) -> None:
    fill(project)
    export = tmp_path / "audit.jsonl"
    with export.open("w") as out:
        exported = export_audit(project, out)
    assert exported.entries == 8
    raw(store_url, "DELETE FROM audit_log WHERE seq >= 7")
    alone = verify_audit(project)
    assert alone.problems == ()  # the chain alone cannot know; the rows it recorded can:
    assert [(row.table, row.problem) for row in alone.rows] == [
        ("request_entries", "not-chained"), ("events", "not-chained")
    ]  # fmt: skip
    seq, problem, detail = first_break(project, export)
    assert (seq, problem) == (7, "truncated")
    assert f"the table ends at seq 6, but {export} holds seq 8" in detail


def test_a_chain_rewritten_whole_is_caught_through_an_export(
    project: Project, store_url: str, tmp_path: Path
) -> None:
    """Someone edits a row and recomputes every hash after it: the table is consistent again,
    but an earlier export disagrees from that row on."""
    fill(project)
    export = tmp_path / "audit.jsonl"
    with export.open("w") as out:
        export_audit(project, out)
    raw(store_url, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
    previous = project.store.audit_entries(limit=3)[-1].hash
    for entry in project.store.audit_entries(since=4):
        previous = chain.link_hash(previous, chain.entry_of(entry))
        raw(store_url, "UPDATE audit_log SET hash = ? WHERE seq = ?", (previous, entry.seq))
    assert verify_audit(project).sound
    seq, problem, _ = first_break(project, export)
    assert (seq, problem) == (4, "rewritten")


def test_an_export_since_a_seq_holds_the_rest_and_the_head(project: Project) -> None:
    fill(project)
    import io

    out = io.StringIO()
    exported = export_audit(project, out, since=6)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["seq"] for line in lines[:-1]] == [6, 7, 8]
    assert exported.head is not None
    assert lines[-1] == {"head": {"hash": exported.head.hash, "seq": 8}}
    with pytest.raises(UsageError):
        export_audit(project, out, since=0)
    with pytest.raises(UsageError, match="a seq is at most 2147483647"):  # was an OverflowError
        export_audit(project, out, since=99999999999999999999)
    beyond = io.StringIO()
    assert export_audit(project, beyond, since=LARGEST_SEQ).entries == 0


def test_a_head_file_that_is_not_one_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    with pytest.raises(UsageError, match=r"notes\.txt"):
        read_head_file(bad)
    with pytest.raises(UsageError, match=r"missing\.jsonl"):
        read_head_file(tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"head":null}\n')
    with pytest.raises(UsageError, match="no audit head"):
        read_head_file(empty)


def test_a_copied_store_carries_its_chain_and_goes_on_with_it(
    project: Project, tmp_path: Path
) -> None:
    from lastgood.operations.maintenance import copy

    fill(project)
    destination = f"sqlite:///{tmp_path / 'copy.db'}"
    copy(project, destination)
    moved = Project(project.config, destination, "ann")
    try:
        assert [e.hash for e in moved.store.audit_entries()] == [
            e.hash for e in project.store.audit_entries()
        ]
        moved.store.add_token(name="n", role="viewer", envs="", token_hash="1" * 64,
                              created_by="ann")  # fmt: skip
        report = verify_audit(moved)
        assert report.sound and report.entries == 9
    finally:
        moved.close()


# ---- heads on targets --------------------------------------------------------------------------


def test_a_target_keeps_the_newest_head_and_never_goes_back(tmp_path: Path) -> None:
    target = DirectoryTarget("staging", {"path": "live"}, tmp_path)
    target.record_audit_head(AuditHead(1, "a" * 64))
    assert target.audit_head() is None  # it holds nothing yet: its folder is left alone
    assert not (tmp_path / "live").exists()
    target.stage(Release(1, "0" * 64), {"x": b"1"})
    for seq in (2, 5, 4, 3):
        target.record_audit_head(AuditHead(seq, f"{seq:064x}"))
    kept = target.audit_head()
    assert kept is not None and kept.where == str(tmp_path / "live/meta/audit-head.json")
    assert [head.seq for head in kept.heads] == [5, 2]
    for seq in range(6, 30):
        target.record_audit_head(AuditHead(seq, f"{seq:064x}"))
    assert [head.seq for head in target.audit_head().heads] == list(range(29, 19, -1))  # type: ignore[union-attr]


def test_a_head_that_cannot_be_written_never_fails_the_write(
    workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = workspace(**FAST)
    project = ws.project()
    meta = ws.base / "live" / "meta"
    meta.mkdir(parents=True)
    (meta / "audit-head.json").mkdir()  # not a file: every write of the head fails
    project.store.add_version(Bundle({"a": b"1"}), author="a", message="m", source="cli")
    record = project.store.begin_deployment(env="staging", kind="deploy", to_version=1,
                                            actor="a", source="cli")  # fmt: skip
    assert project.store.deployment(record.id).status == "running"
    assert [entry.kind for entry in project.store.audit_entries()] == ["deployment-opened"]


# ---- concurrent writers ----------------------------------------------------------------------


@pytest.mark.postgres
def test_concurrent_appends_on_postgresql_keep_one_chain(pg_url: str) -> None:
    """Writers on separate connections, all at once: one chain, no fork, no gap."""
    setup = open_store(pg_url)
    setup.add_version(Bundle({"a": b"1"}), author="a", message="m", source="cli")
    setup.close()
    writers, rounds = 6, 8
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(number: int) -> None:
        store = open_store(pg_url)
        try:
            start.wait()
            for _ in range(rounds):
                record = store.begin_deployment(
                    env=f"env{number}",
                    kind="deploy",
                    to_version=1,
                    actor=f"w{number}",
                    source="cli",
                )
                store.update_deployment(record.id, by=f"w{number}", status="succeeded")
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    store = open_store(pg_url)
    try:
        entries = store.audit_entries()
        assert [entry.seq for entry in entries] == list(range(1, writers * rounds * 2 + 1))
        walk = ChainWalk()
        store.walk_audit(walk.feed)
        assert walk.first_break() is None and walk.count == writers * rounds * 2
    finally:
        store.close()


# ---- the real CLI ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["directory", "files"])
def test_deploy_and_rollback_through_the_cli_are_chained_and_truncation_is_caught_on_the_target(
    workspace: Callable[..., Workspace], store_url: str, target: str
) -> None:
    ws = workspace(target=target, store=store_url, **FAST)
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "one").returncode == 0
    ws.healthy("two")
    assert ws.run("deploy", "staging", "-m", "two").returncode == 0
    assert ws.run("rollback", "staging", "-m", "back").returncode == 0

    done = ws.run("audit", "verify", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["sound"] and report["first_break"] is None
    assert report["heads"][0]["seq"] == report["head"]["seq"] == report["entries"]
    state = ws.base / ("live/meta" if target == "directory" else "app/.lastgood-target/meta")
    assert report["heads"][0]["where"] == str(state / "audit-head.json")
    exported = ws.run("audit", "export")
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert lines[-1] == {"head": report["head"]}
    chained = [(line["kind"], line["subject"]) for line in lines[:-1]]
    rollback = [pair for pair in chained if pair[1] == "deployment:3"]
    assert rollback[0] == ("deployment-opened", "deployment:3")
    assert json.loads(lines[-2]["data"])["kind"] == "rollback"
    assert {line["actor"] for line in lines[:-1]} == {"tester"}

    last = report["head"]["seq"]
    raw(store_url, "DELETE FROM audit_log WHERE seq >= ?", (last - 1,))
    broken = ws.run("audit", "verify")
    assert broken.returncode == 4
    assert f"audit chain broken at seq {last - 1}: truncated" in broken.stdout
    assert str(state / "audit-head.json") in broken.stdout


def test_a_chain_cut_short_and_grown_again_is_caught_on_the_target(
    workspace: Callable[..., Workspace],
) -> None:
    ws = workspace(**FAST)
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0  # seq 1 to 3; the target keeps seq 3
    url = f"sqlite:///{ws.root / '.lastgood' / 'store.db'}"
    raw(url, "DELETE FROM audit_log WHERE seq >= 2")
    ws.healthy("two")
    assert ws.run("deploy", "staging").returncode == 0  # the chain grows past the old head
    broken = ws.run("audit", "verify", "--json")
    assert broken.returncode == 4
    first = json.loads(broken.stdout)["first_break"]
    assert (first["seq"], first["problem"]) == (3, "rewritten")


def test_verify_and_export_through_the_cli_with_an_export_as_head(
    workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = workspace(**FAST)
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    export = tmp_path / "out" / "audit.jsonl"
    export.parent.mkdir()
    done = ws.run("audit", "export", "-o", str(export))
    assert done.returncode == 0 and done.stdout == ""
    assert re.search(r"exported 3 audit entries \(head seq 3\)", done.stderr)
    assert sorted(p.name for p in export.parent.iterdir()) == ["audit.jsonl"]
    sound = ws.run("audit", "verify", "--head", str(export))
    assert sound.returncode == 0, sound.stdout + sound.stderr
    assert "audit chain is sound: 3 entries, head seq 3, agreeing with 2 head(s)" in sound.stdout
    bad = ws.run("audit", "verify", "--head", str(tmp_path / "nothing.jsonl"))
    assert bad.returncode == 2 and "nothing.jsonl" in bad.stderr
    huge = ws.run("audit", "export", "--since", "99999999999999999999")
    assert huge.returncode == 2, huge.stderr  # a range error, not an unexpected OverflowError
    assert "is not in the range 1<=x<=2147483647" in huge.stderr and huge.stdout == ""


# ---- who made each change -------------------------------------------------------------------


def exported(ws: Workspace) -> list[dict[str, Any]]:
    done = ws.run("audit", "export")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()[:-1]]


def test_an_update_is_chained_as_whoever_made_it_not_the_records_actor(
    workspace: Callable[..., Workspace],
) -> None:
    """ann's deploy was interrupted; bob's next deploy closes her record, and the chain says
    bob did; a failed deploy's automatic rollback (the record is lastgood's) is chained as
    the person whose deploy ran it."""
    ws = workspace(**FAST)
    ws.healthy("one")
    assert ws.run("snapshot", "-m", "one").returncode == 0
    ws.project().store.begin_deployment(env="staging", kind="deploy", to_version=1,
                                        actor="ann", source="cli")  # fmt: skip
    assert ws.run("deploy", "staging", env={"LASTGOOD_AUTHOR": "bob"}).returncode == 0
    ws.broken()
    assert ws.run("deploy", "staging", env={"LASTGOOD_AUTHOR": "cat"}).returncode == 3
    links = exported(ws)
    by_record: dict[str, list[tuple[str, str]]] = {}
    for link in links:
        by_record.setdefault(link["subject"], []).append((link["kind"], link["actor"]))
    assert by_record["deployment:1"] == [("deployment-opened", "ann"),
                                         ("deployment-updated", "bob")]  # fmt: skip
    assert json.loads(links[1]["data"])["status"] == "interrupted"
    assert {actor for _, actor in by_record["deployment:2"]} == {"bob"}
    automatic = by_record["deployment:4"]
    assert automatic[0] == ("deployment-opened", "lastgood")
    assert {actor for kind, actor in automatic[1:]} == {"cat"}
    assert verify_audit(ws.project()).sound


def test_a_request_changed_without_a_timeline_entry_is_chained_as_whoever_changed_it(
    workspace: Callable[..., Workspace],
) -> None:
    """A request's fields changed with no line on its timeline (a claim, a repair) are chained
    as the one who changed them: the link used to take its actor from the missing entry, and
    named nobody."""
    ws = workspace(**FAST)
    ws.healthy("one")
    assert ws.run("snapshot", "-m", "one").returncode == 0
    store = ws.project().store
    content = store.version(1).content_hash
    entry = {"actor": "ann", "action": "opened", "content_hash": content, "base_hash": ""}
    request = store.open_request(entry, env="staging", version=1, content_hash=content,
                                 base_version=None, base_hash="", requester="ann", reason="why",
                                 status="open", risk="low", routing="{}")  # fmt: skip

    with pytest.raises(TypeError, match="'by'"):  # no caller can leave it out
        store.update_request(request.number, None, status="applying")
    store.update_request(request.number, None, by="kim", status="applying")

    links = [link for link in exported(ws) if link["subject"] == f"request:{request.number}"]
    assert [(link["kind"], link["actor"]) for link in links] == [
        ("request-opened", "ann"), ("request-entry", "ann"), ("request-updated", "kim")
    ]  # fmt: skip
    assert json.loads(links[-1]["data"])["status"] == "applying"
    assert verify_audit(ws.project()).sound


def test_a_token_revoked_through_the_server_is_chained_as_the_calling_token(
    workspace: Callable[..., Workspace], serve: Callable[..., Any]
) -> None:
    ws = workspace(**FAST)
    server = serve(ws)  # its own actor is "tester"
    admin = server.token("admin", name="root")
    server.token("viewer", name="ci")
    listed = json.loads(ws.run("token", "list", "--json").stdout)
    ci = next(token["id"] for token in listed if token["name"] == "ci")
    with server.client(admin) as http:
        answer = http.delete(f"/api/v1/tokens/{ci}")
        assert answer.status_code == 200, answer.text
    revoked = [link for link in exported(ws) if link["kind"] == "token-revoked"]
    assert [(link["subject"], link["actor"]) for link in revoked] == [(f"token:{ci}", "root")]


# ---- the insert-only PostgreSQL role of docs/audit.md ------------------------------------------


@pytest.mark.postgres
def test_the_documented_insert_only_role_appends_but_cannot_change_the_chain() -> None:
    """Run the SQL of docs/audit.md as written (with fresh names): the app role works as
    before, and cannot UPDATE, DELETE or TRUNCATE audit_log."""
    import secrets

    import psycopg

    from tests.conftest import PG_ADMIN, pg_available

    if pg_available():
        pytest.skip(str(pg_available()))
    name = f"lg_{secrets.token_hex(4)}"
    blocks = re.findall(r"^```sql\n(.*?)^```", DOCS.read_text(encoding="utf-8"), re.M | re.S)
    as_superuser, as_owner = (
        block.replace("lastgood_owner", f"{name}_owner")
        .replace("lastgood_app", f"{name}_app")
        .replace("DATABASE lastgood ", f"DATABASE {name} ")
        for block in blocks
    )
    server = PG_ADMIN.rsplit("/", 1)[0].replace("postgres@", "{user}@") + f"/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        for statement in filter(str.strip, as_superuser.split(";")):
            admin.execute(statement)
    try:
        open_store(server.format(user=f"{name}_owner")).close()  # the owner migrates
        with psycopg.connect(server.format(user=f"{name}_owner"), autocommit=True) as owner:
            owner.execute(as_owner)
        store = open_store(server.format(user=f"{name}_app"))
        try:
            store.add_version(Bundle({"a": b"1"}), author="a", message="m", source="cli")
            record = store.begin_deployment(env="staging", kind="deploy", to_version=1,
                                            actor="a", source="cli")  # fmt: skip
            store.update_deployment(record.id, by="a", status="succeeded")
            store.revoke_token(store.add_token(name="t", role="viewer", envs="",
                                               token_hash="0" * 64, created_by="a").id,
                               actor="a")  # fmt: skip
            walk, rows = ChainWalk(), RowCheck()
            store.walk_audit(walk.feed, rows=rows)  # holding the tables needs only SELECT
            assert walk.count == 4 and walk.first_break() is None
            assert rows.sound and sum(rows.checked.values()) == 2
        finally:
            store.close()
        with psycopg.connect(server.format(user=f"{name}_app"), autocommit=True) as app:
            forbidden = (
                "UPDATE audit_log SET actor = 'm'",
                "DELETE FROM audit_log",
                "TRUNCATE audit_log",
            )
            for statement in forbidden:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    app.execute(statement)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {name}_app")
            admin.execute(f"DROP ROLE IF EXISTS {name}_owner")
