"""The server's API against a real ``lastgood serve``: status, deploy, rollback, live config."""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.conftest import FAST, Workspace
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


def test_bad_input_is_a_clear_4xx_and_never_a_traceback(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = served(workspace)
    server = serve(ws)
    admin = server.token("admin")
    with server.client(admin) as http:
        bad = {"X-Lastgood-Consumer": "c1", "X-Lastgood-Serving": "twelve"}
        assert http.get("/api/v1/envs/staging/config", headers=bad).status_code == 400
        unprintable = {"X-Lastgood-Consumer": "c\x01", "X-Lastgood-Serving": "1:x"}
        assert http.get("/api/v1/envs/staging/config", headers=unprintable).status_code == 400
        # beyond PostgreSQL's INTEGER: refused, and so it cannot block every later flush
        for number in (2**31, 2**63):
            huge = {"X-Lastgood-Consumer": "c2", "X-Lastgood-Serving": f"{number}:x"}
            assert http.get("/api/v1/envs/staging/config", headers=huge).status_code == 400
            report = {"consumer": "c3", "version": number}
            assert http.post("/api/v1/envs/staging/consumers", json=report).status_code == 422
            assert http.get(f"/api/v1/versions/v{number}").status_code == 404
            assert http.get(f"/api/v1/versions/{number}").status_code == 404
        assert http.get(f"/api/v1/versions/v{2**64}").status_code == 404
        assert http.delete(f"/api/v1/tokens/{2**64}").status_code == 422
        for answer in (http.get(f"/api/v1/versions/v{2**64}"), http.get("/nowhere")):
            assert answer.json()["error"], answer.text
        good = {"X-Lastgood-Consumer": "c4", "X-Lastgood-Serving": "1:x"}
        assert http.get("/api/v1/envs/staging/config", headers=good).status_code == 200
    deadline = time.monotonic() + 10
    while "c4" not in ws.run("status", "staging", "--json").stdout:
        assert time.monotonic() < deadline, "the good report never reached the store"
        time.sleep(0.1)
    log = server.log.read_text()
    assert "Traceback" not in log and admin not in log


def _answer(raw: socket.socket) -> str:
    """One whole HTTP answer (head and a Content-Length body), however it was split in packets."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += raw.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += raw.recv(65536)
    return (head + b"\r\n\r\n" + body).decode()


def test_a_huge_body_is_refused_before_it_is_read(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = served(workspace)
    server = serve(ws)
    secret = server.token("deployer")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        head = (
            "POST /api/v1/versions HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {secret}\r\nContent-Type: application/json\r\n"
            "Content-Length: 10000000000\r\n\r\n"
        )
        raw.sendall(head.encode())
        head = _answer(raw)
    assert head.startswith("HTTP/1.1 413"), head
    assert '"error": "the request body is larger than' in head

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"files": {"a.txt": {"content": "'
        for _ in range(70):
            yield b"x" * (1024 * 1024)
        yield b'"}}}'

    with server.client(secret) as http:
        answer = http.post("/api/v1/versions", content=chunks(),
                           headers={"Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 413 and "larger than" in answer.json()["error"]
    assert "v2" not in ws.run("log").stdout


def test_long_poll_and_event_stream_follow_a_switch(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = served(workspace)
    ws.healthy("two")
    assert ws.run("deploy", "staging", "-m", "second").returncode == 0
    server = serve(ws)
    with server.client(server.token("deployer")) as http:
        etag = http.get("/api/v1/envs/staging/config").headers["etag"]
        started = time.monotonic()
        quiet = http.get("/api/v1/envs/staging/config", params={"wait": 0.5},
                         headers={"If-None-Match": etag})  # fmt: skip
        assert quiet.status_code == 304 and time.monotonic() - started >= 0.5
        with http.stream("GET", "/api/v1/envs/staging/config/stream") as stream:
            lines = stream.iter_lines()
            assert next(lines) == "event: config" and '"version": 2' in next(lines)
            rollback = threading.Thread(target=lambda: http.post(
                "/api/v1/envs/staging/rollback", json={"wait_fleet": 0}))  # fmt: skip
            rollback.start()
            following = [line for line in itertools.islice(lines, 4) if line]
            rollback.join()
        assert following[0] == "event: config" and '"version": 1' in following[1]


def two_large_versions(workspace: Callable[..., Workspace]) -> Workspace:
    """v1 and v2 deployed, each with a few hundred files, so publishing one takes the feed
    long enough for an answer sent before it to show. No bake, 10 ms between rounds: the tests
    switch some twenty times, and what they read does not depend on the checks' pace."""
    ws = served(workspace, **FAST)
    for marker in ("one", "two"):
        for number in range(300):
            ws.write(f"rules/rule-{number}.yaml", f"rule: {number}\nmarker: {marker}\n" * 20)
        ws.healthy(marker)
        assert ws.run("deploy", "staging", "-m", marker).returncode == 0
    return ws


def test_a_config_read_right_after_a_rollback_or_deploy_returns_the_new_version(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """Read your own writes: the API answers a switch only once the feed publishes it. With
    --poll 10 nothing but the server's own switch can refresh the feed in this loop, so an
    answer sent before the feed published the new version shows as the old one right after."""
    server = serve(two_large_versions(workspace), "--poll", "10")
    with server.client(server.token("deployer")) as http:
        for want in [2, 3] * 10:
            done = http.post("/api/v1/envs/staging/rollback",
                             json={"to": f"v{want}", "wait_fleet": 0})  # fmt: skip
            assert done.status_code == 200 and done.json()["exit_code"] == 0, done.text
            assert http.get("/api/v1/envs/staging/config").json()["version"] == want


def test_a_config_read_right_after_a_rollback_on_the_web_page_returns_the_new_version(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """The page's rollback and deploy buttons answer, like the API, once the feed publishes."""
    server = serve(two_large_versions(workspace), "--poll", "10")
    reader = server.client(server.token("viewer"))
    with reader, server.client() as page:
        signed_in = page.post("/login", data={"token": server.token("deployer")})
        assert signed_in.status_code == 303
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.get("/").text)
        assert csrf is not None
        for _ in range(2):
            back = page.post("/envs/staging/rollback", data={"csrf": csrf.group(1)})
            assert back.status_code == 200 and "v2" in back.text, back.text
            assert reader.get("/api/v1/envs/staging/config").json()["version"] == 2
            forth = page.post("/envs/staging/deploy", data={"csrf": csrf.group(1), "version": "v3"})
            assert forth.status_code == 200 and "v3" in forth.text, forth.text
            assert reader.get("/api/v1/envs/staging/config").json()["version"] == 3


def test_a_deploy_through_a_server_whose_config_is_older_than_the_file_is_refused(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """The server reads lastgood.toml once: a check added since would not guard a deploy made
    through it. Such a deploy (and a check, a drill) is refused with exit 5 and why; status
    says so; a rollback is never held for it."""
    ws = served(workspace)
    ws.healthy("two")
    assert ws.run("deploy", "staging", "-m", "second").returncode == 0
    server = serve(ws)
    token = server.token("deployer")
    config = ws.root / "lastgood.toml"
    config.write_text(config.read_text() + "\n# a check is being added\n")
    environ = {"LASTGOOD_SERVER": server.url, "LASTGOOD_TOKEN": token}
    refused = ws.run("deploy", "staging", "--version", "v1", env=environ)
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert "refused to deploy through this server" in refused.stderr
    assert "changed since this server started" in refused.stderr
    assert "restart the server" in refused.stderr
    shown = ws.run("status", "staging", env=environ)
    assert "changed since this server started" in shown.stdout + shown.stderr
    rolled = ws.run("rollback", "staging", "-m", "two is bad", env=environ)
    assert rolled.returncode == 0, rolled.stderr


def test_a_deploy_through_the_api_answers_once_its_consumers_serve_it(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], tmp_path: Path
) -> None:
    """As a rollback does: the fleet in the answer is where the consumers are once they followed
    (or the wait is over), not a picture taken before they could."""
    from lastgood.client import LiveConfig

    ws = served(workspace, bake="0s")  # the answer comes at once: nothing waits in the bake
    ws.healthy("two")
    server = serve(ws, "--poll", "0.05")
    token = server.token("deployer")
    # polling every 0.5 s rather than holding a long-poll: it sees the switch only later
    with LiveConfig(server.url, "staging", token=token, cache_dir=tmp_path, name="app-1",
                    wait=0, poll=0.5):  # fmt: skip
        environ = {"LASTGOOD_SERVER": server.url, "LASTGOOD_TOKEN": token}
        done = ws.run("deploy", "staging", "-m", "second", "--json", env=environ)
        assert done.returncode == 0, done.stderr
        fleet = json.loads(done.stdout)["fleet"]
        assert fleet["summary"].startswith("v2 live on 1/1 consumers in "), fleet
