"""Two real ``lastgood serve`` processes on one real PostgreSQL store.

The fleet is shared through the store: a consumer following server B shows in server A's fleet
view and ``/metrics``, and a rollback through A is confirmed by it. Switches travel between the
servers by PostgreSQL ``LISTEN/NOTIFY``: both servers run with ``--poll 10``, so a long-poll on
B that returns the new version well inside that can only have been woken by A's ``NOTIFY``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from lastgood.client import LiveConfig
from tests.conftest import FAST, PG_ADMIN, Workspace, eventually
from tests.serving import Server

STAGING = "/api/v1/envs/staging"
APPLICATION_NAME = "lastgood switch listener"  # what a DBA sees in pg_stat_activity


def two_servers(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], pg_url: str
) -> tuple[Workspace, Server, Server]:
    """A served staging on PostgreSQL with v1 and v2 deployed, and servers A and B on it; no
    bake and 10 ms between rounds, as nothing here is about the checks' pace."""
    ws = workspace(target="served", store=pg_url, **FAST)
    for marker in ("one", "two"):
        ws.healthy(marker)
        done = ws.run("deploy", "staging", "-m", marker)
        assert done.returncode == 0, done.stderr
    return ws, serve(ws, "--poll", "10"), serve(ws, "--poll", "10")


def consumers_on(metrics: str) -> dict[str, float]:
    """``lastgood_consumers`` of staging by version, from a /metrics page."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "lastgood_consumers" and sample.labels["env"] == "staging":
                found[sample.labels["version"]] = sample.value
    return found


def test_a_consumer_of_server_b_is_in_server_a_fleet_metrics_and_rollback(
    workspace: Callable[..., Workspace],
    serve: Callable[..., Server],
    pg_url: str,
    tmp_path: Path,
) -> None:
    ws, a, b = two_servers(workspace, serve, pg_url)
    deployer = a.token("deployer")
    with (
        LiveConfig(b.url, "staging", token=deployer, cache_dir=tmp_path, name="app-on-b") as app,
        a.client(deployer) as http,
    ):
        assert app.version == 2

        def fleet_of_a() -> dict[str, Any]:
            return http.get(f"{STAGING}/consumers").json()  # type: ignore[no-any-return]

        def seen_by_a() -> list[tuple[str, int]]:
            return [(c["name"], c["version"]) for c in fleet_of_a()["consumers"]]

        assert eventually(lambda: seen_by_a() == [("app-on-b", 2)])
        assert fleet_of_a()["fleet"]["summary"].startswith("v2 live on 1/1 consumers")
        assert eventually(lambda: consumers_on(http.get("/metrics").text)) == {"2": 1.0}

        done = http.post(f"{STAGING}/rollback", json={"message": "on A", "wait_fleet": 30})
        assert done.status_code == 200 and done.json()["exit_code"] == 0, done.text
        fleet = done.json()["fleet"]
        assert fleet["complete"] and (fleet["following"], fleet["total"]) == (1, 1), fleet
        assert fleet["summary"].startswith("v1 restored on 1/1 consumers")
        assert app.version == 1
        assert eventually(lambda: consumers_on(http.get("/metrics").text) == {"1": 1.0})
        shown = "v1 restored on 1/1 consumers"  # as the servers flushed it to the store
        assert eventually(lambda: shown in ws.run("status", "staging").stdout)
    # the consumer closed: it said it left, which reaches the store at the servers' next flush
    assert eventually(lambda: "no live consumers" in ws.run("status", "staging").stdout)


def long_poll(server: Server, token: str, seconds: float) -> threading.Thread:
    """A thread holding one long-poll on ``server``; returns once the server holds it (it
    reports the poll's consumer before it waits). Its answer lands in ``thread.answer``."""
    name = f"poll-{secrets.token_hex(4)}"

    class Poll(threading.Thread):
        answer: httpx.Response | None = None

        def run(self) -> None:
            with server.client(token) as http:
                etag = http.get(f"{STAGING}/config").headers["etag"]
                headers = {"If-None-Match": etag, "X-Lastgood-Consumer": name}
                self.answer = http.get(f"{STAGING}/config", params={"wait": seconds},
                                       headers=headers)  # fmt: skip

    poll = Poll(daemon=True)
    poll.start()
    with server.client(token) as http:  # B holds it once it knows the consumer
        eventually(lambda: name in http.get(f"{STAGING}/consumers").text)
    return poll


def rollback_wakes_b(ws: Workspace, a: Server, b: Server, token: str, want: int, via: str) -> None:
    """Roll back to v``want`` through server A or the CLI while a long-poll waits on B; the
    long-poll (2 s, far inside --poll 10) must answer with v``want``."""
    poll = long_poll(b, token, 2)
    if via == "cli":
        done = ws.run("rollback", "staging", "--to", f"v{want}")
        assert done.returncode == 0, done.stderr
    else:
        with a.client(token) as http:
            answer = http.post(f"{STAGING}/rollback", json={"to": f"v{want}", "wait_fleet": 0})
        assert answer.status_code == 200 and answer.json()["exit_code"] == 0, answer.text
    poll.join()
    woken = poll.answer  # type: ignore[attr-defined]
    assert woken is not None and woken.status_code == 200, woken
    assert woken.json()["version"] == want


def test_a_rollback_through_a_or_the_cli_wakes_a_long_poll_on_b_by_notify(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], pg_url: str
) -> None:
    """The long-polls run one after another, each for 2 s: a poll of B's (every 10 s) could
    explain at most one of them, NOTIFY all three."""
    ws, a, b = two_servers(workspace, serve, pg_url)
    deployer = a.token("deployer")
    for want, via in ((1, "server A"), (2, "cli"), (1, "server A")):
        rollback_wakes_b(ws, a, b, deployer, want, via)


def listeners(pg_url: str) -> int:
    """How many servers hold a switch listener on the test database."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        found = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
            (APPLICATION_NAME, pg_url.rsplit("/", 1)[1]),
        ).fetchone()
    return int(found[0]) if found else 0


def test_a_server_whose_listener_connection_is_killed_listens_again(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], pg_url: str
) -> None:
    ws, a, b = two_servers(workspace, serve, pg_url)
    deployer = a.token("deployer")
    assert eventually(lambda: listeners(pg_url) == 2)
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = %s",
            (APPLICATION_NAME, pg_url.rsplit("/", 1)[1]),
        )
    assert eventually(lambda: listeners(pg_url) == 2)
    rollback_wakes_b(ws, a, b, deployer, 1, "server A")
    assert "polling every 10 s for switches until the store answers again" in b.log.read_text()


def test_a_recorded_switch_is_announced_on_postgresql_and_sqlite_has_no_listener(
    workspace: Callable[..., Workspace], pg_url: str, tmp_path: Path
) -> None:
    """The store side in process: any process recording an activation (here the CLI) sends
    the environment's name to every listener; a SQLite store offers no listener at all."""
    from lastgood.store import open_store

    ws = workspace(target="served", store=pg_url)
    ws.healthy("one")
    store = open_store(pg_url)
    listener = store.switch_listener()
    assert listener is not None
    try:
        listener.connect()
        assert listener.wait(0.1) == set()
        assert ws.run("deploy", "staging", "-m", "one").returncode == 0
        assert eventually(lambda: listener.wait(0.5)) == {"staging"}
    finally:
        listener.close()
        store.close()
    lite = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert lite.switch_listener() is None
    finally:
        lite.close()


def test_every_server_serves_a_cli_rollback_by_the_time_the_cli_returns(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], pg_url: str
) -> None:
    """The CLI's rollback returns after its switch was committed and verified; the NOTIFY sent
    at the commit must have been acted on by then (a quarter second of grace for a loaded
    machine), not collected for half a second first. Six switches, two servers each."""
    ws, a, b = two_servers(workspace, serve, pg_url)
    reader = a.token("viewer")
    for want in (1, 2, 1, 2, 1, 2):
        done = ws.run("rollback", "staging", "--to", f"v{want}")
        assert done.returncode == 0, done.stderr
        returned = time.monotonic()
        for server in (a, b):
            with server.client(reader) as http:
                while True:
                    served = http.get(f"{STAGING}/config").json()["version"]
                    if served == want or time.monotonic() - returned > 0.25:
                        break
            assert served == want, f"{server.url} still served v{served} after the CLI returned"


def test_a_rollback_is_confirmed_across_two_servers_an_agent_and_an_sdk_consumer(
    workspace: Callable[..., Workspace],
    serve: Callable[..., Server],
    pg_url: str,
    tmp_path: Path,
) -> None:
    """Issue 16's end to end: server A (two workers) and server B on one PostgreSQL store, a host
    agent putting the served version live on its own folder through A, an application following
    B. A rollback through B waits until both report the restored version, and says so."""
    from tests.test_agent import AgentProcess, intact, live_of

    ws = workspace(target="served", store=pg_url)
    for marker in ("one", "two"):
        ws.healthy(marker)
        assert ws.run("deploy", "staging", "-m", marker).returncode == 0
    a, b = serve(ws, "--poll", "10", "--workers", "2"), serve(ws, "--poll", "10")
    deployer, live = a.token("deployer"), tmp_path / "host"
    agent = AgentProcess(tmp_path, deployer, "--server", f"{a.url},{b.url}", "--env", "staging",
                         "--target", f"directory:{live}", "--state", str(tmp_path / "state"),
                         "--name", "web-1")  # fmt: skip
    try:
        with (
            LiveConfig(b.url, "staging", token=deployer, cache=False, name="api-1") as app,
            b.client(deployer) as http,
        ):
            assert eventually(lambda: live_of(live) is not None and live_of(live).version == 2)  # type: ignore[union-attr]

            def fleet_of_b() -> str:
                return str(http.get(f"{STAGING}/consumers").json()["fleet"]["summary"])

            # B knows the agent once A flushed its report (within a second): only then can a
            # rollback through B wait for it
            assert eventually(lambda: fleet_of_b().startswith("v2 live on 2/2 consumers"))
            done = http.post(f"{STAGING}/rollback", json={"message": "two is bad",
                                                          "wait_fleet": 30})  # fmt: skip
            assert done.status_code == 200 and done.json()["exit_code"] == 0, done.text
            fleet = done.json()["fleet"]
            assert fleet["complete"], fleet
            assert fleet["summary"].startswith("v1 restored on 2/2 consumers (1 agent) in "), fleet
            assert app.version == 1 and live_of(live).version == 1 and intact(live)  # type: ignore[union-attr]
        assert agent.stop() == 0 and "Traceback" not in agent.text()
    finally:
        if agent.process.poll() is None:
            agent.process.kill()
            agent.process.wait(10)
