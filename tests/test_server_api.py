"""The server's API against a real ``lastgood serve``: status, deploy, rollback, live config."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Workspace
from tests.serving import Server


def served(workspace: Callable[..., Workspace], **policy: str) -> Workspace:
    ws = workspace(target="served", **policy)
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "first").returncode == 0
    return ws


def test_live_config_has_etag_and_answers_304(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = served(workspace)
    server = serve(ws)
    with server.client(server.token("viewer")) as http:
        first = http.get("/api/v1/envs/staging/config")
        assert first.status_code == 200
        body = first.json()
        assert body["version"] == 1
        assert body["files"]["scoring/thresholds.yaml"]["content"].endswith("marker: one\n")
        assert first.headers["etag"] == f'"{body["content_hash"]}"'
        again = http.get("/api/v1/envs/staging/config",
                         headers={"If-None-Match": first.headers["etag"]})  # fmt: skip
        assert again.status_code == 304 and again.content == b""
        one = http.get("/api/v1/envs/staging/config/files/health.txt")
        assert one.content == b"ok\n" and one.headers["x-lastgood-version"] == "1"


def test_rollback_through_the_api_is_recorded_with_the_token_name(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = served(workspace)
    ws.healthy("two")
    assert ws.run("deploy", "staging", "-m", "second").returncode == 0
    server = serve(ws)
    with server.client(server.token("deployer", "staging", name="pager")) as http:
        done = http.post("/api/v1/envs/staging/rollback", json={"message": "scores at zero"})
        assert done.status_code == 200, done.text
        assert done.json()["exit_code"] == 0 and done.json()["version"] == 1
        assert done.json()["deployment"]["actor"] == "pager"
        config = http.get("/api/v1/envs/staging/config").json()
        assert config["version"] == 1


def test_no_token_no_change(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = served(workspace)
    server = serve(ws)
    with server.client() as http:
        refused = http.post("/api/v1/envs/staging/rollback", json={})
        assert refused.status_code == 401
        assert refused.json()["error"] == "this needs an API token"
    with server.client(server.token("viewer")) as http:
        refused = http.post("/api/v1/envs/staging/rollback", json={})
        assert refused.status_code == 403
        assert "needs deployer on 'staging'" in refused.json()["error"]
    assert "rollback" not in ws.run("history", "staging").stdout
