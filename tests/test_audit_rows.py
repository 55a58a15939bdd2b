"""``audit verify`` holds the chained tables against the chain (:mod:`lastgood.store.chain_rows`):
a row written, edited or deleted behind the store's back is named with its table and key, on
SQLite and PostgreSQL; rows from before the chain (a store upgraded to 0007) are left alone,
and only they.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lastgood.operations.audit import verify_audit
from lastgood.project import Project
from lastgood.store import chain
from lastgood.store.chain_rows import SHOWN
from tests.conftest import FAST, LASTGOOD, Workspace
from tests.test_audit import DOCS, fill, raw
from tests.test_store_migration import old_store  # noqa: F401  (a fixture: the 0004 store)

FORGED_APPROVAL = (
    "INSERT INTO request_entries (request, at, actor, action, content_hash, base_hash, comment, "
    "via) SELECT request, at + 1, 'mallory', 'approved', content_hash, base_hash, '', 'server' "
    "FROM request_entries WHERE id = 2"
)
BACKDOOR_TOKEN = (
    "INSERT INTO api_tokens (name, role, envs, token_hash, created_at, created_by, revoked_at) "
    f"VALUES ('backdoor', 'admin', '', '{'e' * 64}', 1.0, 'ann', NULL)"
)


@pytest.fixture
def project(workspace: Callable[..., Workspace], store_url: str) -> Project:
    """A workspace on the store under test (SQLite, then PostgreSQL)."""
    opened: Project = workspace(store=store_url, **FAST).project()
    return opened


def disagreeing(project: Project) -> list[tuple[str, int | None, str]]:
    """(table, key, problem) of every row ``audit verify`` names; the chain itself is sound."""
    report = verify_audit(project)
    assert report.problems == (), "the chain itself was not touched"
    rows = [(row.table, row.key, row.problem) for row in report.rows]
    assert report.sound == (not rows)
    return rows


# ---- rows held against the chain --------------------------------------------------------------


def test_every_chained_row_agrees_with_the_chain(project: Project) -> None:
    """One of each chained row, and a request whose updated_at moved with a timeline entry
    (that column is left out: the entry is chained on its own)."""
    fill(project)
    report = verify_audit(project)
    assert report.sound and report.rows == ()
    assert report.rows_checked == 6  # a ledger record, a request, 2 entries, a token, an event
    assert report.to_json()["rows"] == [] and report.to_json()["rows_checked"] == 6


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (FORGED_APPROVAL, [("request_entries", 3, "not-chained")]),
        ("UPDATE request_entries SET actor = 'mallory' WHERE id = 2",
         [("request_entries", 2, "changed")]),
        ("UPDATE deployments SET status = 'failed' WHERE id = 1", [("deployments", 1, "changed")]),
        ("DELETE FROM deployments WHERE id = 1", [("deployments", 1, "deleted")]),
        ("UPDATE change_requests SET status = 'approved' WHERE number = 1",
         [("change_requests", 1, "changed")]),
        ("UPDATE api_tokens SET role = 'admin', revoked_at = NULL WHERE id = 1",
         [("api_tokens", 1, "changed")]),
        (f"UPDATE api_tokens SET token_hash = '{'d' * 64}' WHERE id = 1",
         [("api_tokens", 1, "changed")]),
        (BACKDOOR_TOKEN, [("api_tokens", 2, "not-chained")]),
        ("INSERT INTO events (at, kind, env, message, data) "
         "VALUES (1.0, 'lease-broken', 'staging', 'forged', '{}')",
         [("events", 3, "not-chained")]),
        ("UPDATE events SET message = 'edited' WHERE kind = 'lease-broken'",
         [("events", 1, "not-chained"), ("events", None, "deleted")]),
    ],
)  # fmt: skip
def test_a_row_written_behind_the_stores_back_is_named(
    project: Project, store_url: str, sql: str, expected: list[tuple[str, int | None, str]]
) -> None:
    fill(project)
    raw(store_url, sql)
    assert disagreeing(project) == expected


def test_what_changed_is_said_column_by_column(project: Project, store_url: str) -> None:
    fill(project)
    raw(store_url, "UPDATE deployments SET status = 'failed', detail = 'x' WHERE id = 1")
    (row,) = verify_audit(project).rows
    assert row.seq == 2 and row.column == "id"
    assert row.describe() == (
        'deployments id 1: changed after it was chained: detail is "x" here but "" in link '
        'seq 2; status is "failed" here but "succeeded" in link seq 2'
    )


def test_a_request_timestamp_moved_alone_is_not_a_change(project: Project, store_url: str) -> None:
    """updated_at moves with every timeline entry without a request link, so it is not held
    against the chain (docs/audit.md says so); any other column is."""
    fill(project)
    raw(store_url, "UPDATE change_requests SET updated_at = 5.0")
    assert disagreeing(project) == []


def test_many_forged_rows_are_counted_past_those_named(project: Project, store_url: str) -> None:
    fill(project)
    for _ in range(SHOWN + 5):
        raw(store_url, FORGED_APPROVAL)
    report = verify_audit(project)
    assert len(report.rows) == SHOWN and report.rows_unshown == 5 and not report.sound


def test_verify_through_the_cli_names_each_row_and_exits_4(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    ws = workspace(store=store_url, **FAST)
    fill(ws.project())
    sound = ws.run("audit", "verify")
    assert sound.returncode == 0, sound.stdout + sound.stderr
    assert "6 rows of the chained tables agree with the audit chain" in sound.stdout
    raw(store_url, FORGED_APPROVAL)
    raw(store_url, "UPDATE deployments SET status = 'failed' WHERE id = 1")
    broken = ws.run("audit", "verify")
    assert broken.returncode == 4, broken.stdout + broken.stderr
    assert broken.stdout.splitlines()[1:] == [
        "2 of 7 rows of the chained tables disagree with the audit chain:",
        '  deployments id 1: changed after it was chained: status is "failed" here but '
        '"succeeded" in link seq 2',
        "  request_entries id 3: not in the audit chain: no link records it (written behind "
        "the store's back)",
    ]
    assert "hint: restore the store from a backup" in broken.stderr
    report = json.loads(ws.run("audit", "verify", "--json").stdout)
    assert not report["sound"] and report["first_break"] is None
    assert [(r["table"], r["key"], r["problem"], r["seq"]) for r in report["rows"]] == [
        ("deployments", 1, "changed", 2), ("request_entries", 3, "not-chained", None)
    ]  # fmt: skip


# ---- rows from before the chain -------------------------------------------------------------


def upgraded(workspace: Callable[..., Workspace], url: str) -> Project:
    """A workspace on the old (0004) store, which opening upgrades, chain and all."""
    opened: Project = workspace(store=url, **FAST).project()
    opened.store  # noqa: B018  (opening migrates)
    return opened


def test_rows_from_before_the_chain_are_left_alone_and_only_they(
    workspace: Callable[..., Workspace],
    old_store: str,  # noqa: F811
) -> None:
    project = upgraded(workspace, old_store)
    first = project.store.audit_entries()[0]
    assert first.kind == "chain-started"
    assert json.loads(first.data)["last_before"] == {"api_tokens": 1, "deployments": 1,
                                                     "events": 1}  # fmt: skip
    report = verify_audit(project)
    assert report.sound and report.rows_checked == 2  # the old ledger record and token
    raw(old_store, "INSERT INTO deployments (env, kind, status, actor, reason, source, "
        "requested_at, detail) VALUES ('production', 'deploy', 'verified', 'm', '', 'cli', 1.0, "
        "'')")  # fmt: skip
    raw(old_store, BACKDOOR_TOKEN)
    assert disagreeing(project) == [("deployments", 2, "not-chained"),
                                    ("api_tokens", 2, "not-chained")]  # fmt: skip


def test_an_old_row_changed_through_lastgood_is_chained_and_checked(
    workspace: Callable[..., Workspace],
    old_store: str,  # noqa: F811
) -> None:
    project = upgraded(workspace, old_store)
    project.store.update_deployment(1, by="ops", detail="looked at")
    assert disagreeing(project) == []
    raw(old_store, "UPDATE deployments SET status = 'failed' WHERE id = 1")
    assert disagreeing(project) == [("deployments", 1, "changed")]


def test_a_row_slipped_in_among_the_old_ones_is_caught_by_their_count(
    workspace: Callable[..., Workspace],
    old_store: str,  # noqa: F811
) -> None:
    project = upgraded(workspace, old_store)
    raw(
        old_store,
        "INSERT INTO api_tokens (id, name, role, envs, token_hash, created_at, "
        f"created_by, revoked_at) VALUES (0, 'old', 'admin', '', '{'e' * 64}', 1.0, 'a', NULL)",
    )
    assert disagreeing(project) == [("api_tokens", None, "not-chained")]
    (row,) = verify_audit(project).rows
    assert "the chain started with 1 rows up to id 1, but the table holds 2 there" in row.detail


def test_a_chain_started_with_counts_only_takes_the_oldest_rows_as_the_old_ones(
    workspace: Callable[..., Workspace],
    old_store: str,  # noqa: F811
) -> None:
    """An earlier build of 0007 recorded rows_before only: the lowest keys are the old rows."""
    project = upgraded(workspace, old_store)
    data = json.loads(project.store.audit_entries()[0].data)
    del data["last_before"]
    rewrite_first_link(old_store, project, chain.canonical_json(data))
    assert verify_audit(project).sound
    raw(old_store, BACKDOOR_TOKEN)
    assert disagreeing(project) == [("api_tokens", 2, "not-chained")]


def rewrite_first_link(url: str, project: Project, data: str) -> None:
    """Replace link 1's data and rehash the whole chain, as an earlier build would have
    written it."""
    previous = None
    for entry in project.store.audit_entries():
        text = data if entry.seq == 1 else entry.data
        link = chain.new_link(previous, entry.seq, entry.at, entry.kind, entry.subject,
                              entry.actor, text)  # fmt: skip
        raw(url, "UPDATE audit_log SET data = ?, hash = ? WHERE seq = ?",
            (text, link.hash, entry.seq))  # fmt: skip
        previous = link.hash


def test_the_example_in_the_docs_is_what_verify_prints(tmp_path: Path) -> None:
    """docs/audit.md shows verify on a fresh workspace (lastgood init, staging deployed, one
    token) after a ledger record was edited and a token slipped in with sqlite3."""
    block = re.search(r"```\n(\$ lastgood audit verify\n.*?)```", DOCS.read_text(), re.S)
    assert block is not None
    shown = [line for line in block.group(1).splitlines() if not line.startswith("$")][:-1]
    env = {**os.environ, "LASTGOOD_AUTHOR": "ana", "NO_COLOR": "1"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([LASTGOOD, "-C", str(tmp_path), *args], capture_output=True,
                              text=True, env=env, timeout=60)  # fmt: skip

    assert run("init").returncode == 0
    config = tmp_path / "lastgood.toml"
    config.write_text(config.read_text().replace('bake = "30s"', 'bake = "0s"', 1))
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "score.txt").write_text("Score each lead.\n")
    assert run("deploy", "staging", "-m", "first prompt").returncode == 0
    assert run("token", "create", "--name", "ci", "--role", "deployer").returncode == 0
    url = f"sqlite:///{tmp_path / '.lastgood' / 'store.db'}"
    raw(url, "UPDATE deployments SET status = 'failed' WHERE id = 1")
    raw(url, BACKDOOR_TOKEN.replace("'ann'", "'ana'"))
    done = run("audit", "verify")
    assert done.returncode == int(block.group(1).splitlines()[-1])
    assert done.stdout.splitlines() + done.stderr.splitlines() == shown
