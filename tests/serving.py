"""Real ``lastgood serve`` processes for the server, SDK, CLI-through-server and browser tests.

``Server`` starts the real console script on a free port of 127.0.0.1, waits for ``/healthz``,
and at teardown kills it (``close``): the tests that are about a stop call ``stop`` and look at
what it did. Tokens are made in process with the verb ``lastgood token create`` calls.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time

import httpx

from tests.conftest import LASTGOOD, Workspace


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One ``lastgood serve`` process on a workspace."""

    def __init__(
        self, ws: Workspace, *extra: str, port: int | None = None, ca: str | None = None
    ) -> None:
        self.ws = ws
        self.extra = extra
        self.port = port or free_port()
        self.url = f"{'https' if ca else 'http'}://127.0.0.1:{self.port}"
        # with --tls-cert: the CA that signed the server's certificate (a trustme PEM file)
        self.verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if ca else True
        self.process: subprocess.Popen[str] | None = None
        self.log = ws.base / f"serve-{self.port}.log"

    def start(self, timeout: float = 30) -> Server:
        command = [LASTGOOD, "-C", str(self.ws.root)]
        if self.ws.store:
            command += ["--store", self.ws.store]
        command += ["serve", "--port", str(self.port), *self.extra]
        env = {**os.environ, "LASTGOOD_AUTHOR": "tester", "NO_COLOR": "1"}
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, text=True, env=env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"lastgood serve exited: {self.log.read_text()}")
            try:
                healthz = httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify)
                if healthz.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
        raise AssertionError(
            f"lastgood serve did not answer in {timeout} s: {self.log.read_text()}"
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def close(self) -> None:
        """Teardown: SIGKILL. A graceful stop answers held reads and flushes reports first,
        about 0.3 s a server, for what no test reads after its end."""
        self.kill()

    def token(self, role: str, *envs: str, name: str | None = None) -> str:
        """A new token's secret, made in process by the verb behind ``lastgood token create``
        (the CLI itself is tested in tests/test_cli_remote.py and tests/test_token_names.py)."""
        from lastgood.operations.tokens import create_token
        from lastgood.project import Project

        project = Project.open(self.ws.root, store_url=self.ws.store, actor="tester")
        try:
            name = name or f"{role}-{'-'.join(envs) or 'all'}"
            return create_token(project, name=name, role=role, envs=list(envs))[1]
        finally:
            project.close()

    def client(self, token: str | None = None, timeout: float = 60) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, verify=self.verify)
