"""The process's hub (lastgood.client.hub): every LiveConfig of a process waits for its held
long-poll on one thread, which applies each new version and asks again, and hands anything
unusual back to the follower. Real ``lastgood serve`` processes, real sockets."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest

from lastgood.client import LiveConfig
from lastgood.client import hub as hubs
from lastgood.client.payload import RecentPayloads, content_hash_of, encode_files
from lastgood.errors import ServerError
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
        # the version's bytes were verified once for the process: every LiveConfig holds the
        # same files, each with the moment it received them
        snapshots = [live.snapshot for live in configs]
        assert len({id(snapshot.files) for snapshot in snapshots if snapshot}) == 1
        assert len({snapshot.received_at for snapshot in snapshots if snapshot}) > 1
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


def test_bytes_verified_once_are_taken_again_and_any_other_bytes_are_checked_in_full() -> None:
    """RecentPayloads: the same answer again skips the check (equal bytes verify the same);
    a body that differs by one byte is decoded and hashed anew, and refused when it lies."""
    files = {"app.yaml": b"limit: 10\n"}
    payload = {"env": "staging", "version": 3, "content_hash": content_hash_of(files),
               "drifted": False, "files": encode_files(files)}  # fmt: skip
    body = json.dumps(payload).encode()
    recent, decoded = RecentPayloads(), []

    def decode(raw: bytes) -> Any:
        decoded.append(raw)
        return json.loads(raw)

    first = recent.verified(body, received_at=1.0, decode=decode)
    again = recent.verified(bytes(body), received_at=2.0, decode=decode)  # equal, not the same
    assert (again.version, again.content_hash, again.received_at) == (3, first.content_hash, 2.0)
    assert again.files is first.files and again.bytes("app.yaml") == b"limit: 10\n"
    assert len(decoded) == 1
    tampered = body.replace(b"limit: 10", b"limit: 99")
    with pytest.raises(ServerError, match="hash to"):
        recent.verified(tampered, received_at=3.0, decode=decode)
    assert len(decoded) == 2
    with pytest.raises(ServerError, match="hash to"):  # a refused body is never remembered
        recent.verified(tampered, received_at=4.0, decode=decode)


def test_a_server_that_stops_is_said_to_be_stopping_in_the_log(
    workspace: Callable[..., Workspace],
    serve: Callable[..., Server],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stopping server answers the held reads 503 "the server is stopping": the hub hands
    that answer to the follower, which logs the server's words, not "the server closed the
    connection" that its next attempt meets."""
    ws = served(workspace)
    server = serve(ws)
    options: dict[str, Any] = {"token": server.token("viewer"), "cache": False, "poll": 0.2}
    configs = [LiveConfig(server.url, "staging", **options) for _ in range(3)]
    try:
        eventually(lambda: watched(configs) >= 3)
        with caplog.at_level(logging.WARNING, logger="lastgood.client"):
            server.stop()
            eventually(lambda: caplog.text.count("the server is stopping") >= 3)
    finally:
        for live in configs:
            live.close()


def test_the_next_long_polls_wait_longer_after_a_bigger_burst_of_answers() -> None:
    """Applied answers ask again once answers stop arriving: about 2 ms after one answer, the
    longer the more answers the burst brought (a process holding hundreds of the consumers a
    switch reaches leaves the CPU to the rest of the fan-out), a quarter of a second at most."""
    hub = hubs.Hub()  # not started: only its rule is asked
    try:
        lulls = {}
        for burst in (1, MANY, 400, 1000, 10_000):
            hub._applied = [cast(hubs.Held, None)] * burst
            lulls[burst] = hub._lull()
        assert lulls[1] == pytest.approx(hubs.LULL + hubs.PER_ANSWER)
        assert lulls[1] < lulls[MANY] < 0.01 < lulls[400] < lulls[1000]
        assert lulls[1000] == lulls[10_000] == hubs.LONGEST_LULL == 0.25
    finally:
        for closing in (hub._selector, hub._wake, hub._woken):
            closing.close()
