"""docs/scaling.md's reference deployment, run as written: ``docs/examples/scaling/run.sh``
starts two ``lastgood serve --workers 2`` on one real PostgreSQL store and the real nginx in
front (on free ports). A consumer through the proxy and one given both servers follow a
rollback made through one server; server B is killed, and both keep following through what is
left.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lastgood.client import LiveConfig
from tests.conftest import LASTGOOD, Workspace
from tests.serving import free_port

EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "scaling"
NGINX = "/usr/sbin/nginx"
STAGING = "/api/v1/envs/staging"


def started(ws: Workspace, ports: dict[str, int]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """run.sh in the workspace; yields it and what it printed once it said "ready"."""
    env = {**os.environ, "LASTGOOD": LASTGOOD, "LASTGOOD_STORE": str(ws.store),
           "RUN_DIR": str(ws.base / "run"), "NO_COLOR": "1", "WORKERS": "2",
           **{name: str(port) for name, port in ports.items()}}  # fmt: skip
    script = subprocess.Popen(["sh", str(EXAMPLE / "run.sh")], cwd=ws.root, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    said = ""
    try:
        assert script.stdout is not None
        for line in script.stdout:
            said += line
            if line.startswith("ready: "):
                break
        assert "ready: " in said, said
        yield script, said
    finally:
        script.send_signal(signal.SIGTERM)
        code = script.wait(15)
        if script.stdout is not None:
            script.stdout.close()
        assert code == 0


def rollback(server: str, token: str, *args: str) -> None:
    """``lastgood --server URL rollback staging …``, as an operator runs it."""
    env = {**os.environ, "LASTGOOD_TOKEN": token, "NO_COLOR": "1"}
    done = subprocess.run([LASTGOOD, "--server", server, "rollback", "staging", *args],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not Path(NGINX).exists(), reason="needs nginx")
def test_two_servers_behind_nginx_survive_one_killed(
    workspace: Callable[..., Workspace], pg_url: str, tmp_path: Path
) -> None:
    ws = workspace(target="served", store=pg_url)
    for marker in ("one", "two"):
        ws.healthy(marker)
        assert ws.run("deploy", "staging", "-m", marker).returncode == 0
    token = ws.run("token", "create", "--name", "deployer", "--role", "deployer").stdout.strip()
    ports = {name: free_port() for name in ("PROXY_PORT", "SERVER_A_PORT", "SERVER_B_PORT")}
    proxy, a, b = (f"http://127.0.0.1:{port}" for port in ports.values())
    for script, said in started(ws, ports):
        pid_b = int(re.findall(r"server b: pid (\d+)", said)[0])

        def follow(url: str, name: str) -> LiveConfig:
            return LiveConfig(url, "staging", token=token, cache_dir=tmp_path, name=name,
                              wait=20, poll=30)  # fmt: skip

        with follow(proxy, "through-proxy") as behind, follow(f"{a},{b}", "both-urls") as direct:
            assert (behind.version, direct.version) == (2, 2)
            rollback(a, token, "-m", "through a")
            for app in (behind, direct):
                app.wait_for_version(1, timeout=5)

            os.kill(pid_b, signal.SIGKILL)
            began = time.monotonic()
            rollback(proxy, token, "--to", "v2", "-m", "b is gone")
            for app in (behind, direct):
                app.wait_for_version(2, timeout=5)
            assert time.monotonic() - began < 10
            assert direct.url == a
        assert script.poll() is None  # the script still runs: stopping it stops the rest
