"""The CLI through a server (``--server URL --token T``): the same output and exit codes as on
the store, from a folder with no store at all, against a real ``lastgood serve``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lastgood.cli.fast import parse
from tests.conftest import FAST, LASTGOOD, Workspace, config_text
from tests.http_fakes import POLL
from tests.serving import Server, free_port

Factory = Callable[..., Workspace]
Serve = Callable[..., Server]


def remote(
    server: Server | str,
    token: str | None,
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The real console script, with --server (and --token), run in ``cwd``."""
    url = server if isinstance(server, str) else server.url
    command = [LASTGOOD, "--server", url, *(["--token", token] if token else []), *args]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LASTGOOD_")}
    full_env = {**clean, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=full_env, cwd=cwd
    )


def elsewhere(ws: Workspace) -> Path:
    """An empty folder, far from any lastgood.toml and store."""
    folder = ws.base / "elsewhere"
    folder.mkdir(exist_ok=True)
    return folder


def no_secret(done: subprocess.CompletedProcess[str], token: str) -> None:
    assert token not in done.stdout and token not in done.stderr


def served(ws: Workspace) -> Workspace:
    """``ws`` with v1 then v2 deployed on the store (the tests' workspaces judge a version in
    one round, FAST: what goes through the server does not depend on the bake)."""
    for marker in ("one", "two"):
        ws.healthy(marker)
        assert ws.run("deploy", "staging", "-m", marker).returncode == 0
    return ws


class Shared:
    """One served workspace and its server for the tests that change nothing live."""

    def __init__(self, ws: Workspace, server: Server) -> None:
        self.ws = ws
        self.server = server
        self.viewer = server.token("viewer", name="page")
        self.deployer = server.token("deployer", "staging", name="ci")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    base = tmp_path_factory.mktemp("shared")
    ws = served(Workspace(base, config_text(target="served", **FAST)))
    server = Server(ws).start()
    try:
        yield Shared(ws, server)
    finally:
        server.close()
        ws.close()


def test_reads_through_the_server_print_what_the_store_prints(shared: Shared) -> None:
    ws, server, viewer = shared.ws, shared.server, shared.viewer
    here = elsewhere(ws)
    same = [["status"], ["history", "staging"], ["log"], ["show", "v1"],
            ["show", "v2", "scoring/thresholds.yaml"], ["diff", "v1", "v2"]]  # fmt: skip
    for args in same:
        local, through = ws.run(*args), remote(server, viewer, *args, cwd=here)
        assert through.returncode == local.returncode == 0, through.stderr
        assert through.stdout == local.stdout, args
        no_secret(through, viewer)
    with server.client(viewer) as http:
        expected = {
            ("status",): http.get("/api/v1/envs").json(),
            ("status", "staging"): [http.get("/api/v1/envs/staging").json()],
            ("history", "staging"): http.get("/api/v1/envs/staging/history").json(),
            ("log",): http.get("/api/v1/versions").json(),
            ("diff", "v1", "v2"): http.get("/api/v1/diff?old=v1&new=v2").json(),
        }
    for args, answer in expected.items():
        through = remote(server, None, *args, "--json", cwd=here, env={"LASTGOOD_TOKEN": viewer})
        assert json.loads(through.stdout) == answer, args
    shown = remote(server, viewer, "show", "v2", "--json", cwd=here)
    assert json.loads(shown.stdout) == json.loads(ws.run("show", "v2", "--json").stdout)


def test_report_and_check_through_the_server(shared: Shared) -> None:
    ws, server, deployer = shared.ws, shared.server, shared.deployer
    here = elsewhere(ws)
    digest = remote(server, deployer, "report", "--json", cwd=here)
    assert digest.returncode == 0, digest.stderr
    local = json.loads(ws.run("report", "--json").stdout)
    assert json.loads(digest.stdout).keys() == local.keys()
    markdown = remote(server, deployer, "report", "staging", "--format", "markdown", cwd=here)
    assert markdown.returncode == 0 and "staging" in markdown.stdout
    checked = remote(server, deployer, "check", "staging", cwd=here)
    assert checked.returncode == 0 and checked.stdout.startswith("ok   health-file-ok")
    sent = remote(server, deployer, "report", "--send", cwd=here)
    assert sent.returncode == 2 and "--send works on a store only" in sent.stderr
    for done in (digest, markdown, checked, sent):
        no_secret(done, deployer)


def consumer_serves(server: Server, token: str, number: int) -> None:
    """Consumer app-1 reports that it serves version ``number``."""
    with server.client(token) as http:
        version = http.get(f"/api/v1/versions/v{number}").json()["version"]
        body = {"consumer": "app-1", "version": number, "content_hash": version["content_hash"]}
        answer = http.post("/api/v1/envs/staging/consumers", json=body)
        assert answer.status_code == 204, answer.text


def test_rollback_through_the_server_is_the_same_rollback(workspace: Factory, serve: Serve) -> None:
    ws = served(workspace(target="served", **FAST))
    server = serve(ws)
    pager = server.token("deployer", "staging", name="pager")
    consumer_serves(server, pager, 1)  # already on v1: the fleet follows the rollback at once
    done = remote(server, pager, "rollback", "staging", "-m", "scores at zero", cwd=elsewhere(ws))
    assert done.returncode == 0, done.stderr
    summary, fleet = done.stdout.splitlines()
    assert re.fullmatch(r"restored v1 on staging in \S+ \S+ \(verified in .+\); v2 is withdrawn",
                        summary), summary  # fmt: skip
    # it was on v1 before the rollback: no time to give (it used to read "in 0 ms")
    assert fleet == "v1 restored on 1/1 consumers", fleet
    no_secret(done, pager)
    latest = json.loads(ws.run("history", "staging", "--json").stdout)["deployments"][0]
    assert (latest["kind"], latest["actor"], latest["reason"]) == (
        "rollback", "pager", "scores at zero")  # fmt: skip
    consumer_serves(server, pager, 2)
    again = remote(server, pager, "rollback", "staging", "--to", "v2", "--force", "--json",
                   cwd=elsewhere(ws))  # fmt: skip
    data = json.loads(again.stdout)
    assert again.returncode == data["exit_code"] == 0 and data["version"] == 2
    assert data["deployment"]["actor"] == "pager" and data["fleet"]["complete"]


def test_deploy_uploads_the_folder_and_a_failing_one_exits_3(
    workspace: Factory, serve: Serve
) -> None:
    ws = workspace(**FAST)  # a directory target
    server = serve(ws)
    ci = server.token("deployer", name="ci")
    ws.healthy("one")
    first = remote(server, ci, "deploy", "staging", "-m", "first", cwd=ws.root)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "v1 is live on staging and passed its bake\n"
    assert "uploaded the folder as v1" in first.stderr
    live = ws.base / "live" / "current" / "scoring" / "thresholds.yaml"
    assert live.read_text().endswith("marker: one\n")
    ws.broken()
    failed = remote(server, ci, "deploy", "staging", "-m", "bad", cwd=ws.root)
    assert failed.returncode == 3, failed.stderr
    assert failed.stdout.startswith("v2 failed ") and "restored v1 in " in failed.stdout
    local = ws.run("deploy", "staging", "--version", "v2", "--force")  # the same deploy, here
    assert local.returncode == 3
    masked = re.compile(r"\d+(\.\d+)? (ms|s)")
    assert masked.sub("T", failed.stdout) == masked.sub("T", local.stdout)
    log = json.loads(ws.run("log", "--json").stdout)
    assert [(v["number"], v["message"], v["author"]) for v in log] == [
        (2, "bad", "ci"), (1, "first", "ci")]  # fmt: skip
    plan = remote(server, ci, "deploy", "staging", "--version", "v1", "--dry-run", cwd=ws.root)
    assert plan.returncode == 0 and plan.stdout.endswith("dry run: nothing was changed\n")
    for done in (first, failed, plan):
        no_secret(done, ci)


def test_refusals_and_errors_exit_as_they_would_here(shared: Shared) -> None:
    ws, server, viewer = shared.ws, shared.server, shared.viewer
    here = elsewhere(ws)
    refused = remote(server, viewer, "rollback", "staging", cwd=here)
    assert refused.returncode == 5 and refused.stdout == ""
    assert refused.stderr == (
        "error: token 'page' (viewer on all environments) may not do this: it needs deployer "
        "on 'staging'\n  hint: ask an admin for a token with that role ('lastgood token create "
        "--role …')\n"
    )
    unknown = remote(server, "not-a-token", "status", cwd=here)
    assert unknown.returncode == 5 and "the API token is unknown or revoked" in unknown.stderr
    missing = remote(server, viewer, "status", "nowhere", cwd=here)
    assert missing.returncode == 2 and "no environment named 'nowhere'" in missing.stderr
    cases = {
        ("diff", "v1"): "diff through a server needs OLD and NEW",
        ("rollback", "staging", "--offline"): "--offline works on the target directly",
        ("watch", "--once"): "'lastgood watch' works on a store only",
        ("init",): "'lastgood init' works on a store only",
    }
    for args, message in cases.items():
        done = remote(server, viewer, *args, cwd=here)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        no_secret(done, viewer)
    assert not (here / "lastgood.toml").exists()
    assert "rollback" not in ws.run("history", "staging").stdout


def test_a_server_that_is_not_there_exits_1_naming_it(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = remote(url, "s3cret-token", "rollback", "production", cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"error: cannot reach the lastgood server at {url}: ")
    assert "hint: check that 'lastgood serve' runs there" in done.stderr
    no_secret(done, "s3cret-token")
    with_password = remote(f"http://ops:pa55word@127.0.0.1:{free_port()}", "t", "log", cwd=tmp_path)
    assert with_password.returncode == 1 and "pa55word" not in with_password.stderr
    not_a_url = remote("localhost:8470", "t", "status", cwd=tmp_path)
    assert not_a_url.returncode == 2 and "is not an http:// or https:// URL" in not_a_url.stderr
    after_host = "'@' after its host part"
    for unusable, why in [("http://lastgood..internal:8470", "host name part is empty"),
                          ("http://127.0.0.1:99999", "not a number from 1 to 65535"),
                          ("http://127.0.0.1:0", "port 0"),
                          ("http://[zz::1]:8470", "is not a URL"),
                          ("http://ops:pa#55word@127.0.0.1:8470", after_host),
                          ("http://ops:pa/55word@127.0.0.1:8470", after_host)]:  # fmt: skip
        refused = remote(unusable, "t", "status", cwd=tmp_path)
        assert refused.returncode == 2 and why in refused.stderr, refused.stderr
        assert "55word" not in refused.stderr
        assert "unexpected error" not in refused.stderr


def test_something_else_at_the_url_is_not_taken_for_lastgood(tmp_path: Path) -> None:
    import http.server
    import threading

    class NotLastgood(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), NotLastgood)
    threading.Thread(target=httpd.serve_forever, args=(POLL,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}"
        done = remote(url, "t", "log", cwd=tmp_path)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert done.returncode == 1
    assert f"error: {url} answered HTTP 200 (text/html), not lastgood's JSON" in done.stderr


def test_a_server_that_dies_under_a_change_says_its_outcome_is_unknown(tmp_path: Path) -> None:
    """A server that takes the request and drops the connection (it crashed while it worked)
    used to surface as httpx's own 'Server disconnected without sending a response.'"""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"

    def take_and_drop() -> None:
        with contextlib.suppress(OSError):
            while True:
                peer, _ = listener.accept()
                with peer:
                    peer.recv(65536)  # the request arrived; no answer ever comes

    threading.Thread(target=take_and_drop, daemon=True).start()
    try:
        done = remote(url, "s3cret-token", "rollback", "production", cwd=tmp_path)
        read = remote(url, "s3cret-token", "status", "production", cwd=tmp_path)
    finally:
        listener.close()
    assert done.returncode == 1 and done.stdout == "", done.stderr
    assert done.stderr.startswith(
        f"error: the lastgood server at {url} closed the connection before it answered the "
        "rollback of production (it stopped or crashed while it worked): whether it happened "
        "is unknown from here"
    ), done.stderr
    assert "'lastgood status production' shows what is live on production" in done.stderr
    assert "Server disconnected" not in done.stderr
    no_secret(done, "s3cret-token")
    assert read.returncode == 1 and "closed the connection before it answered" in read.stderr
    assert "unknown from here" not in read.stderr  # a read is only tried again


def test_server_lines_never_take_the_fast_lane_or_the_local_store(workspace: Factory) -> None:
    assert parse(["--server", "http://x", "--token", "t", "rollback", "prod"]) is None
    assert parse(["-C", "ws", "--server", "http://x", "rollback", "prod"]) is None
    ws = workspace()
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    ws.healthy("two")
    assert ws.run("deploy", "staging").returncode == 0
    dead = f"http://127.0.0.1:{free_port()}"
    done = ws.run("rollback", "staging", env={"LASTGOOD_SERVER": dead, "LASTGOOD_TOKEN": "t"})
    assert done.returncode != 0, done.stdout
    assert "rollback" not in ws.run("history", "staging").stdout


def test_tokens_are_managed_through_the_server_by_an_admin(shared: Shared) -> None:
    ws, server = shared.ws, shared.server
    here = elsewhere(ws)
    refused = remote(server, shared.viewer, "token", "list", cwd=here)
    assert refused.returncode == 5 and "it needs admin" in refused.stderr
    admin = server.token("admin", name="root")
    made = remote(server, admin, "token", "create", "--name", "bot", "--role", "viewer",
                  "--env", "staging", cwd=here)  # fmt: skip
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("lg_") and "viewer on staging" in made.stderr
    listed = remote(server, admin, "token", "list", cwd=here)
    assert "bot" in listed.stdout and secret not in listed.stdout and admin not in listed.stdout
    assert remote(server, secret, "status", "staging", cwd=here).returncode == 0
    number = next(line.split()[0].lstrip("#") for line in listed.stdout.splitlines()
                  if " bot " in f" {line} ")  # fmt: skip
    revoked = remote(server, admin, "token", "revoke", number, cwd=here)
    assert revoked.returncode == 0 and "revoked token" in revoked.stderr
    no_secret(revoked, admin)
