"""The process's hub (lastgood.client.hub): every LiveConfig of a process waits for its held
long-poll on one thread, which applies each new version and asks again, and hands anything
unusual back to the follower. Real ``lastgood serve`` processes, real sockets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from lastgood.client import LiveConfig
from lastgood.client import hub as hubs
from tests.conftest import Workspace
from tests.serving import Server
from tests.test_client import deploy, eventually, served

MANY = 30


def watched(configs: list[LiveConfig]) -> int:
    """How many held reads of ``configs`` the hub waits on now (other tests of this process
    may have LiveConfigs of their own)."""
    hub = hubs.hub()
    return sum(1 for key in list(hub._selector.get_map().values())
               if key.data is not None and key.data.follower.live in configs)  # fmt: skip


def test_many_liveconfigs_in_one_process_follow_a_rollback_through_one_thread(
    workspace: Callable[..., Workspace],
    serve: Callable[..., Server],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ws = served(workspace)
    ws.healthy("two")
    deploy(ws, "second")
    server = serve(ws, "--poll", "0.05")
    # short holds: the reads' deadlines (wait + timeout) pass within the test
    options: dict[str, Any] = {"token": server.token("viewer"), "cache": False, "wait": 1,
                               "timeout": 1}  # fmt: skip
    configs = [LiveConfig(server.url, "staging", **options) for _ in range(MANY)]
    try:
        eventually(lambda: watched(configs) >= MANY)  # every long-poll waits in the hub
        assert ws.run("rollback", "staging", "-m", "back").returncode == 0
        for live in configs:
            assert live.wait_for_version(1).get("scoring/thresholds.yaml")["marker"] == "one"
        eventually(lambda: watched(configs) >= MANY)  # and asked again from there, still held
        assert all(live.source == "server" for live in configs)
    finally:
        for live in configs:
            live.close()
    eventually(lambda: watched(configs) == 0)  # close() broke the held reads; the hub let go
    assert not any(t.name.startswith("lastgood-follow") for t in threading.enumerate())
    time.sleep(2.5)  # the hub passes the closed reads' deadlines without tripping on them
    assert "hub failed" not in caplog.text


def test_a_server_killed_while_the_hub_holds_the_reads_is_followed_again_when_it_is_back(
    workspace: Callable[..., Workspace],
    serve: Callable[..., Server],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hub hands the broken reads back; each follower retries the usual way, with its
    backoff, and returns to the hub once the server answers."""
    ws = served(workspace)
    server = serve(ws)
    options: dict[str, Any] = {"token": server.token("viewer"), "cache": False, "poll": 0.2}
    configs = [LiveConfig(server.url, "staging", **options) for _ in range(5)]
    try:
        eventually(lambda: watched(configs) >= 5)
        server.kill()
        eventually(lambda: watched(configs) == 0)
        ws.healthy("two")
        deploy(ws, "while the server was down")
        serve(ws, port=server.port)
        for live in configs:
            assert live.wait_for_version(2, timeout=20).version == 2
        eventually(lambda: watched(configs) >= 5)
    finally:
        for live in configs:
            live.close()
    assert "hub failed" not in caplog.text
