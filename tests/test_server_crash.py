"""A server killed in the middle of a rollback it was asked for: every consumer still gets one
complete version, and the ledger is set right by the next command, exactly as with the CLI."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Workspace
from tests.serving import Server

POINTS = ["rollback.after-lease", "target.mid-switch", "rollback.after-activate",
          "rollback.after-verify"]  # fmt: skip


@pytest.mark.parametrize("point", POINTS)
def test_server_killed_mid_rollback_leaves_one_complete_version(
    workspace: Callable[..., Workspace],
    serve: Callable[..., Server],
    monkeypatch: pytest.MonkeyPatch,
    point: str,
) -> None:
    ws = workspace(target="served")
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    ws.healthy("two")
    assert ws.run("deploy", "staging").returncode == 0
    monkeypatch.setenv("LASTGOOD_FAILPOINT", point)
    doomed = serve(ws)
    secret = doomed.token("deployer")
    with doomed.client(secret) as http, pytest.raises(httpx.TransportError):
        http.post("/api/v1/envs/staging/rollback", json={"message": "crash"})
    assert doomed.process is not None and doomed.process.wait(10) != 0
    monkeypatch.delenv("LASTGOOD_FAILPOINT")

    status = ws.run("status", "staging", "--json")  # the next command reconciles
    assert status.returncode == 0, status.stderr
    server = serve(ws)
    with server.client(secret) as http:
        config = http.get("/api/v1/envs/staging/config").json()
        env = http.get("/api/v1/envs/staging").json()
    marker = config["files"]["scoring/thresholds.yaml"]["content"].splitlines()[-1]
    assert (config["version"], marker) in ((1, "marker: one"), (2, "marker: two")), point
    assert env["live_version"] == env["ledger_version"] == config["version"], env
    assert not config["drifted"] and env["actual_hash"] == env["live_hash"], env
    back = ws.run("rollback", "staging", "--to", "v1", "-m", "finish the job")
    assert back.returncode == 0, back.stderr
