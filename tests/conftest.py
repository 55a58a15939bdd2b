"""Shared fixtures: tiny factories for workspaces, stores and the real CLI.

PostgreSQL tests use the server at 127.0.0.1:5432 (trust auth); each test gets a fresh database
that is dropped afterwards. Without a reachable server they skip, saying why.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PG_ADMIN = os.environ.get("LASTGOOD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LASTGOOD = str(Path(sys.executable).with_name("lastgood"))
PYCACHE = Path(tempfile.gettempdir()) / "lastgood-tests-pycache"


def _pg_connect(dbname: str | None = None):  # type: ignore[no-untyped-def]
    import psycopg

    url = PG_ADMIN if dbname is None else PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname
    return psycopg.connect(url, autocommit=True, connect_timeout=3)


def pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        with _pg_connect():
            return None
    except Exception as exc:  # any failure means: skip, and say why
        return f"PostgreSQL at {PG_ADMIN} unreachable: {exc}"


def _compile_once_for_every_child() -> None:
    """The processes the tests start (the CLI, servers, watchers) share one bytecode cache, as
    an installed package has its .pyc files. Without it, on a machine that sets
    PYTHONDONTWRITEBYTECODE, every child compiles lastgood's own modules again: about 0.15 s for
    each of the thousands of commands the suite runs, which the suite's time budget cannot pay."""
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        os.environ.setdefault("PYTHONPYCACHEPREFIX", str(PYCACHE))


_compile_once_for_every_child()
_PG_REASON = pg_available()
if _PG_REASON and os.environ.get("LASTGOOD_REQUIRE_PG"):
    raise RuntimeError(f"LASTGOOD_REQUIRE_PG is set but {_PG_REASON}")


def eventually(read: Callable[[], Any], seconds: float = 30) -> Any:
    """``read()`` once it returns something true; fails after a generous ``seconds``."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = read()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not true within {seconds} s: {read()!r}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database URL for one test."""
    if _PG_REASON:
        pytest.skip(_PG_REASON)
    name = f"lg_{secrets.token_hex(6)}"
    with _pg_connect() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with _pg_connect() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test once on a SQLite store and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


# a policy that judges a version in one round: no bake time, 10 ms between rounds (for tests
# of the verbs, where a 0.3 s bake per deploy would be most of the time)
FAST = {"bake": "0s", "interval": "10ms"}

# passes when the live health.txt says ok and there is no ../outage file (the world is fine)
CHECK_OK = 'grep -qx ok "$LASTGOOD_PATH/health.txt" && test ! -e ../outage'


def config_text(env: str = "staging", target: str = "directory", **policy: str) -> str:
    """A lastgood.toml with one environment whose check reads health.txt in the live files."""
    bake = policy.get("bake", "0.3s")
    interval = policy.get("interval", "0.1s")
    failures = policy.get("failures", "2")
    path = "../live" if target == "directory" else "../app"
    return textwrap.dedent(
        f"""
        [env.{env}]
        target = {{ type = "{target}", path = "{path}", keep = 5 }}
        bake = "{bake}"
        interval = "{interval}"
        failures = {failures}
        verify_rounds = 2

        [[env.{env}.check]]
        name = "health-file-ok"
        type = "command"
        run = '{CHECK_OK}'
        timeout = "5s"
        """
    )


def healthy_files(marker: str = "v") -> dict[str, str]:
    """The versioned files of a version whose check passes; ``marker`` tells versions apart."""
    return {"health.txt": "ok\n", "scoring/thresholds.yaml": f"threshold: 0.4\nmarker: {marker}\n"}


def broken_files(marker: str = "bad") -> dict[str, str]:
    """The versioned files of a version whose check fails."""
    return {
        "health.txt": "fail\n",
        "scoring/thresholds.yaml": f"threshold: 0.99\nmarker: {marker}\n",
    }


class Workspace:
    """A temporary workspace with helpers to write files and run the real CLI."""

    def __init__(self, base: Path, config: str, store: str | None = None) -> None:
        self.base = base
        self.root = base / "ws"
        self.root.mkdir(parents=True)
        (base / "app").mkdir()
        (self.root / "lastgood.toml").write_text(config)
        self.store = store
        self.opened: list[object] = []

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def healthy(self, marker: str = "v") -> None:
        """Make the folder a version whose check passes."""
        for relative, text in healthy_files(marker).items():
            self.write(relative, text)

    def broken(self, marker: str = "bad") -> None:
        """Make the folder a version whose check fails."""
        for relative, text in broken_files(marker).items():
            self.write(relative, text)

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        command = [LASTGOOD, "-C", str(self.root)]
        if self.store:
            command += ["--store", self.store]
        full_env = {**os.environ, "LASTGOOD_AUTHOR": "tester", "NO_COLOR": "1", **(env or {})}
        return subprocess.run(
            command + list(args), capture_output=True, text=True, timeout=timeout, env=full_env
        )

    def project(self):  # type: ignore[no-untyped-def]
        from lastgood.project import Project

        project = Project.open(self.root, store_url=self.store, actor="tester")
        self.opened.append(project)
        return project

    def close(self) -> None:
        for project in self.opened:
            project.close()  # type: ignore[attr-defined]


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Callable[..., Workspace]]:
    """Factory: ``workspace(target="files", store=url, bake="1s")``."""

    made: list[Workspace] = []

    def make(target: str = "directory", store: str | None = None, **policy: str) -> Workspace:
        made.append(
            Workspace(tmp_path / f"w{len(made)}", config_text(target=target, **policy), store)
        )
        return made[-1]

    yield make
    for ws in made:
        ws.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Any]]:
    """Factory: ``serve(ws, "--poll", "0.05")`` starts a real ``lastgood serve`` on a free port
    (see ``tests/serving.py``); every server started is killed at the end."""
    from tests.serving import Server

    started: list[Server] = []

    def start(ws: Workspace, *extra: str, port: int | None = None, ca: str | None = None) -> Server:
        started.append(Server(ws, *extra, port=port, ca=ca).start())
        return started[-1]

    yield start
    for server in started:
        server.close()
