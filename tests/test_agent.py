"""``lastgood agent`` against a real ``lastgood serve``: real agent processes put each version live
on directory targets in temporary folders, report to the fleet view, hold an offline rollback
made on the host, and survive ``kill -9`` mid-stage and mid-switch. No mocks.

One server serves several environments for the whole module (one per scenario, so scenarios do
not disturb each other); the offline scenario stops its server, so it has one of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lastgood.client import LiveConfig
from lastgood.targets.base import Release
from lastgood.targets.directory import DirectoryTarget
from tests.conftest import LASTGOOD, Workspace, eventually
from tests.serving import Server, free_port

ENVS = ("follow", "checks", "crash")
EMPTY = "empty"  # served, never deployed: nothing is live there


def served_config(*envs: str) -> str:
    tables = [f'[env.{env}]\ntarget = {{ type = "served" }}\nbake = "0s"\n' for env in envs]
    return "\n".join(tables)


class Site:
    """The module's workspace, server and tokens."""

    def __init__(self, ws: Workspace, server: Server) -> None:
        self.ws, self.server = ws, server
        self.viewer = server.token("viewer", name="agents")
        self.admin = server.token("admin", name="tests")

    def deploy(self, env: str, marker: str) -> int:
        """A new version of the folder, deployed on ``env``; its number, once served."""
        before = self.served(env)
        self.ws.write("conf/app.yaml", f"marker: {marker}\n")
        done = self.ws.run("deploy", env, "-m", marker)
        assert done.returncode == 0, done.stderr
        return int(eventually(lambda: self.served(env) != before and self.served(env)))

    def served(self, env: str) -> int:
        with self.server.client(self.viewer) as client:
            return int(client.get(f"/api/v1/envs/{env}/config").json()["version"])

    def fleet(self, env: str) -> dict[str, Any]:
        with self.server.client(self.viewer) as client:
            answer = client.get(f"/api/v1/envs/{env}/consumers")
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()
        return data


class AgentProcess:
    """One real ``lastgood agent`` with its log in a file."""

    def __init__(self, folder: Path, token: str, *args: str, env: dict[str, str] | None = None):
        self.log = folder / f"agent-{len(list(folder.glob('agent-*.log')))}.log"
        extra = {"LASTGOOD_TOKEN": token, "NO_COLOR": "1", **(env or {})}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [LASTGOOD, "agent", "--check-every", "0.2s", "--retry-max", "0.2s", *args],
                stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **extra},
            )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text()

    def says(self, words: str) -> bool:
        return words in self.text()

    def stop(self) -> int:
        """SIGTERM once it runs (before, Python's default handler would end it with -15)."""
        eventually(lambda: self.says("following "))
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(15)


def live_of(folder: Path) -> Release | None:
    return DirectoryTarget("x", {"path": str(folder)}, folder.parent).live()


def intact(folder: Path) -> bool:
    """The target serves one complete release: its files hash to its content hash."""
    target = DirectoryTarget("x", {"path": str(folder)}, folder.parent)
    live = target.live()
    return live is not None and target.actual_hash() == live.content_hash


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    ws = Workspace(tmp_path_factory.mktemp("agents"), served_config(*ENVS, EMPTY))
    ws.write("conf/app.yaml", "marker: first\n")
    for env in ENVS:
        assert ws.run("deploy", env, "-m", "first").returncode == 0
    server = Server(ws, "--poll", "0.05").start()
    try:
        yield Site(ws, server)
    finally:
        server.close()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def start(token: str, *args: str, env: dict[str, str] | None = None) -> AgentProcess:
        started.append(AgentProcess(tmp_path, token, *args, env=env))
        return started[-1]

    yield start
    for agent in started:
        if agent.process.poll() is None:
            agent.process.kill()
            agent.process.wait(10)


def test_agent_follows_deploys_and_rollbacks_and_the_fleet_confirms_the_host(
    site: Site, agents: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    live, state = tmp_path / "live", tmp_path / "state"
    first = site.served("follow")
    target = ("--target", f"directory:{live}", "--state", str(state), "--name", "web-1")
    agent = agents(site.viewer, "--server", site.server.url, "--env", "follow", *target)
    eventually(lambda: live_of(live) and live_of(live).version == first)  # type: ignore[union-attr]
    assert (live / "current" / "conf" / "app.yaml").is_file() and intact(live)
    assert eventually(lambda: agent.says(f"v{first} live on directory {live} in "))
    assert "staged and switched" in agent.text() and "verified" in agent.text()
    host = (state / "lastgood.toml").read_text()
    assert "[env.follow]" in host and f'"{live}"' in host and site.viewer not in host

    second = site.deploy("follow", "second")
    eventually(lambda: live_of(live).version == second)  # type: ignore[union-attr]
    with LiveConfig(site.server.url, "follow", token=site.viewer, cache=False, name="api-1"):
        rolled = site.ws.run("rollback", "follow", "-m", "second is bad")
        assert rolled.returncode == 0, rolled.stderr
        eventually(lambda: live_of(live).version == first)  # type: ignore[union-attr]
        assert eventually(lambda: agent.says("a pointer switch to the retained release"))
        fleet = eventually(lambda: (f := site.fleet("follow"))["fleet"]["complete"] and f)
        shown = f"v{first} restored on 2/2 consumers (1 agent)"  # as the server flushed it
        assert eventually(lambda: shown in site.ws.run("status", "follow").stdout)
    # the SDK consumer closed: it said it left, so the fleet is the agent alone at once
    assert site.fleet("follow")["fleet"]["total"] == 1
    summary = fleet["fleet"]["summary"]
    assert summary.startswith(f"v{first} restored on 2/2 consumers (1 agent) in "), summary
    kinds = {c["name"]: c["kind"] for c in fleet["consumers"]}
    assert kinds == {"web-1": "agent", "api-1": "sdk"}
    assert intact(live) and {r.version for r in DirectoryTarget(
        "x", {"path": str(live)}, tmp_path).retained()} == {first, second}  # fmt: skip
    assert agent.stop() == 0
    assert f"stopped; v{first} stays live on directory {live}" in agent.text()
    assert "Traceback" not in agent.text()
    gone = site.fleet("follow")["fleet"]  # it said it left: not "not following" for 90 s
    assert gone["agents"] == 0 and "web-1" not in gone["summary"], gone


def test_a_failing_host_check_is_shown_in_the_fleet(
    site: Site, agents: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    live, flag = tmp_path / "live", tmp_path / "app-up"
    flag.write_text("up\n")
    host = tmp_path / "host"
    host.mkdir()
    (host / "lastgood.toml").write_text(textwrap.dedent(f"""
        [agent]
        server = "{site.server.url}"
        env = "checks"
        name = "web-2"

        [env.checks]
        target = {{ type = "directory", path = "{live}", keep = 2 }}

        [[env.checks.check]]
        name = "app-answers"
        type = "command"
        run = 'test -e {flag} && test -f "$LASTGOOD_PATH/conf/app.yaml"'
        timeout = "5s"
        """))  # fmt: skip
    agent = agents(site.viewer, "-C", str(host))

    def health() -> dict[str, Any]:
        found = {c["name"]: c for c in site.fleet("checks")["consumers"]}
        return dict(found.get("web-2", {}))

    assert eventually(lambda: health().get("health") == "ok")
    flag.unlink()
    failing = eventually(lambda: (h := health()).get("health") == "failing" and h)
    assert failing["detail"].startswith("app-answers: ")
    summary = site.fleet("checks")["fleet"]["summary"]
    assert "; 1 host check failing: web-2" in summary, summary
    assert eventually(lambda: agent.says("warning: host check failing: app-answers"))
    assert eventually(
        lambda: "1 host check failing: web-2" in site.ws.run("status", "checks").stdout
    )
    flag.write_text("up\n")
    assert eventually(lambda: health()["health"] == "ok")
    for marker in ("c2", "c3", "c4"):  # keep = 2: older releases are pruned, never the live one
        version = site.deploy("checks", marker)
        eventually(lambda v=version: live_of(live).version == v)  # type: ignore[union-attr]
    eventually(lambda: len(DirectoryTarget("x", {"path": str(live)}, tmp_path).retained()) <= 3)
    assert agent.stop() == 0


@pytest.mark.parametrize(
    "point", ["target.before-rename-release", "target.mid-switch", "target.after-switch"]
)
def test_kill_9_mid_stage_or_switch_leaves_one_complete_version_and_a_restart_converges(
    site: Site, agents: Callable[..., AgentProcess], tmp_path: Path, point: str
) -> None:
    live = tmp_path / "live"
    args = ("--server", site.server.url, "--env", "crash", "--target", f"directory:{live}",
            "--state", str(tmp_path / "state"))  # fmt: skip
    before = site.served("crash")
    first = agents(site.viewer, *args)
    eventually(lambda: live_of(live) and live_of(live).version == before)  # type: ignore[union-attr]
    assert first.stop() == 0
    after = site.deploy("crash", f"crash-{point}")
    crashed = agents(site.viewer, *args, env={"LASTGOOD_FAILPOINT": point})
    assert crashed.process.wait(30) == -signal.SIGKILL
    switched = point == "target.after-switch"  # killed after the rename: the new one is live
    assert live_of(live).version == (after if switched else before)  # type: ignore[union-attr]
    assert intact(live)
    restarted = agents(site.viewer, *args)
    eventually(lambda: live_of(live).version == after)  # type: ignore[union-attr]
    assert intact(live)
    assert not list(live.glob(".current-*")) and not list((live / "releases").glob(".tmp*"))
    assert restarted.stop() == 0


def test_offline_rollback_on_the_host_holds_until_the_server_serves_another_version(
    agents: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "site", served_config("prod"))
    ws.write("conf/app.yaml", "marker: a\n")
    assert ws.run("deploy", "prod").returncode == 0
    port = free_port()
    server = Server(ws, "--poll", "0.05", port=port).start()
    try:
        site = Site(ws, server)
        good = site.served("prod")
        live, state = tmp_path / "live", tmp_path / "state"
        args = ("--server", server.url, "--env", "prod", "--target", f"directory:{live}",
                "--state", str(state), "--name", "web-3")  # fmt: skip
        agent = agents(site.viewer, *args)
        eventually(lambda: live_of(live) and live_of(live).version == good)  # type: ignore[union-attr]
        bad = site.deploy("prod", "b")
        eventually(lambda: live_of(live).version == bad)  # type: ignore[union-attr]
        eventually(lambda: {c["version"] for c in site.fleet("prod")["consumers"]} == {bad})
        server.kill()
        offline = subprocess.run([LASTGOOD, "-C", str(state), "rollback", "prod", "--offline"],
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
        assert offline.returncode == 0, offline.stderr
        assert live_of(live).version == good  # type: ignore[union-attr]
        assert eventually(lambda: agent.says("switched outside this agent"))
        held = f"v{bad} is withdrawn on this host (an offline rollback took it back)"
        assert eventually(lambda: agent.says(held))  # said when it happens, not on a restart
        assert agent.stop() == 0
        restarted = agents(site.viewer, *args)  # the server is still away
        assert eventually(lambda: restarted.says(f"keeps serving v{good}; retrying"))
        server.start()
        assert eventually(lambda: restarted.says(f"v{bad} is withdrawn on this host"))
        fleet = eventually(lambda: (f := site.fleet("prod"))["consumers"] and f)
        assert [c["version"] for c in fleet["consumers"]] == [good]
        assert f"not following: web-3 (v{good})" in fleet["fleet"]["summary"]
        assert live_of(live).version == good  # type: ignore[union-attr]
        fixed = site.deploy("prod", "c")
        eventually(lambda: live_of(live).version == fixed)  # type: ignore[union-attr]
        assert restarted.stop() == 0
        rolled = ws.run("rollback", "prod", "--to", str(bad), "-m", "b was fine after all")
        assert rolled.returncode == 0, rolled.stderr
        taking = agents(site.viewer, *args, "--take-withdrawn")
        eventually(lambda: live_of(live).version == bad)  # type: ignore[union-attr]
        assert taking.stop() == 0
    finally:
        server.close()


def test_bad_input_is_refused_with_a_hint(
    site: Site, agents: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    def run(*args: str, token: str = site.viewer) -> subprocess.CompletedProcess[str]:
        return subprocess.run([LASTGOOD, "agent", *args], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "LASTGOOD_TOKEN": token})  # fmt: skip

    base = ("--server", site.server.url, "--env", "follow", "--state", str(tmp_path / "s"))
    syntax = run(*base, "--target", "/srv/app/config")
    assert syntax.returncode == 2 and "is not TYPE:PATH" in syntax.stderr
    assert "--target directory:/srv/app/config" in syntax.stderr
    served = run(*base, "--target", "served:/x")
    assert served.returncode == 2 and "not 'served'" in served.stderr
    no_env = run("--server", site.server.url, "--target", f"directory:{tmp_path / 'l'}")
    assert no_env.returncode == 2 and "--target needs --env ENV" in no_env.stderr
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "lastgood.toml").write_text(
        f'[env.follow]\ntarget = {{ type = "directory", path = "{tmp_path / "l"}" }}\n'
    )
    no_server = subprocess.run([LASTGOOD, "-C", str(tmp_path / "ws"), "agent"],
                               capture_output=True, text=True, timeout=60,
                               env={k: v for k, v in os.environ.items()
                                    if k != "LASTGOOD_SERVER"})  # fmt: skip
    assert no_server.returncode == 2 and "no server to follow for follow" in no_server.stderr
    refused = run(*base, "--target", f"directory:{tmp_path / 'l'}", token="lg_wrong")
    assert refused.returncode != 0 and "refused the token" in refused.stderr
    assert "Traceback" not in refused.stderr + no_server.stderr + syntax.stderr
    nowhere = ("--server", f"http://127.0.0.1:{free_port()}", "--env", "follow")
    away = agents(site.viewer, *nowhere, "--target", f"directory:{tmp_path / 'l2'}",
                  "--state", str(tmp_path / "s2"))  # fmt: skip
    assert eventually(lambda: away.says("keeps serving nothing; retrying every 0.2 s at most"))
    assert away.process.poll() is None  # still running, retrying
    assert away.stop() == 0


def test_an_agent_given_two_servers_follows_through_the_other_when_one_dies(
    workspace: Callable[..., Workspace],
    serve: Callable[..., Server],
    agents: Callable[..., AgentProcess],
    tmp_path: Path,
) -> None:
    ws = workspace(target="served")
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "one").returncode == 0
    a, b = serve(ws, "--poll", "0.05"), serve(ws, "--poll", "0.05")
    live = tmp_path / "live"
    agent = agents(a.token("viewer"), "--server", f"{a.url},{b.url}", "--env", "staging",
                   "--target", f"directory:{live}", "--state", str(tmp_path / "state"))  # fmt: skip
    eventually(lambda: live_of(live) is not None)
    assert agent.says("failing over between 2 server URLs")
    a.kill()
    ws.healthy("two")
    assert ws.run("deploy", "staging", "-m", "two").returncode == 0
    eventually(lambda: live_of(live).version == 2)  # type: ignore[union-attr]
    assert intact(live) and eventually(lambda: agent.says(f"staging now follows {b.url}"))
    assert agent.stop() == 0 and "Traceback" not in agent.text()


def test_a_second_agent_on_a_target_is_refused_and_what_retrying_cannot_fix_stops_at_once(
    site: Site, agents: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    live = tmp_path / "live"
    args = ("--server", site.server.url, "--env", "follow", "--target", f"directory:{live}")
    first = agents(site.viewer, *args, "--state", str(tmp_path / "s1"))
    eventually(lambda: first.says("following "))

    def run(*more: str, token: str | None = site.viewer) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "LASTGOOD_TOKEN"}
        return subprocess.run([LASTGOOD, "agent", *more], capture_output=True, text=True,
                              timeout=60, env={**env, **({"LASTGOOD_TOKEN": token} if token
                                                        else {})})  # fmt: skip

    second = run(*args, "--state", str(tmp_path / "s2"))
    assert second.returncode == 2, second.stderr
    pid = first.process.pid
    assert f"another lastgood agent (pid {pid}) already works on directory {live}" in second.stderr
    nosuch = run("--server", site.server.url, "--env", "nosuch", "--target",
                 f"directory:{tmp_path / 'l3'}", "--state", str(tmp_path / "s3"))  # fmt: skip
    assert nosuch.returncode == 2 and "nosuch" in nosuch.stderr, nosuch.stderr
    where = ("--target", f"directory:{tmp_path / 'l4'}", "--state", str(tmp_path / "s4"))
    tokenless = run("--server", site.server.url, "--env", "follow", *where, token=None)
    assert tokenless.returncode == 5 and "set LASTGOOD_TOKEN" in tokenless.stderr
    waiting = agents(site.viewer, "--server", site.server.url, "--env", EMPTY, "--target",
                     f"directory:{tmp_path / 'l5'}", "--state", str(tmp_path / "s5"))  # fmt: skip
    assert eventually(lambda: waiting.says(f"nothing is live on {EMPTY} yet; directory "))
    assert "no answer" not in waiting.text() and "the cache is off" not in waiting.text()
    assert waiting.stop() == 0
    eventually(lambda: first.says(" live on directory "))
    first.process.send_signal(signal.SIGTERM)  # twice, 1 ms apart: still a clean stop
    time.sleep(0.001)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(15) == 0
    assert "stopped; " in first.text() and "terminated" not in first.text()
    for text in (first.text(), second.stderr, nosuch.stderr, waiting.text()):
        assert "Traceback" not in text


def test_a_host_check_failing_from_the_start_is_logged_and_its_detail_arrives_intact(
    site: Site, agents: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "lastgood.toml").write_text(textwrap.dedent(f"""
        [agent]
        server = "{site.server.url}"
        env = "crash"
        name = "web-9"

        [env.crash]
        target = {{ type = "directory", path = "{tmp_path / 'live'}" }}

        [[env.crash.check]]
        name = "app-answers"
        type = "command"
        run = 'echo "502 → down" >&2; exit 1'
        """))  # fmt: skip
    agent = agents(site.viewer, "-C", str(host))
    assert eventually(lambda: agent.says("warning: host check failing: app-answers"))
    found = eventually(lambda: [c for c in site.fleet("crash")["consumers"]
                                if c["name"] == "web-9" and c["health"] == "failing"])  # fmt: skip
    assert "502 → down" in found[0]["detail"], found[0]["detail"]
    assert agent.stop() == 0
