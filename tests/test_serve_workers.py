"""``lastgood serve --workers N``: several real server processes on one port, as an operator runs
them. Consumers long-poll whichever worker the kernel gave their connection; a rollback answered
by any worker reaches all of them; the fleet view of any worker shows all of them; a killed
worker is replaced; SIGTERM to the parent stops everything, and so does its death; two deploys
of one environment sent to two workers at once are one deploy and one ``423`` (the store's
lease).

The servers run with ``--poll 10`` on SQLite, so a consumer held by another worker than the one
that rolled back can only follow within a second through the workers' wake-up, never the poll.
Which worker holds which connection is read from ``/proc``.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from lastgood.client import LiveConfig
from tests.conftest import Workspace, eventually
from tests.serving import Server

STAGING = "/api/v1/envs/staging"


def workers_of(server: Server) -> list[int]:
    """The worker pids of a server, from ``/proc`` (Linux)."""
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sorted(int(child) for child in children)


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            found.add(link[8:-1])
    return found


def holding(pids: list[int], port: int) -> set[int]:
    """The pids among ``pids`` that hold an established connection on local ``port``."""
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
            established.add(fields[9])
    return {pid for pid in pids if _socket_inodes(pid) & established}


def holder_of(pids: list[int], port: int, client_port: int) -> int | None:
    """Which of ``pids`` holds the server side of the connection from ``client_port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(f.split(":")[1], 16) for f in fields[1:3])
        if (local, remote) == (port, client_port):
            return next((pid for pid in pids if fields[9] in _socket_inodes(pid)), None)
    return None


def one_connection_per_worker(server: Server) -> list[http.client.HTTPConnection]:
    """Kept-alive connections, one held by each worker (the kernel chooses who accepts)."""
    workers, found = workers_of(server), dict[int, http.client.HTTPConnection]()
    for _ in range(100):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        holder = holder_of(workers, server.port, connection.sock.getsockname()[1])
        if holder is None or holder in found:
            connection.close()
        else:
            found[holder] = connection
        if len(found) == len(workers):
            return list(found.values())
    raise AssertionError("every connection went to one worker")


def served_twice(workspace: Callable[..., Workspace], **policy: str) -> Workspace:
    """A served staging with v1 and v2 deployed (v2 live)."""
    ws = workspace(target="served", **policy)
    for marker in ("one", "two"):
        ws.healthy(marker)
        done = ws.run("deploy", "staging", "-m", marker)
        assert done.returncode == 0, done.stderr
    return ws


def fresh(server: Server, token: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request on a new connection, so that any worker may take it."""
    with server.client(token) as http:
        return http.request(method, path, **kwargs)


def spread_consumers(server: Server, token: str, stack: ExitStack) -> list[LiveConfig]:
    """Start consumers until both workers hold some (the kernel chooses who accepts, and a
    worker still starting accepts nothing)."""
    workers, apps = workers_of(server), list[LiveConfig]()
    deadline = time.monotonic() + 20
    while len(apps) < 6 or holding(workers, server.port) != set(workers):
        assert time.monotonic() < deadline, "every consumer went to one worker"
        apps.append(stack.enter_context(
            LiveConfig(server.url, "staging", token=token, cache=False,
                       name=f"app-{len(apps)}", wait=20)
        ))  # fmt: skip
        time.sleep(0.05)
    return apps


def test_workers_share_rollbacks_the_fleet_and_are_kept_alive(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = served_twice(workspace)
    server = serve(ws, "--workers", "2", "--poll", "10")
    assert "with 2 workers" in server.log.read_text()
    assert len(workers_of(server)) == 2
    deployer = server.token("deployer")
    with ExitStack() as stack:
        apps = spread_consumers(server, deployer, stack)
        names = {app.name for app in apps}

        def fleet_names() -> set[str]:
            found = fresh(server, deployer, "GET", f"{STAGING}/consumers").json()
            return {c["name"] for c in found["consumers"]}

        for _ in range(4):  # whichever worker answers, it sees every worker's consumers
            assert eventually(lambda: fleet_names() == names, 5)

        for target in (1, 2, 1):  # switches answered by whichever worker takes the connection
            started = time.monotonic()
            done = fresh(server, deployer, "POST", f"{STAGING}/rollback",
                         json={"to": f"v{target}", "wait_fleet": 10})  # fmt: skip
            assert done.status_code == 200, done.text
            fleet = done.json()["fleet"]
            assert fleet["complete"] and fleet["total"] == len(apps), fleet
            assert time.monotonic() - started < 5  # confirmed long before the 10 s poll
            for app in apps:
                app.wait_for_version(target, timeout=1)  # not the 10 s poll: the wake-up

        killed = workers_of(server)[0]
        os.kill(killed, signal.SIGKILL)
        assert eventually(lambda: len(workers_of(server)) == 2 and killed not in
                          workers_of(server), 10)  # fmt: skip
        replaced = f"worker {killed} was killed by SIGKILL; starting another"
        assert eventually(lambda: replaced in server.log.read_text())  # a crash loop shows
        done = fresh(server, deployer, "POST", f"{STAGING}/rollback", json={"to": "v2"})
        assert done.status_code == 200, done.text
        for app in apps:  # those the killed worker held reconnected to the others
            app.wait_for_version(2, timeout=5)

    workers = workers_of(server)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(10) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return "gone"


def test_workers_must_be_a_sensible_number(workspace: Callable[..., Workspace]) -> None:
    ws = workspace(target="served")
    for value in ("0", "65"):
        done = ws.run("serve", "--workers", value, "--port", "0")
        assert done.returncode == 2, done.stderr
        assert f"--workers must be 1 to 64, got {value}" in done.stderr
        assert "hint: one per core is a good start: --workers" in done.stderr
    done = ws.run("serve", "--workers", "two")
    assert done.returncode == 2 and "'two' is not a valid integer" in done.stderr


def test_workers_end_with_a_parent_killed_outright(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    server = serve(served_twice(workspace), "--workers", "2")
    workers = workers_of(server)
    server.kill()
    assert eventually(lambda: all(_state(pid) in ("gone", "Z") for pid in workers), 10)


def test_two_workers_never_run_two_deploys_of_one_env_at_once(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = served_twice(workspace, bake="1s")
    server = serve(ws, "--workers", "2")
    token = server.token("deployer")
    answers: list[tuple[int, dict[str, Any]]] = []

    def deploy(connection: http.client.HTTPConnection) -> None:
        body = json.dumps({"version": "v1", "message": "at once"})
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connection.request("POST", f"{STAGING}/deploy", body, headers)
        answer = connection.getresponse()
        answers.append((answer.status, json.loads(answer.read())))
        connection.close()

    threads = [
        threading.Thread(target=deploy, args=(c,)) for c in one_connection_per_worker(server)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 423], answers
    refused = next(body for status, body in answers if status == 423)
    assert "deploy" in refused["error"] and refused["exit_code"] == 5, refused


def _first_answer(port: int, token: str, answers: list[int], deadline: float) -> None:
    """Connect as soon as the port takes connections and note the status of one config read."""
    import socket

    while time.monotonic() < deadline:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            time.sleep(0.001)
            continue
        with sock:
            sock.sendall(f"GET /api/v1/envs/staging/config HTTP/1.1\r\nHost: x\r\n"
                         f"Authorization: Bearer {token}\r\n\r\n".encode())  # fmt: skip
            head = sock.recv(64)
        if head:
            answers.append(int(head.split()[1]))
            return


def test_a_worker_answers_reads_only_once_it_publishes_what_is_live(
    workspace: Callable[..., Workspace],
) -> None:
    """Reads sent while the workers start are all answered with the live version: a worker
    used to accept them before its first look at the target, and answered 404 "nothing is
    live yet" (a consumer starting then, without a cache, failed to start)."""
    ws = served_twice(workspace)
    token = ws.run("token", "create", "--name", "r", "--role", "viewer").stdout.strip()
    for _attempt in range(3):  # the window was milliseconds wide: give it a few starts
        server = Server(ws, "--workers", "2")
        answers: list[int] = []
        deadline = time.monotonic() + 30
        reading = (server.port, token, answers, deadline)
        readers = [threading.Thread(target=_first_answer, args=reading) for _ in range(16)]
        for reader in readers:
            reader.start()
        server.start()
        for reader in readers:
            reader.join(30)
        server.stop()
        assert answers and set(answers) == {200}, answers


def _ask(
    connection: http.client.HTTPConnection, token: str, method: str, path: str,
    body: dict[str, Any] | None = None,
) -> tuple[int, Any]:  # fmt: skip
    """One request on a connection kept to one worker; the status and the JSON answer."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request(method, path, json.dumps(body) if body is not None else None, headers)
    answer = connection.getresponse()
    data = answer.read()
    return answer.status, json.loads(data) if data else None


def test_a_worker_counts_what_another_worker_heard_a_moment_ago(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """Workers write their consumers' reports to the store every half second. The worker
    answering a fleet view or a rollback used to count only what had reached the store (and
    what it had read back, every second): a consumer that had just reported to the other worker
    was missing, and a rollback one worker confirmed was shown to another as not followed."""
    ws = served_twice(workspace)
    server = serve(ws, "--workers", "2", "--poll", "10")
    token = server.token("deployer")
    first, second = one_connection_per_worker(server)
    try:
        _heard_by_one_counted_by_the_other(token, first, second)
    finally:
        first.close()
        second.close()


def _heard_by_one_counted_by_the_other(
    token: str, first: http.client.HTTPConnection, second: http.client.HTTPConnection
) -> None:
    report = f"{STAGING}/consumers"
    for n in range(3):  # new consumers, heard by the first worker
        sent = {"consumer": f"new-{n}", "name": f"new-{n}", "version": 2}
        assert _ask(first, token, "POST", report, sent)[0] == 204
        status, shown = _ask(second, token, "GET", report)
        assert status == 200 and f"new-{n}" in {c["name"] for c in shown["consumers"]}, shown
    sent = {"consumer": "app", "name": "app", "version": 2}
    assert _ask(second, token, "POST", report, sent)[0] == 204  # the second one knows it on v2
    status, done = _ask(first, token, "POST", f"{STAGING}/rollback",
                        {"to": "v1", "wait_fleet": 0})  # fmt: skip
    assert status == 200, done
    for name in ("app", "new-0", "new-1", "new-2"):  # every consumer follows, through the first
        sent = {"consumer": name, "name": name, "version": 1}
        assert _ask(first, token, "POST", report, sent)[0] == 204
    status, done = _ask(second, token, "POST", f"{STAGING}/rollback",
                        {"to": "v1", "wait_fleet": 0})  # fmt: skip
    assert status == 200 and done["fleet"]["complete"], done  # a rollback's own confirmation
    for connection in (first, second):  # whichever worker answers, the rollback is followed
        status, shown = _ask(connection, token, "GET", STAGING)
        assert status == 200 and shown["fleet"]["complete"], shown["fleet"]
        assert shown["fleet"]["summary"].startswith("v1 restored on 4/4 consumers"), shown
