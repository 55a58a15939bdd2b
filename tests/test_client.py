"""The SDK, ``lastgood.client.LiveConfig``, against real ``lastgood serve`` processes and real
workspaces: reading, following deploys and CLI rollbacks, the fleet view, the disk cache, a
server that dies and comes back, and payload verification. No mocks."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lastgood.client import LiveConfig, Snapshot, content_hash_of, verify_payload
from lastgood.client.cache import ConfigCache
from lastgood.client.payload import encode_files
from lastgood.errors import AuthError, ServerError
from tests.conftest import FAST, Workspace
from tests.http_fakes import POLL
from tests.serving import Server, free_port

HEAVY = {"sqlalchemy", "fastapi", "starlette", "alembic", "pydantic", "uvicorn", "jinja2"}


def served(workspace: Callable[..., Workspace]) -> Workspace:
    """A served workspace with v1 live (files of every kind the SDK parses); versions judged
    in one round (FAST): the SDK follows what is served, from the switch on."""
    ws = workspace(target="served", **FAST)
    ws.healthy("one")
    ws.write("app/limits.json", '{"rate": 10, "burst": [1, 2]}\n')
    ws.write("app/flags.toml", "enabled = true\n[queue]\nsize = 5\n")
    ws.write("app/motd.txt", "hello\n")
    deploy(ws, "first")
    return ws


def deploy(ws: Workspace, message: str) -> None:
    done = ws.run("deploy", "staging", "-m", message)
    assert done.returncode == 0, done.stderr


def eventually(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s: {predicate}")


def cached_version(path: Path | None) -> int | None:
    assert path is not None
    try:
        return int(json.loads(path.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def stop_now(server: Server) -> None:
    """SIGKILL: the server vanishes as in a crash, its long-polls unanswered (a SIGTERM would
    answer them first: see tests/test_serve.py)."""
    server.kill()


def test_import_is_light() -> None:
    code = (
        "import lastgood.client, sys; "
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {sorted(HEAVY)!r}]; "
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_reads_parsed_files_and_reports_itself(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], tmp_path: Path
) -> None:
    ws = served(workspace)
    server = serve(ws)
    viewer = server.token("viewer")
    with LiveConfig(server.url, "staging", token=viewer, cache_dir=tmp_path, name="api-1") as live:
        assert (live.version, live.source) == (1, "server")
        assert live.get("scoring/thresholds.yaml") == {"threshold": 0.4, "marker": "one"}
        assert live.get("app/limits.json") == {"rate": 10, "burst": [1, 2]}
        assert live.get("app/flags.toml") == {"enabled": True, "queue": {"size": 5}}
        assert live.get("app/motd.txt") == live.text("app/motd.txt") == "hello\n"
        assert live.bytes("health.txt") == b"ok\n"
        assert live.get("missing.yaml", None) is None
        assert "app/motd.txt" in live.paths() and live.files["health.txt"] == b"ok\n"
        assert live.content_hash == content_hash_of(live.files)
        live.get("app/limits.json")["rate"] = 0  # a copy: other readers are unaffected
        assert live.get("app/limits.json")["rate"] == 10
        assert live.age is not None and live.age < 5
        with server.client(viewer) as http:
            fleet = eventually(lambda: http.get("/api/v1/envs/staging/consumers").json())
        assert f"1:{live.content_hash}" in live.serving and "api-1" in json.dumps(fleet)
        started = time.monotonic()
    assert time.monotonic() - started < 2  # close() broke the long-poll instead of waiting 30 s
    with pytest.raises(AuthError) as refused:
        LiveConfig(server.url, "staging", token="not-a-real-token", cache_dir=tmp_path)
    assert "not-a-real-token" not in str(refused.value) and server.url in str(refused.value)
    stop_now(server)


def test_follows_a_deploy_and_a_cli_rollback_and_the_fleet_sees_it(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], tmp_path: Path
) -> None:
    ws = served(workspace)
    server = serve(ws)
    viewer = server.token("viewer")
    changes: list[tuple[int | None, int]] = []

    def record(old: Snapshot | None, new: Snapshot) -> None:
        changes.append((old.version if old else None, new.version))

    options: dict[str, Any] = {"token": viewer, "cache_dir": tmp_path}
    with (
        LiveConfig(server.url, "staging", on_change=record, name="one", **options) as first,
        LiveConfig(server.url, "staging", name="two", **options) as second,
    ):
        ws.healthy("two")
        deploy(ws, "second")
        assert first.wait_for_version(2).get("scoring/thresholds.yaml")["marker"] == "two"
        done = ws.run("rollback", "staging", "-m", "scores at zero")
        assert done.returncode == 0, done.stderr
        assert first.wait_for_version(1).get("scoring/thresholds.yaml")["marker"] == "one"
        second.wait_for_version(1)
        eventually(lambda: changes == [(1, 2), (2, 1)])
        with server.client(viewer) as http:

            def complete() -> dict[str, Any] | None:
                fleet = http.get("/api/v1/envs/staging/consumers").json()
                return fleet if "v1 restored on 2/2" in json.dumps(fleet) else None

            fleet = eventually(complete)
        assert "one" in json.dumps(fleet) and "two" in json.dumps(fleet)
        status = eventually(lambda: (s := ws.run("status", "staging").stdout) and (
            "consumers" in s and "2/2" in s) and s)  # fmt: skip
    assert "v1 restored on 2/2 consumers" in status
    stop_now(server)


def test_server_down_cache_and_catching_up(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], tmp_path: Path
) -> None:
    ws = served(workspace)
    server = serve(ws)
    token = server.token("viewer")
    options: dict[str, Any] = {"token": token, "cache_dir": tmp_path, "poll": 0.3}
    with LiveConfig(server.url, "staging", **options) as running:
        assert cached_version(running.cache_path) == 1
        server.kill()
        assert running.version == 1 and running.get("scoring/thresholds.yaml")["marker"] == "one"
        time.sleep(0.5)  # the thing under test: the cached copy must be measurably old
        with LiveConfig(server.url, "staging", **options) as restarted:
            assert (restarted.version, restarted.source) == (1, "cache")
            assert restarted.age is not None and 0.3 < restarted.age < 60
            ws.healthy("two")
            deploy(ws, "while the server was down")  # the CLI needs no server
            again = serve(ws, port=server.port)
            for live in (running, restarted):
                assert live.wait_for_version(2).get("scoring/thresholds.yaml")["marker"] == "two"
            assert restarted.source == "server" and restarted.age is not None
            assert restarted.age < 5
            eventually(lambda: cached_version(restarted.cache_path) == 2)
    stop_now(again)
    with pytest.raises(ServerError) as down:
        LiveConfig(f"http://127.0.0.1:{free_port()}", "staging", cache_dir=tmp_path / "empty")
    assert "127.0.0.1" in str(down.value) and "require=False" in str(down.value)
    nothing = LiveConfig(f"http://127.0.0.1:{free_port()}", "staging", cache=False,
                         require=False, start=False)  # fmt: skip
    assert (nothing.version, nothing.source, nothing.serving) == (None, None, "none")
    nothing.close()


def test_a_refresh_while_the_follower_holds_a_long_poll(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], tmp_path: Path
) -> None:
    """The application's refresh() gets its own connection: it is answered at once instead of
    queueing behind (or reading the answer of) the follower's 30-second long-poll."""
    ws = served(workspace)
    server = serve(ws)
    options: dict[str, Any] = {"token": server.token("viewer"), "cache": False, "timeout": 2}
    with LiveConfig(server.url, "staging", **options) as live:
        eventually(lambda: live.age == 0.0)  # the follower's long-poll is held open
        assert live.refresh() is False and live.version == 1  # answered, not timed out
        ws.healthy("two")
        deploy(ws, "second")
        assert live.wait_for_version(2).get("scoring/thresholds.yaml")["marker"] == "two"
        assert live.refresh() is False  # the follower's connection and this one, both fine
        eventually(lambda: live.age == 0.0)  # and the follower holds the next long-poll
    stop_now(server)


def snapshot_of(files: dict[str, bytes], version: int = 3) -> Snapshot:
    return Snapshot(version, content_hash_of(files), files, received_at=time.time() - 120)


def test_a_corrupted_cache_is_ignored_and_a_good_one_is_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    probe = LiveConfig(url, "staging", cache_dir=tmp_path, require=False, start=False)
    probe.close()
    assert probe.cache_path is not None
    ConfigCache(probe.cache_path, "staging").save(snapshot_of({"a.yaml": b"x: 1\n"}))
    with LiveConfig(url, "staging", cache_dir=tmp_path, poll=0.2) as live:
        assert (live.version, live.source, live.get("a.yaml")) == (3, "cache", {"x": 1})
        assert live.age is not None and 110 < live.age < 200
    data = json.loads(probe.cache_path.read_text())
    data["files"]["a.yaml"]["content"] = "x: 2\n"  # edited by hand: the hash no longer matches
    probe.cache_path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="lastgood.client"), pytest.raises(ServerError):
        LiveConfig(url, "staging", cache_dir=tmp_path)
    assert "damaged and ignored" in caplog.text
    probe.cache_path.write_bytes(b'{"version": 3, "files": {')  # torn
    assert ConfigCache(probe.cache_path, "staging").load() is None


def test_a_tampered_payload_is_refused() -> None:
    files = {"a.yaml": b"x: 1\n", "blob.bin": b"\xff\x00\x01"}
    payload = {"env": "staging", "version": 4, "content_hash": content_hash_of(files),
               "drifted": False, "files": encode_files(files)}  # fmt: skip
    assert payload["files"]["blob.bin"]["encoding"] == "base64"
    good = verify_payload(payload, received_at=0.0)
    assert good.bytes("blob.bin") == b"\xff\x00\x01" and good.version == 4
    tampered = json.loads(json.dumps(payload))
    tampered["files"]["a.yaml"]["content"] = "x: 0\n"
    with pytest.raises(ServerError, match="refused"):
        verify_payload(tampered, received_at=0.0)
    extra = json.loads(json.dumps(payload))
    extra["files"]["b.yaml"] = {"encoding": "utf-8", "content": "y: 1\n"}
    with pytest.raises(ServerError, match="refused"):
        verify_payload(extra, received_at=0.0)
    with pytest.raises(ServerError):
        verify_payload({**payload, "version": "4"}, received_at=0.0)
    with pytest.raises(AttributeError):
        good.version = 5  # type: ignore[misc]


def test_tampered_payload_from_a_server_keeps_the_previous_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A tiny real HTTP server (not lastgood) answering a payload whose hash is wrong."""
    import http.server
    import threading

    files = {"a.yaml": b"x: 1\n"}
    good = {"env": "staging", "version": 1, "content_hash": content_hash_of(files),
            "files": encode_files(files)}  # fmt: skip
    bad = {**good, "version": 2, "files": encode_files({"a.yaml": b"x: 666\n"})}
    answers = [good, bad]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(answers[0] if len(answers) == 2 else answers[-1]).encode()
            if len(answers) == 2:
                answers.pop(0)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(POLL,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        with (
            caplog.at_level(logging.WARNING, logger="lastgood.client"),
            LiveConfig(url, "staging", cache_dir=tmp_path, poll=0.1) as live,
        ):
            eventually(lambda: "refused a config payload" in caplog.text)
            assert live.version == 1 and live.get("a.yaml") == {"x": 1}
    finally:
        httpd.shutdown()
        httpd.server_close()


def format_1_cache(path: Path, snapshot: Snapshot) -> None:
    """A cache file exactly as lastgood 0.1 wrote it: its hash covered only the files."""
    body = {"format": 1, "env": "staging", "version": snapshot.version,
            "content_hash": snapshot.content_hash, "drifted": snapshot.drifted,
            "fetched_at": snapshot.received_at, "files": encode_files(snapshot.files)}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body))


@pytest.mark.parametrize(
    "edit",
    [
        {"version": 7},  # the files still hash to content_hash: only the digest sees this
        {"drifted": True},
        {"fetched_at": 4102444800.0},  # "fetched" in 2100: an age that never grows
        {"env": "production"},
        {"format": 3},
        {"digest": "sha256:" + "0" * 64},
    ],
    ids=lambda edit: next(iter(edit)),
)
def test_every_field_of_the_cache_is_verified(
    edit: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An edited version number (or any other field) is refused like an edited file: never
    served, with a warning naming the file."""
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    probe = LiveConfig(url, "staging", cache_dir=tmp_path, require=False, start=False)
    probe.close()
    assert probe.cache_path is not None
    ConfigCache(probe.cache_path, "staging").save(snapshot_of({"a.yaml": b"x: 1\n"}))
    with LiveConfig(url, "staging", cache_dir=tmp_path, start=False) as live:
        assert (live.version, live.source) == (3, "cache")
    data = json.loads(probe.cache_path.read_text())
    assert data["format"] == 2 and data["digest"].startswith("sha256:")
    probe.cache_path.write_text(json.dumps({**data, **edit}))
    with caplog.at_level(logging.WARNING, logger="lastgood.client"):
        with pytest.raises(ServerError) as refused:
            LiveConfig(url, "staging", cache_dir=tmp_path, start=False)
        assert ConfigCache(probe.cache_path, "staging").load() is None
    assert str(probe.cache_path) in caplog.text and "ignored" in caplog.text
    assert str(probe.cache_path) in str(refused.value)


def test_a_cache_from_the_previous_release_is_ignored_then_replaced(
    workspace: Callable[..., Workspace],
    serve: Callable[..., Server],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A format-1 cache (lastgood 0.1) is not served, says why, and the first version from the
    server replaces it, even for a consumer that started with nothing."""
    ws = served(workspace)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve(ws, port=port)
    options: dict[str, Any] = {"token": server.token("viewer"), "cache_dir": tmp_path, "poll": 0.2}
    server.kill()
    path = LiveConfig(url, "staging", require=False, start=False, **options).cache_path
    assert path is not None
    format_1_cache(path, snapshot_of({"a.yaml": b"x: 1\n"}, version=9))
    with (
        caplog.at_level(logging.WARNING, logger="lastgood.client"),
        LiveConfig(url, "staging", require=False, **options) as live,
    ):
        assert live.version is None
        assert f"{path} is ignored" in caplog.text and "lastgood 0.1" in caplog.text
        again = serve(ws, port=port)
        assert live.wait_for_version(1).get("scoring/thresholds.yaml")["marker"] == "one"
        eventually(lambda: json.loads(path.read_text()).get("format") == 2)
    assert ConfigCache(path, "staging").load() is not None
    stop_now(again)


def test_a_consumer_started_from_the_cache_says_server_as_soon_as_it_answers(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], tmp_path: Path
) -> None:
    """The server comes back with the cached version still live: its first answer (a 304)
    confirms it, without waiting for a 60-second long-poll to end."""
    ws = served(workspace)
    server = serve(ws)
    options: dict[str, Any] = {"token": server.token("viewer"), "cache_dir": tmp_path,
                               "poll": 0.2, "wait": 60}  # fmt: skip
    with LiveConfig(server.url, "staging", **options):
        pass  # the cache now holds v1
    server.kill()
    with LiveConfig(server.url, "staging", **options) as live:
        assert (live.version, live.source) == (1, "cache")
        again = serve(ws, port=server.port)
        eventually(lambda: live.source == "server", timeout=20)
        assert live.version == 1 and live.age is not None and live.age < 5
        eventually(lambda: live.age == 0.0)  # and then it holds the long-poll
    stop_now(again)


def test_a_closed_liveconfig_leaves_the_fleet_at_once(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """close() tells the server this consumer stops: the fleet stops counting it at once, not
    after 90 s of silence (a rollback would otherwise wait for consumers long gone)."""
    ws = served(workspace)
    server = serve(ws)
    viewer = server.token("viewer")
    staying = LiveConfig(server.url, "staging", token=viewer, cache=False, name="staying")
    going = LiveConfig(server.url, "staging", token=viewer, cache=False, name="going")
    with server.client(viewer) as http:

        def counted() -> int:
            return int(http.get("/api/v1/envs/staging/consumers").json()["fleet"]["total"])

        assert eventually(lambda: counted() == 2)
        going.close()
        assert counted() == 1
        staying.close()
        assert counted() == 0


def test_closing_right_after_starting_never_raises_in_the_follower_thread(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """A close() landing between the follower's check and its hand-off to the hub used to end
    the follower thread with an uncaught 'this LiveConfig is closed' (about 1 in 50)."""
    server = serve(served(workspace))
    viewer = server.token("viewer")
    raised: list[BaseException | None] = []
    previous, interval = threading.excepthook, sys.getswitchinterval()
    threading.excepthook = lambda args: raised.append(args.exc_value)
    sys.setswitchinterval(1e-6)  # threads take turns often: the narrow moment comes up
    try:
        for _ in range(300):  # the follower starts as the constructor returns: close at once
            LiveConfig(server.url, "staging", token=viewer, cache=False).close()
    finally:
        threading.excepthook = previous
        sys.setswitchinterval(interval)
    assert raised == []
