"""The CRM-property recipe of docs/targets.md end to end, against a real CRM-like HTTP service.

Every test starts the small CRM of ``tests/crm_api.py`` on 127.0.0.1, writes the recipe's
``lastgood.toml`` taken from the docs (only its bake and interval shortened) and drives the real
``lastgood`` CLI in subprocesses; the commands in the config are real ``curl`` and ``jq`` runs
against the service. Store: SQLite, and PostgreSQL where the ledger's truth matters.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import crm_api
from tests.crm_api import CrmApi
from tests.tool_workspace import ToolWorkspace, sized_for_tests

pytestmark = pytest.mark.skipif(
    shutil.which("jq") is None or shutil.which("curl") is None,
    reason="the CRM recipe's commands need curl and jq",
)

LASTGOOD = str(Path(sys.executable).with_name("lastgood"))
DOCS = Path(__file__).resolve().parent.parent / "docs"
ENV = "production"
VALUE = "crm/lead_threshold.txt"
ROLLED_BACK = 3  # exit code: failed its checks, last known good restored


def recipe() -> str:
    """The recipe's lastgood.toml from docs/targets.md, with test-sized bake and interval."""
    text = (DOCS / "targets.md").read_text(encoding="utf-8")
    section = text.split("## Recipe: a property in a CRM\n", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block is not None, "the recipe has no toml block"
    return sized_for_tests(block.group(1))


@dataclass
class Setup(ToolWorkspace):
    """A workspace using the recipe against one running CRM."""

    root: Path
    api: CrmApi
    store: str | None = None
    author = "crm-recipe-test"

    def tool_env(self) -> dict[str, str]:
        return {"CRM_URL": self.api.url, "CRM_TOKEN": crm_api.TOKEN}

    def secrets(self) -> list[str]:
        return [crm_api.TOKEN]

    def write(self, value: str) -> None:
        (self.root / VALUE).write_text(value + "\n")

    def deploy(self, value: str, message: str, code: int = 0) -> str:
        self.write(value)
        return self.said("deploy", ENV, "-m", message, code=code)


def make_setup(base: Path, api: CrmApi, config: str = "", store: str | None = None) -> Setup:
    root = base / "ws"
    (root / "crm").mkdir(parents=True)
    (root / "lastgood.toml").write_text(config or recipe())
    return Setup(root, api, store)


@pytest.fixture
def api() -> Iterator[CrmApi]:
    with crm_api.serving() as running:
        yield running


@pytest.fixture
def setup(tmp_path: Path, api: CrmApi) -> Setup:
    return make_setup(tmp_path, api)


def served(api: CrmApi) -> tuple[str | None, str | None]:
    """The threshold the CRM holds and the label lastgood gave it."""
    return api.property("lead_threshold"), api.property("lastgood_version")


# ---- deploy, a bad value restored by itself, rollback ----------------------------------------


def test_deploy_patches_only_the_two_properties_and_reads_the_label_back(
    setup: Setup, api: CrmApi
) -> None:
    api.edit_by_hand({"owner_team": "sales-emea"})  # a property lastgood does not own
    said = setup.deploy("40", "threshold 40")
    assert served(api) == ("40", "v1")
    assert api.patches == [{"lead_threshold": "40", "lastgood_version": "v1"}]
    assert api.property("owner_team") == "sales-emea", "a PATCH is a partial update"
    assert "v1" in said
    report = setup.status()
    assert (report["live_version"], report["last_good"], report["drifted"]) == (1, 1, False)


def test_a_bad_threshold_is_caught_and_the_old_value_restored(
    tmp_path: Path, api: CrmApi, store_url: str
) -> None:
    setup = make_setup(tmp_path, api, store=store_url)
    setup.deploy("40", "threshold 40")
    said = setup.deploy("400", "stricter", code=ROLLED_BACK)
    assert "threshold-sane" in said and "v1" in said
    assert served(api) == ("40", "v1"), "the CRM must hold the old value again"
    assert [p["lastgood_version"] for p in api.patches] == ["v1", "v2", "v1"]
    report = setup.status()
    assert (report["live_version"], report["last_good"], report["live_verdict"]) == (1, 1, "good")
    assert not report["drifted"]
    restore = next(d for d in setup.history()["deployments"] if d["kind"] == "auto-rollback")
    assert restore["status"] == "succeeded" and restore["verified_at"] is not None


def test_a_value_that_is_not_a_number_is_caught_too(setup: Setup, api: CrmApi) -> None:
    setup.deploy("40", "threshold 40")
    setup.deploy('forty "ish"', "typo", code=ROLLED_BACK)  # quotes: the body is still JSON
    assert served(api) == ("40", "v1")


def test_manual_rollback_patches_the_kept_value_again(setup: Setup, api: CrmApi) -> None:
    setup.deploy("40", "one")
    setup.deploy("55", "two")
    assert served(api) == ("55", "v2")
    done = setup.ok("rollback", ENV, "-m", "too few leads reach sales")
    assert "v1" in done.stdout + done.stderr
    assert served(api) == ("40", "v1")
    assert setup.status()["live_version"] == 1


# ---- drift: a property edited in the CRM's settings page -------------------------------------


def test_a_hand_edit_is_drift_seen_by_status_and_put_back_by_the_watcher(
    setup: Setup, api: CrmApi
) -> None:
    setup.deploy("40", "one")
    api.edit_by_hand({"lead_threshold": "75"})  # the label still says v1
    report = setup.status()
    assert report["drifted"] and not report["live_unknown"]
    assert report["live_version"] == 1
    done = setup.ok("watch", "--once", "--json")
    assert "restored" in done.stdout, done.stdout
    assert served(api) == ("40", "v1")
    events = [e for e in setup.history()["events"] if e["kind"] == "drift-detected"]
    assert events and "75" in events[0]["data"]["diff"]
    assert not setup.status()["drifted"]


# ---- the CRM misbehaving ---------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "status"), [("error", 500), ("rate-limited", 429)])
def test_a_failing_crm_is_a_clear_error_and_nothing_false_is_recorded(
    setup: Setup, api: CrmApi, mode: str, status: int
) -> None:
    setup.deploy("40", "one")
    api.mode = mode
    setup.write("55")
    done = setup.run("deploy", ENV, "-m", "two")
    api.mode = "normal"
    assert done.returncode not in (0, ROLLED_BACK), done.stderr
    assert "of production `" in done.stderr
    assert f"The requested URL returned error: {status}" in done.stderr
    assert "Traceback" not in done.stderr
    if mode == "error":
        assert "the activate command of production" in done.stderr
        assert "exited 22" in done.stderr and "tried 3 times" in done.stderr
    assert served(api) == ("40", "v1")
    report = setup.status()
    assert (report["live_version"], report["ledger_version"]) == (1, 1)


def _command_lines() -> list[bytes]:
    """Every process's command line on this machine, as ``ps`` shows them."""
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes())
            except OSError:
                continue  # the process ended meanwhile
    return lines


def test_a_slow_crm_is_waited_for_and_the_token_is_on_no_command_line(
    setup: Setup, api: CrmApi
) -> None:
    """Each answer takes 0.3 s, well inside the 10 s timeout: the deploy succeeds. While
    curl waits on the CRM, no process on the machine has the token on its command line."""
    api.mode, api.delay = "slow", 0.3
    setup.write("40")
    deploy = subprocess.Popen(
        setup.command("deploy", ENV, "-m", "slow"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=setup.environ(),
    )
    watched_curl = False
    while deploy.poll() is None:
        lines = _command_lines()
        assert not any(crm_api.TOKEN.encode() in line for line in lines)
        watched_curl |= api.in_flight > 0 and any(
            line.startswith(b"curl\0") and api.url.encode() in line for line in lines
        )
        time.sleep(0.02)
    out, err = deploy.communicate()
    assert deploy.returncode == 0, err.decode()
    assert crm_api.TOKEN.encode() not in out + err
    assert watched_curl, "no curl was seen waiting on the CRM"
    api.mode = "normal"
    assert served(api) == ("40", "v1")


def test_the_token_is_in_no_output_and_nowhere_in_lastgood_state(setup: Setup, api: CrmApi) -> None:
    setup.deploy("40", "one")
    setup.deploy("400", "bad", code=ROLLED_BACK)
    api.edit_by_hand({"lead_threshold": "75"})
    setup.ok("watch", "--once", "--json")
    api.mode = "error"
    setup.write("55")
    setup.run("deploy", ENV, "-m", "failing")
    api.mode = "normal"
    for args in (("status", ENV), ("history", ENV, "--json"), ("diff", ENV)):
        setup.run(*args)  # each run asserts the token is not in its output
    state = [p for p in (setup.root / ".lastgood").rglob("*") if p.is_file()]
    assert state, "lastgood wrote nothing under .lastgood/"
    for path in state:
        assert crm_api.TOKEN.encode() not in path.read_bytes(), path
