"""Schemathesis against a real ``lastgood serve``: no generated request may cause a 5xx.

Bad input is the caller's mistake and must come back as a clear 4xx ``{"error": …}``; a 5xx is a
bug in the server. Schemathesis reads ``/openapi.json`` and generates valid and invalid requests
for every operation (coverage and fuzzing phases; the stateful phase's few sequences took a
fifth of the suite's slowest test for under a tenth of its cases) with an admin token, on a
throwaway workspace with versions deployed to a served and a directory environment, so it
reaches the real handlers rather than stopping at 401 or 404. The fuzzing phase makes 12
examples per operation: the coverage phase's 1,400-odd cases are the bulk, and 25 doubled the
test's time for under a tenth more cases. A second, smaller run has the
environment, the version and the file fixed to ones that exist, so it goes past the lookups
into deploy, rollback, drill, checks and the live config.

Two operations are held back from the main run, for reasons that are not about speed:

- ``GET …/config/stream`` never ends by design (server-sent events), so every case would only
  wait for the request timeout; ``tests/test_server_matrix.py`` reads its first event;
- ``DELETE /api/v1/tokens/{token_id}`` runs alone, last: ids are small integers, so a fuzzed id
  is soon the admin token's own, and revoking it would turn every later case into a 401.

Deploys, rollbacks and drills stay in: the workspace's bake is 0.3 s, so they are quick.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.serving import Server
from tests.test_server_matrix import CONFIG

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
SEED = "20240611"
STREAM_OR_REVOKE = r"(/config/stream|/tokens/\{token_id\})$"
EXISTING = """
[parameters]
"path.env" = "staging"
"path.ref" = "v1"
"path.path" = "health.txt"
"""


class Target:
    """The server under test and an admin token for it."""

    def __init__(self, server: Server, token: str) -> None:
        self.server = server
        self.token = token

    def schemathesis(self, *options: str, config: Path | None = None) -> int:
        """Run schemathesis against the server; the number of cases it ran, all passed."""
        command = [SCHEMATHESIS]
        if config is not None:
            command += ["--config-file", str(config)]
        command += [
            "run", f"{self.server.url}/openapi.json",
            "--checks", "not_a_server_error",
            "-H", f"Authorization: Bearer {self.token}",
            # one worker: with two, CPython 3.11 can fail compiling ASTs in two threads at once
            # inside hypothesis ("AST constructor recursion depth mismatch"), a crash that is
            # neither schemathesis's finding nor ours
            "--seed", SEED, "--workers", "1", "--request-timeout", "20", "--no-shrink",
            *options,
        ]  # fmt: skip
        environ = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
        done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=environ,
                              cwd=self.server.ws.base)  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        counted = re.search(r"(\d+) generated, (\d+) passed", output)
        assert counted is not None, output
        assert counted.group(1) == counted.group(2), output
        return int(counted.group(1))


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    ws = Workspace(tmp_path_factory.mktemp("schema"), CONFIG)
    ws.healthy("one")
    for env in ("staging", "production"):
        assert ws.run("deploy", env, "-m", "first").returncode == 0
    ws.healthy("two")
    assert ws.run("deploy", "staging", "-m", "second").returncode == 0
    server = Server(ws).start()
    token = server.token("admin", name="fuzzer")
    try:
        yield Target(server, token)
    finally:
        server.stop()
        ws.close()


@pytest.mark.timeout(360)
def test_no_generated_request_causes_a_server_error(target: Target) -> None:
    cases = target.schemathesis("--max-examples", "12", "--phases", "coverage,fuzzing",
                                "--exclude-path-regex", STREAM_OR_REVOKE)  # fmt: skip
    config = target.server.ws.base / "existing.toml"
    config.write_text(EXISTING)
    cases += target.schemathesis(
        "--max-examples", "10", "--phases", "fuzzing", "--exclude-path-regex", STREAM_OR_REVOKE,
        config=config,
    )  # fmt: skip
    cases += target.schemathesis(
        "--max-examples", "40", "--include-path", "/api/v1/tokens/{token_id}"
    )
    assert cases >= 1400, f"only {cases} cases ran"
    log = target.server.log.read_text()
    assert "Traceback" not in log and "unexpected" not in log, log
    assert target.token not in log
