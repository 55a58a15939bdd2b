"""The heads kept outside the audit table for links that belong to no environment: a token
made or revoked, versions pruned, an event of an environment the configuration no longer has.
Every environment's target keeps their head, so a tail of those links cut off (and the rows
they recorded put back as they were) is caught as ``truncated``, as a deploy's is. Before,
only a link of an environment refreshed its target's head, and such a tail went unnoticed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from lastgood.operations.audit import verify_audit
from tests.conftest import FAST, Workspace, config_text
from tests.test_audit import raw


def two_environments(workspace: Callable[..., Workspace], store_url: str) -> Workspace:
    """staging (../live) and production (../prod), both deployed once, so both targets keep
    a head."""
    ws = workspace(store=store_url, **FAST)
    production = config_text("production", **FAST).replace("../live", "../prod")
    (ws.root / "lastgood.toml").write_text(config_text(**FAST) + production)
    ws.healthy("one")
    for env in ("staging", "production"):
        done = ws.run("deploy", env, "-m", "one")
        assert done.returncode == 0, done.stderr
    return ws


def head_files(ws: Workspace) -> list[Path]:
    return [ws.base / "live/meta/audit-head.json", ws.base / "prod/meta/audit-head.json"]


def newest_kept(path: Path) -> int:
    return int(json.loads(path.read_text())["heads"][0]["seq"])


def tail(store_url: str) -> tuple[int, str]:
    seq, kind = raw(store_url, "SELECT seq, kind FROM audit_log ORDER BY seq DESC LIMIT 1")[0]
    return int(seq), str(kind)


@pytest.mark.parametrize("step", ["created", "revoked"])
def test_a_tail_of_token_links_cut_off_is_caught_on_every_target(
    workspace: Callable[..., Workspace], store_url: str, step: str
) -> None:
    """mallory's admin token is made (and revoked); then its link is cut off the tail and its
    row put back as it was before, so the tables agree with what is left of the chain: only
    the heads on the targets can tell, and both do."""
    ws = two_environments(workspace, store_url)
    url = store_url
    made = ws.run("token", "create", "--name", "mallory", "--role", "admin")
    assert made.returncode == 0, made.stderr
    (token_id,) = raw(url, "SELECT id FROM api_tokens WHERE name = 'mallory'")[0]
    if step == "revoked":
        assert ws.run("token", "revoke", str(token_id)).returncode == 0
    last, kind = tail(url)
    assert kind == f"token-{step}"
    assert [newest_kept(path) for path in head_files(ws)] == [last, last]

    raw(url, "DELETE FROM audit_log WHERE seq = ?", (last,))
    if step == "created":
        raw(url, "DELETE FROM api_tokens WHERE id = ?", (token_id,))
    else:
        raw(url, "UPDATE api_tokens SET revoked_at = NULL WHERE id = ?", (token_id,))
    broken = ws.run("audit", "verify", "--json")
    assert broken.returncode == 4, broken.stdout + broken.stderr
    report = json.loads(broken.stdout)
    assert report["rows"] == []  # the tables agree with the chain that is left
    assert (report["first_break"]["seq"], report["first_break"]["problem"]) == (last, "truncated")
    details = [problem["detail"] for problem in report["problems"]]
    assert [problem["problem"] for problem in report["problems"]] == ["truncated", "truncated"]
    for path in head_files(ws):
        assert any(str(path) in detail for detail in details), details
    assert f"seq {last} was cut off" in details[0]
    text = ws.run("audit", "verify")
    assert text.returncode == 4
    assert f"audit chain broken at seq {last}: truncated" in text.stdout


def test_links_of_no_environment_or_an_unknown_one_refresh_every_target(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    """Versions pruned (the store's, no environment) and a lease broken on an environment
    the configuration no longer has each leave their head on every target; a link of one
    environment still refreshes only that environment's target."""
    ws = two_environments(workspace, store_url)
    project = ws.project()
    store = project.store
    store.record_event("pruned", "pruned 0 versions", actor="ann")
    pruned = store.audit_head()
    assert pruned is not None
    assert [newest_kept(path) for path in head_files(ws)] == [pruned.seq, pruned.seq]
    store.record_event("lease-broken", "broke it", env="gone", actor="ann")
    gone = store.audit_head()
    assert gone is not None and gone.seq == pruned.seq + 1
    assert [newest_kept(path) for path in head_files(ws)] == [gone.seq, gone.seq]
    store.record_event("lease-broken", "broke it", env="staging", actor="ann")
    staging = store.audit_head()
    assert staging is not None
    assert [newest_kept(path) for path in head_files(ws)] == [staging.seq, gone.seq]
    assert verify_audit(project).sound
