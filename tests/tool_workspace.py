"""A workspace whose target is a tool behind an API, driven with the real ``lastgood`` command
(the command-target, http-target and CRM-recipe tests). Each test file's ``Setup`` says which
variables reach the commands (``tool_env``) and what must never show in their output
(``secrets``); the running of commands, and reading status and history, is here once."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import LASTGOOD

ENV = "production"
BAKE = 'bake = "300ms"'
INTERVAL = 'interval = "100ms"'


def sized_for_tests(config: str) -> str:
    """A recipe's lastgood.toml from the docs with its two-minute bake and 5 s interval made
    test-sized. The bake still runs check rounds after every switch, and a bad version still
    trips on its second failed round, whatever the bake's length (operations/bake.py); a good
    deploy waits 0.3 s instead of 1 s (the tests' bake before), and a verification or a trip
    waits 0.1 s between rounds instead of 0.2 s."""
    shortened = config.replace('bake = "2m"', BAKE).replace('interval = "5s"', INTERVAL)
    assert BAKE in shortened and INTERVAL in shortened, config
    return shortened


class ToolWorkspace:
    """What every Setup shares; subclasses are dataclasses with ``root`` and ``store``."""

    root: Path
    store: str | None
    author = "tool-target-test"

    def tool_env(self) -> dict[str, str]:
        """The variables the tool's commands need (its URL, its token)."""
        return {}

    def secrets(self) -> list[str]:
        """Values that must never show in lastgood's output."""
        return []

    def environ(self, failpoint: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LASTGOOD_")}
        env.update(self.tool_env(), LASTGOOD_AUTHOR=self.author, NO_COLOR="1")
        if failpoint:
            env["LASTGOOD_FAILPOINT"] = failpoint
        return env

    def command(self, *args: str) -> list[str]:
        store = ["--store", self.store] if self.store else []
        return [LASTGOOD, "-C", str(self.root), *store, *args]

    def run(self, *args: str, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.command(*args), capture_output=True, text=True,
                              env=self.environ(failpoint), timeout=120, check=False)  # fmt: skip
        for secret in self.secrets():
            assert secret not in done.stdout + done.stderr
        return done

    def ok(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = self.run(*args)
        assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def said(self, *args: str, code: int = 0) -> str:
        done = self.ok(*args, code=code)
        return done.stdout + done.stderr

    def status(self) -> dict[str, Any]:
        reports: list[dict[str, Any]] = json.loads(self.ok("status", ENV, "--json").stdout)
        (report,) = reports
        return report

    def history(self) -> dict[str, Any]:
        history: dict[str, Any] = json.loads(self.ok("history", ENV, "--json").stdout)
        return history
